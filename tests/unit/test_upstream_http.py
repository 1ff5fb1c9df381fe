"""Unit tests for rnr.upstream.http and rnr.upstream.nws against the in-process replay server.

The replay server runs on a thread (one app for this module, reset around each test);
faults injected through its admin API play the failing upstream. One persistent httpx
client talks to the admin API: a fresh client per call costs ~0.1 s of TLS set-up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from devstack.replay.server import create_app
from rnr.core.errors import PermanentError, TransientError
from rnr.upstream import http as upstream_http
from rnr.upstream.http import (
    UpstreamClient,
    UpstreamGarbled,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from rnr.upstream.nws import NwsClient, read_listing
from tests.support.servers import free_port, uvicorn_in_thread

LISTING = "^/products$"
FIXTURE_PRODUCTS = 6


@dataclass
class Replay:
    url: str
    admin: httpx.Client

    def reset(self) -> None:
        self.admin.post("/_admin/reset").raise_for_status()

    def fault(self, path: str, **fault: object) -> None:
        self.admin.post("/_admin/faults", json={"path": path, **fault}).raise_for_status()

    def requests(self) -> dict[str, int]:
        return self.admin.get("/_admin/requests").json()

    def listing(self) -> list[dict[str, Any]]:
        return self.admin.get("/products", params={"type": "HML"}).json()["@graph"]

    def product(self, product_id: str) -> dict[str, Any]:
        return self.admin.get(f"/products/{product_id}").raise_for_status().json()


@pytest.fixture(scope="module")
def replay_module() -> Iterator[Replay]:
    with (
        uvicorn_in_thread(create_app(), free_port()) as url,
        httpx.Client(base_url=url, timeout=10) as admin,
    ):
        yield Replay(url, admin)


@pytest.fixture
def replay(replay_module: Replay) -> Iterator[Replay]:
    replay_module.reset()
    yield replay_module
    replay_module.reset()


@asynccontextmanager
async def client(
    *, retries: int = 2, backoff: float = 0.0, timeout_seconds: float = 2.0
) -> AsyncIterator[UpstreamClient]:
    session = UpstreamClient.open_session(user_agent="rnr-tests", timeout_seconds=timeout_seconds)
    async with session:
        yield UpstreamClient(session, retries=retries, backoff_seconds=backoff)


def listing_url(replay: Replay) -> str:
    return f"{replay.url}/products?type=HML"


def count(replay: Replay, path: str = "/products") -> int:
    return replay.requests().get(path, 0)


def test_error_classes() -> None:
    assert issubclass(UpstreamUnavailable, TransientError)
    assert issubclass(UpstreamNotFound, PermanentError)
    assert issubclass(UpstreamRejected, PermanentError)


# -------------------------------------------------------------------------------- get_json


async def test_get_json_success(replay: Replay) -> None:
    async with client() as http:
        payload = await http.get_json(listing_url(replay))
    assert len(payload["@graph"]) == FIXTURE_PRODUCTS
    assert count(replay) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_persistent_5xx_is_retried_then_unavailable(replay: Replay, status: int) -> None:
    replay.fault(LISTING, status=status)
    async with client(retries=2) as http:
        with pytest.raises(UpstreamUnavailable) as caught:
            await http.get_json(listing_url(replay))
    assert f"failed 3 times, last: HTTP {status}" in str(caught.value)
    assert count(replay) == 3


async def test_no_retries_means_one_request(replay: Replay) -> None:
    replay.fault(LISTING, status=503)
    async with client(retries=0) as http:
        with pytest.raises(UpstreamUnavailable, match="failed 1 times"):
            await http.get_json(listing_url(replay))
    assert count(replay) == 1


@pytest.mark.parametrize("failures", [1, 2, 3])
async def test_success_after_n_failures(replay: Replay, failures: int) -> None:
    replay.fault(LISTING, status=503, times=failures)
    async with client(retries=3) as http:
        payload = await http.get_json(listing_url(replay))
    assert len(payload["@graph"]) == FIXTURE_PRODUCTS
    assert count(replay) == failures + 1


async def test_one_failure_too_many(replay: Replay) -> None:
    replay.fault(LISTING, status=500, times=3)
    async with client(retries=2) as http:
        with pytest.raises(UpstreamUnavailable):
            await http.get_json(listing_url(replay))
    assert count(replay) == 3


async def test_404_is_not_found_without_retry(replay: Replay) -> None:
    async with client(retries=3) as http:
        with pytest.raises(UpstreamNotFound, match="404"):
            await http.get_json(f"{replay.url}/products/no-such-product")
    assert count(replay, "/products/no-such-product") == 1


@pytest.mark.parametrize("status", [400, 401, 403, 410, 422])
async def test_other_4xx_is_rejected_without_retry(replay: Replay, status: int) -> None:
    replay.fault(LISTING, status=status)
    async with client(retries=3) as http:
        with pytest.raises(UpstreamRejected, match=f"HTTP {status}"):
            await http.get_json(listing_url(replay))
    assert count(replay) == 1


async def test_rejection_quotes_the_start_of_the_body(replay: Replay) -> None:
    replay.fault(LISTING, status=400, body="x" * 500, content_type="text/plain")
    async with client() as http:
        with pytest.raises(UpstreamRejected) as caught:
            await http.get_json(listing_url(replay))
    message = str(caught.value)
    assert message.endswith("x" * 200)
    assert "x" * 201 not in message


@pytest.mark.parametrize(
    "garbage", ["<html>oops</html>", "", "{truncated", "\ufeff{}", "[" * 100_000]
)
async def test_non_json_200_is_retried_then_transient(replay: Replay, garbage: str) -> None:
    """A 200 error page is usually temporary: retried, then a transient UpstreamGarbled."""
    replay.fault(LISTING, status=200, body=garbage)
    async with client(retries=2) as http:
        with pytest.raises(UpstreamGarbled, match="body that is not JSON") as caught:
            await http.get_json(listing_url(replay))
    assert isinstance(caught.value, TransientError)
    assert count(replay) == 3


async def test_a_garbled_answer_that_recovers_is_read(replay: Replay) -> None:
    replay.fault(LISTING, status=200, body="<html>busy</html>", times=1)
    async with client(retries=1) as http:
        assert "@graph" in await http.get_json(listing_url(replay))


async def test_json_is_read_as_utf8_whatever_charset_is_declared(replay: Replay) -> None:
    # A wrong charset header must neither crash the client nor garble the text.
    replay.fault(
        LISTING, status=200, body='{"a": "é"}', content_type="application/json; charset=ascii"
    )
    async with client(retries=0) as http:
        assert await http.get_json(listing_url(replay)) == {"a": "é"}


async def test_timeout_is_retried_then_unavailable(replay: Replay) -> None:
    replay.fault(LISTING, delay_seconds=5.0)
    started = time.perf_counter()
    async with client(retries=1, timeout_seconds=0.2) as http:
        with pytest.raises(UpstreamUnavailable, match="failed 2 times, last: timed out"):
            await http.get_json(listing_url(replay))
    # Two 0.2 s timeouts, not a 5 s wait: a wide margin, so a loaded machine passes.
    assert time.perf_counter() - started < 4.0
    assert count(replay) == 2


async def test_timeout_then_success(replay: Replay) -> None:
    replay.fault(LISTING, delay_seconds=1.0, times=1)
    async with client(retries=1, timeout_seconds=0.3) as http:
        payload = await http.get_json(listing_url(replay))
    assert len(payload["@graph"]) == FIXTURE_PRODUCTS
    assert count(replay) == 2


async def test_connection_refused_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/products"
    async with client(retries=1) as http:
        with pytest.raises(UpstreamUnavailable, match="failed 2 times, last: Client"):
            await http.get_json(url)


async def test_backoff_doubles(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(upstream_http, "asyncio", SimpleNamespace(sleep=fake_sleep))
    replay.fault(LISTING, status=503)
    async with client(retries=3, backoff=0.5) as http:
        with pytest.raises(UpstreamUnavailable):
            await http.get_json(listing_url(replay))
    assert slept == [0.5, 1.0, 2.0]


# -------------------------------------------------------------------------------- NwsClient


def summary(product_id: str, issued: str, **changes: Any) -> dict[str, Any]:
    entry = {
        "@id": f"https://api.weather.gov/products/{product_id}",
        "id": product_id,
        "wmoCollectiveId": "SRUS54",
        "issuingOffice": "KFWR",
        "issuanceTime": issued,
        "productCode": "HML",
        "productName": "Hydrologic Markup Language",
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@asynccontextmanager
async def nws(replay: Replay, *, base: Callable[[str], str] = str) -> AsyncIterator[NwsClient]:
    async with client(retries=1) as http:
        yield NwsClient(http, base(replay.url))


async def test_list_products_oldest_first(replay: Replay) -> None:
    newest_first = replay.listing()
    async with nws(replay) as api:
        listing = await api.list_products()
    assert listing.invalid == []
    assert [p.id for p in listing.products] == [p["id"] for p in reversed(newest_first)]
    times = [p.issuance_time for p in listing.products]
    assert times == sorted(times)
    first = listing.products[0]
    assert first.url == f"{replay.url}/products/{first.id}"
    assert first.product_code == "HML"
    assert first.issuance_time.utcoffset() is not None


async def test_list_products_trailing_slash_in_base_url(replay: Replay) -> None:
    async with nws(replay, base=lambda url: url + "/") as api:
        listing = await api.list_products()
    assert len(listing.products) == FIXTURE_PRODUCTS


async def test_list_products_other_type_is_empty(replay: Replay) -> None:
    async with nws(replay) as api:
        listing = await api.list_products("RVF")
    assert (listing.products, listing.invalid) == ([], [])


async def test_invalid_entries_are_reported_not_fatal(
    replay: Replay, caplog: pytest.LogCaptureFixture
) -> None:
    graph = [
        summary("late", "2025-05-05T19:00:00+00:00"),
        summary("bad-missing-time", "x", issuanceTime=None),
        summary("early", "2025-05-05T13:00:00-01:00"),  # 14:00 UTC
        summary("bad-naive", "2025-05-05T15:00:00"),
        42,
        summary("", "2025-05-05T15:00:00+00:00"),
        summary("b-tie", "2025-05-05T16:00:00+00:00"),
        summary("a-tie", "2025-05-05T16:00:00+00:00"),
    ]
    replay.fault(LISTING, status=200, body=json.dumps({"@context": {}, "@graph": graph}))
    caplog.set_level(logging.ERROR, logger="rnr.upstream.nws")
    async with nws(replay) as api:
        listing = await api.list_products()
    assert [p.id for p in listing.products] == ["early", "a-tie", "b-tie", "late"]
    assert listing.invalid == ["bad-missing-time", "bad-naive", "#4", "#5"]
    skipped = [
        r for r in caplog.records if r.getMessage() == "skipping invalid product listing entry"
    ]
    assert len(skipped) == 4


async def test_url_alias_is_accepted(replay: Replay) -> None:
    entry = summary("p1", "2025-05-05T16:00:00+00:00", **{"@id": None})
    entry["url"] = "https://example.test/products/p1"
    replay.fault(LISTING, status=200, body=json.dumps({"@graph": [entry]}))
    async with nws(replay) as api:
        listing = await api.list_products()
    assert [p.url for p in listing.products] == ["https://example.test/products/p1"]


@pytest.mark.parametrize("payload", [[], {"@graph": {}}, {"features": []}, "text", None])
async def test_listing_without_a_graph_is_rejected(replay: Replay, payload: object) -> None:
    replay.fault(LISTING, status=200, body=json.dumps(payload))
    async with nws(replay) as api:
        with pytest.raises(UpstreamRejected, match="@graph"):
            await api.list_products()


async def test_listing_outage_is_unavailable(replay: Replay) -> None:
    replay.fault(LISTING, status=503)
    async with nws(replay) as api:
        with pytest.raises(UpstreamUnavailable):
            await api.list_products()


async def test_product_text(replay: Replay) -> None:
    product_id = replay.listing()[0]["id"]
    async with nws(replay) as api:
        text = await api.product_text(product_id)
    assert text == replay.product(product_id)["productText"]
    assert "SRUS54 KFWR" in text
    assert "<site" in text


async def test_product_text_unknown_product(replay: Replay) -> None:
    async with nws(replay) as api:
        with pytest.raises(UpstreamNotFound):
            await api.product_text("no-such-product")


@pytest.mark.parametrize(
    "payload", [{"id": "x"}, {"productText": None}, {"productText": 7}, ["productText"]]
)
async def test_product_without_text_is_rejected(replay: Replay, payload: object) -> None:
    replay.fault("^/products/p-1$", status=200, body=json.dumps(payload))
    async with nws(replay) as api:
        with pytest.raises(UpstreamRejected, match="p-1 has no 'productText'"):
            await api.product_text("p-1")


@pytest.mark.parametrize(
    ("product_id", "issued"),
    [
        (".", "2025-05-05T15:00:00+00:00"),
        ("..", "2025-05-05T15:00:00+00:00"),
        ("../products", "2025-05-05T15:00:00+00:00"),
        ("a/b", "2025-05-05T15:00:00+00:00"),
        ("ok-id", "0001-01-01T00:00:00+05:00"),
        ("ok-id", "9999-12-31T23:00:00-05:00"),
    ],
)
def test_a_listing_entry_with_a_hostile_id_or_time_is_set_aside(
    product_id: str, issued: str
) -> None:
    """The listing is where a product id enters: it never becomes a key if it is a path."""
    graph = [summary("good", "2025-05-05T15:00:00+00:00"), summary(product_id, issued)]
    listing = read_listing({"@graph": graph})
    assert [p.id for p in listing.products] == ["good"]
    assert listing.invalid == [product_id]
