"""Unit tests for rnr.core.health.create_http_app: /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, Gauge

from rnr.core import health
from rnr.core.health import ReadinessCheck, create_http_app


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
