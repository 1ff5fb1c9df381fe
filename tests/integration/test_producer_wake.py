"""The producer's wake of the autoscaler: whole runs (real RabbitMQ, Redis, the replay
server) with the AWS SDK pointed at a fake Lambda Invoke API that records the invokes.

moto's Lambda needs a Docker engine to invoke and keeps no record of Event invokes
without one, so the fake (tests/support/lambda_invoke.py) stands in for Lambda.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry

from rnr.core.settings import load_settings
from services.producer import producer
from services.producer.settings import ProducerSettings
from tests.conftest import Replay
from tests.support.broker import BrokerFixture
from tests.support.lambda_invoke import FakeLambda, Invocation, fake_lambda
from tests.support.servers import free_port

FUNCTION = "rnr-test-autoscaler"


@pytest.fixture
def lambda_api() -> Iterator[FakeLambda]:
    with fake_lambda() as fake:
        yield fake


@pytest.fixture
async def producer_env(
    broker: BrokerFixture, redis_url: str, replay: Replay, unique: str
) -> AsyncIterator[dict[str, str]]:
    prefix = f"rnr:test:{unique}:"
    yield {
        **broker.env(),
        "REDIS_URL": redis_url,
        "DEDUPE_KEY_PREFIX": prefix,
        "NWS_API_URL": replay.nws_api_url,
        "HTTP_RETRIES": "1",
        "HTTP_BACKOFF_SECONDS": "0.05",
    }
    client = redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> producer.ProducerState:
    """A fresh state from the environment, as a Lambda cold start builds it."""
    monkeypatch.delenv("AUTOSCALER_FUNCTION_NAME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return producer.setup(load_settings(ProducerSettings), CollectorRegistry())


def wakes(state: producer.ProducerState, result: str) -> float:
    return state.metrics.wakes.labels(result)._value.get()


async def test_a_run_that_published_wakes_the_autoscaler_once_and_an_idle_run_does_not(
    producer_env: dict[str, str],
    lambda_api: FakeLambda,
    replay: Replay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = len(replay.listing())
    state = start(
        monkeypatch,
        {
            **producer_env,
            "AWS_ENDPOINT_URL": lambda_api.endpoint,
            "AUTOSCALER_FUNCTION_NAME": FUNCTION,
        },
    )
    first = await producer.run(state, {})
    assert (first["published"], first["autoscaler_woken"]) == (listed, True)
    assert lambda_api.calls == [
        Invocation(FUNCTION, "Event", {"source": "producer", "published": listed})
    ]

    second = await producer.run(state, {})  # every product is a duplicate now
    assert (second["published"], second["autoscaler_woken"]) == (0, False)
    assert len(lambda_api.calls) == 1
    assert (wakes(state, "ok"), wakes(state, "failed")) == (1, 0)


async def test_without_a_function_name_the_producer_invokes_nothing(
    producer_env: dict[str, str], lambda_api: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = start(monkeypatch, {**producer_env, "AWS_ENDPOINT_URL": lambda_api.endpoint})
    result = await producer.run(state, {})
    assert result["published"] > 0
    assert result["autoscaler_woken"] is False
    assert lambda_api.calls == []
    assert (wakes(state, "ok"), wakes(state, "failed")) == (0, 0)


async def test_a_refused_wake_is_logged_and_counted_and_the_run_succeeds(
    producer_env: dict[str, str],
    lambda_api: FakeLambda,
    replay: Replay,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lambda_api.status = 500
    state = start(
        monkeypatch,
        {
            **producer_env,
            "AWS_ENDPOINT_URL": lambda_api.endpoint,
            "AUTOSCALER_FUNCTION_NAME": FUNCTION,
        },
    )
    with caplog.at_level(logging.WARNING, logger="rnr.autoscaling.wake"):
        result = await producer.run(state, {})
    assert (result["published"], result["autoscaler_woken"]) == (len(replay.listing()), False)
    # The first attempt and the one retry the wake's client allows (WAKE_CLIENT_CONFIG).
    assert [call.function_name for call in lambda_api.calls] == [FUNCTION, FUNCTION]
    assert (wakes(state, "ok"), wakes(state, "failed")) == (0, 1)
    [warning] = [r for r in caplog.records if r.message.startswith("could not wake")]
    assert warning.function_name == FUNCTION  # type: ignore[attr-defined]


async def test_an_unreachable_lambda_endpoint_does_not_fail_the_run(
    producer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    state = start(
        monkeypatch,
        {**producer_env, "AWS_ENDPOINT_URL": nobody, "AUTOSCALER_FUNCTION_NAME": FUNCTION},
    )
    result = await producer.run(state, {})
    assert result["published"] > 0
    assert result["autoscaler_woken"] is False
    assert (wakes(state, "ok"), wakes(state, "failed")) == (0, 1)
