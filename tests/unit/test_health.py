"""Unit tests for rnr.core.health.create_http_app: /healthz, /readyz, /metrics and the
request body limit (against a real uvicorn where the wire matters)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, Gauge

from rnr.core import health
from rnr.core.health import ReadinessCheck, create_http_app
from tests.support.servers import free_port, uvicorn_in_thread


async def ok() -> None:
    await asyncio.sleep(0)


async def broken() -> None:
    raise ConnectionError("redis refused the connection")


async def silent_failure() -> None:
    raise RuntimeError


async def hangs() -> None:
    await asyncio.Event().wait()


@contextmanager
def serve(
    checks: Mapping[str, ReadinessCheck] | None = None,
    registry: CollectorRegistry | None = None,
    **options: object,
) -> Iterator[TestClient]:
    app = create_http_app("svc", registry or CollectorRegistry(), checks or {}, **options)  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


def test_healthz() -> None:
    with serve({"broken": broken}) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 200  # alive even when a dependency is not
    assert answer.json() == {"status": "ok", "service": "svc"}


def test_readyz_all_ok() -> None:
    with serve({"rabbitmq": ok, "redis": ok}) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "service": "svc",
        "checks": {"rabbitmq": {"ok": True}, "redis": {"ok": True}},
    }


def test_readyz_without_checks_is_ready() -> None:
    with serve({}) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {}


def test_readyz_names_the_failing_check() -> None:
    with serve({"rabbitmq": ok, "redis": broken}) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not_ready",
        "service": "svc",
        "checks": {
            "rabbitmq": {"ok": True},
            "redis": {"ok": False, "detail": "redis refused the connection"},
        },
    }


def test_an_exception_without_text_is_named_by_its_type() -> None:
    with serve({"s3": silent_failure}) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["s3"] == {"ok": False, "detail": "RuntimeError"}


def test_readyz_recovers_when_the_dependency_does() -> None:
    healthy = False

    async def flaky() -> None:
        if not healthy:
            raise ConnectionError("down")

    with serve({"broker": flaky}) as client:
        assert client.get("/readyz").status_code == 503
        healthy = True
        assert client.get("/readyz").status_code == 200


def test_a_hanging_check_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.2)
    waiting = 0
    most_waiting = 0

    async def hangs_counted() -> None:
        nonlocal waiting, most_waiting
        waiting += 1
        most_waiting = max(most_waiting, waiting)
        try:
            await asyncio.Event().wait()
        finally:
            waiting -= 1

    checks_to_run = {"rabbitmq": ok, "redis": hangs_counted, "s3": hangs, "secrets": hangs_counted}
    with serve(checks_to_run) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["rabbitmq"] == {"ok": True}
    for name in ("redis", "s3", "secrets"):
        assert checks[name] == {"ok": False, "detail": "no answer within 0.2s"}
    # The checks run concurrently, not one after another: both counted ones were waiting
    # at the same time (a count, not a clock, so a loaded machine cannot fail it).
    assert most_waiting == 2


def test_metrics_exposes_the_registry_passed_in() -> None:
    registry = CollectorRegistry()
    published = Counter("rnr_test_published", "Products published", registry=registry)
    depth = Gauge("rnr_test_queue_depth", "Queue depth", ["queue"], registry=registry)
    published.inc(3)
    depth.labels("rnr.products").set(7)
    other = CollectorRegistry()
    Counter("rnr_test_elsewhere", "Another service's counter", registry=other).inc()

    with serve({}, registry) as client:
        answer = client.get("/metrics")
        published.inc()
        again = client.get("/metrics").text
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "rnr_test_published_total 3.0" in answer.text
    assert 'rnr_test_queue_depth{queue="rnr.products"} 7.0' in answer.text
    assert "rnr_test_elsewhere" not in answer.text
    assert "rnr_test_published_total 4.0" in again


def test_docs_are_disabled() -> None:
    with serve({}) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404


def test_lifespan_is_run() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    with serve({}, lifespan=lifespan) as client:
        assert events == ["start"]
        assert client.get("/healthz").status_code == 200
    assert events == ["start", "stop"]


# ------------------------------------------------------------------ request body limit


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def raw_request(base_url: str, head: str, body: bytes = b"", timeout: float = 10) -> RawAnswer:
    """Send exactly these bytes (a client library would not send a Content-Length it
    does not mean) and read the answer, which may come before the body is sent."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return RawAnswer(
            answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        )


def app_with_echo(**options: object) -> FastAPI:
    """The health app plus an endpoint that reads its whole body, as a future one might."""
    app = create_http_app("svc", CollectorRegistry(), {}, **options)  # type: ignore[arg-type]

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return app


def chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_the_default_limit_is_one_mebibyte() -> None:
    assert health.MAX_REQUEST_BODY_BYTES == 1024 * 1024


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read() -> None:
    app = create_http_app("svc", CollectorRegistry(), {})
    declared = health.MAX_REQUEST_BODY_BYTES + 1
    with uvicorn_in_thread(app, free_port()) as url:
        # Headers only: a server that waited for the body would never answer.
        answer = raw_request(url, f"GET /healthz HTTP/1.1\nHost: svc\nContent-Length: {declared}\n")
        assert httpx.get(f"{url}/healthz").status_code == 200  # the server is fine
    assert answer.status == 413
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "detail": f"request body is larger than the limit of {health.MAX_REQUEST_BODY_BYTES} bytes"
    }


def test_a_streamed_body_over_the_limit_is_cut_off() -> None:
    sent = 0

    def counted(total: int) -> Iterator[bytes]:
        nonlocal sent
        for chunk in chunks(total):
            sent += len(chunk)
            yield chunk

    with uvicorn_in_thread(app_with_echo(max_body_bytes=10_000), free_port()) as url:
        # Chunked: no Content-Length to refuse up front. 64 MiB would take a while to
        # send; the server stops reading long before.
        answer = httpx.post(f"{url}/echo", content=counted(64 * 1024 * 1024), timeout=30)
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body is larger than the limit of 10000 bytes"}
    assert answer.headers["connection"] == "close"
    assert sent < 4 * 1024 * 1024


def test_bodies_within_the_limit_reach_the_endpoint() -> None:
    with uvicorn_in_thread(app_with_echo(max_body_bytes=10_000), free_port()) as url:
        declared = httpx.post(f"{url}/echo", content=b"x" * 10_000)
        streamed = httpx.post(f"{url}/echo", content=chunks(10_000, size=1000))
        over = httpx.post(f"{url}/echo", content=b"x" * 10_001)
    assert declared.status_code == streamed.status_code == 200
    assert declared.json() == streamed.json() == {"received": 10_000}
    assert over.status_code == 413


@pytest.mark.parametrize("value", ["ten", "-1", "1e3", "²"])
def test_a_malformed_content_length_is_a_400(value: str) -> None:
    # uvicorn refuses these itself; any other server in front of the app may not.
    app = create_http_app("svc", CollectorRegistry(), {})
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"svc"), (b"content-length", value.encode("latin-1"))],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {  # type: ignore[arg-type]
        "detail": "Content-Length is not a non-negative integer"
    }
