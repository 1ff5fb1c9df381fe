"""Each Lambda image entry point, run by the real awslambdaric against a fake Runtime API,
and the producer's ``serve`` command as compose and the scheduler use it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pyarrow.parquet as pq
import pytest

from rnr.autoscaling.wake import wake_payload
from tests.conftest import REPO_ROOT, Replay
from tests.support.broker import BrokerFixture, broker_secret
from tests.support.forecasts import forecast_file
from tests.support.lambda_invoke import Invocation, fake_lambda
from tests.support.lambda_runtime import FakeRuntime, FakeRuntimeServer
from tests.support.processes import ServiceProcess
from tests.support.servers import wait_until
from tests.unit.test_lambda_entry import listening_addresses

INVOKE_TIMEOUT = 60


@contextlib.contextmanager
def lambda_process(handler: str, env: dict[str, str]) -> Iterator[FakeRuntime]:
    server = FakeRuntimeServer()
    with server as runtime:
        process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", handler],
            env={**os.environ, **env, "AWS_LAMBDA_RUNTIME_API": server.address},
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            yield runtime
        finally:
            process.kill()
            output = process.communicate(timeout=10)[0].decode(errors="replace")
            print(output[-4000:])


@pytest.fixture
def producer_env(
    broker: BrokerFixture, redis_url: str, replay: Replay, moto_endpoint: str, unique: str
) -> dict[str, str]:
    return {
        **broker.env(),
        "REDIS_URL": redis_url,
        "DEDUPE_KEY_PREFIX": f"rnr:test:{unique}:",
        "NWS_API_URL": replay.nws_api_url,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "HTTP_RETRIES": "1",
        "HTTP_BACKOFF_SECONDS": "0.05",
    }


def test_producer_entry_point_publishes_then_dedupes_on_a_warm_start(
    producer_env: dict[str, str], replay: Replay
) -> None:
    listed = len(replay.listing())
    with lambda_process("services.producer.handler.handler", producer_env) as runtime:
        runtime.invoke({"source": "aws.scheduler"})
        first = runtime.outcome(INVOKE_TIMEOUT)
        runtime.invoke({"source": "aws.scheduler"})
        second = runtime.outcome(INVOKE_TIMEOUT)
    assert first.ok, first.body
    assert first.body["listed"] == listed
    assert first.body["published"] == listed
    assert second.ok, second.body
    assert second.body["duplicate"] == listed
    assert second.body["published"] == 0


def test_producer_entry_point_wakes_the_autoscaler_after_a_run_that_published(
    producer_env: dict[str, str], replay: Replay
) -> None:
    listed = len(replay.listing())
    with fake_lambda() as lambda_api:
        env = {
            **producer_env,
            "AWS_ENDPOINT_URL": lambda_api.endpoint,
            "AUTOSCALER_FUNCTION_NAME": "rnr-test-autoscaler",
        }
        with lambda_process("services.producer.handler.handler", env) as runtime:
            runtime.invoke({"source": "aws.scheduler"})
            first = runtime.outcome(INVOKE_TIMEOUT)
            runtime.invoke({"source": "aws.scheduler"})
            second = runtime.outcome(INVOKE_TIMEOUT)
    assert first.ok and second.ok, (first.body, second.body)
    assert (first.body["published"], first.body["autoscaler_woken"]) == (listed, True)
    assert (second.body["published"], second.body["autoscaler_woken"]) == (0, False)
    assert lambda_api.calls == [
        Invocation("rnr-test-autoscaler", "Event", {"source": "producer", "published": listed})
    ]


def test_producer_entry_point_reads_broker_credentials_from_secrets_manager(
    producer_env: dict[str, str],
    broker: BrokerFixture,
    moto_endpoint: str,
    unique: str,
    replay: Replay,
) -> None:
    arn = broker_secret(moto_endpoint, f"rnr/test/{unique}", broker)
    env = {k: v for k, v in producer_env.items() if k != "RABBITMQ_URL"}
    env |= {"RABBITMQ_ENDPOINT": broker.endpoint, "RABBITMQ_SECRET_ARN": arn}
    with lambda_process("services.producer.handler.handler", env) as runtime:
        runtime.invoke({})
        outcome = runtime.outcome(INVOKE_TIMEOUT)
    assert outcome.ok, outcome.body
    assert outcome.body["published"] == len(replay.listing())


def test_producer_entry_point_fails_loudly_when_upstream_keeps_failing(
    producer_env: dict[str, str], replay: Replay
) -> None:
    replay.fault(r"^/products$", status=503)
    with lambda_process("services.producer.handler.handler", producer_env) as runtime:
        runtime.invoke({})
        outcome = runtime.outcome(INVOKE_TIMEOUT)
    assert not outcome.ok
    assert outcome.body["errorType"] == "UpstreamUnavailable"
    assert "503" in outcome.body["errorMessage"]


def test_missing_configuration_is_an_error_naming_the_variable(producer_env) -> None:
    env = {k: v for k, v in producer_env.items() if k != "RABBITMQ_URL"}
    with lambda_process("services.producer.handler.handler", env) as runtime:
        runtime.invoke({})
        outcome = runtime.outcome(INVOKE_TIMEOUT)
    assert not outcome.ok
    assert outcome.body["errorType"] == "ConfigurationError"
    assert "RABBITMQ_URL" in outcome.body["errorMessage"]


def test_autoscaler_entry_point_returns_its_decision(
    broker: BrokerFixture, moto_endpoint: str, redis_url: str, unique: str
) -> None:
    env = {
        **broker.env(),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "REDIS_URL": redis_url,
        "AUTOSCALER_STATE_KEY_PREFIX": f"rnr:test:{unique}:autoscaler:",
        "AUTOSCALER_MODE": "dry-run",
    }
    with lambda_process("services.autoscaler.handler.handler", env) as runtime:
        runtime.invoke({})
        outcome = runtime.outcome(INVOKE_TIMEOUT)
        runtime.invoke(json.loads(wake_payload(3)))  # the very event the producer sends
        woken = runtime.outcome(INVOKE_TIMEOUT)
    assert outcome.ok, outcome.body
    assert woken.ok, woken.body
    assert (outcome.body["trigger"], woken.body["trigger"]) == ("schedule", "producer")
    assert outcome.body["queue"] == broker.queue
    assert (outcome.body["ready"], outcome.body["dead_letter_ready"]) == (0, 0)
    assert (outcome.body["rule"], outcome.body["old_count"], outcome.body["new_count"]) == (
        "steady",
        0,
        0,
    )
    assert outcome.body["depth_source"] in {"management_api", "amqp_passive_declare"}


def test_postproc_entry_point_writes_the_table(
    bucket: str, moto_endpoint: str, sample_hydrofabric: str
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    t0 = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    key, data = forecast_file("PRLL1", t0=t0)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    env = {
        "OUTPUT_BUCKET": bucket,
        "INPUT_BUCKET": bucket,
        "HYDROFABRIC_LOCATION": sample_hydrofabric,
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    with lambda_process("services.postproc.handler.handler", env) as runtime:
        runtime.invoke({})
        outcome = runtime.outcome(INVOKE_TIMEOUT)
    assert outcome.ok, outcome.body
    assert (outcome.body["processed"], outcome.body["written"]) == (1, True)
    latest = s3.get_object(Bucket=bucket, Key=outcome.body["latest_key"])["Body"].read()
    assert pq.read_table(io.BytesIO(latest)).num_rows == outcome.body["table_rows"] > 0


# ------------------------------------------------------------------ serve, over HTTP

INVOKE_TOKEN = "e2e-invoke-token-0123456789abcdef"


@contextlib.contextmanager
def producer_serving(env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    """``python -m services.producer serve`` as compose runs it, stopped with SIGTERM."""
    service = ServiceProcess([sys.executable, "-m", "services.producer", "serve"], env)
    for name in ("HTTP_HOST", "INVOKE_TOKEN"):  # only what the test gives
        if name not in env:
            service.env.pop(name, None)
    service.start(tmp_path)
    try:
        wait_until(lambda: service.status("/healthz") == 200, timeout=60, what="producer serve")
        yield service
    finally:
        service.signal(signal.SIGTERM)
        try:
            assert service.wait(timeout=15) == 0, service.log()[-3000:]
        finally:
            service.stop()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_producer_serve_beyond_loopback_runs_only_for_the_token(
    producer_env: dict[str, str], replay: Replay, tmp_path: Path
) -> None:
    listed = len(replay.listing())
    env = {**producer_env, "HTTP_HOST": "0.0.0.0", "INVOKE_TOKEN": INVOKE_TOKEN}
    with producer_serving(env, tmp_path) as service:
        assert listening_addresses(service.http_port) == {"0.0.0.0"}
        before = replay.requests()
        refused = httpx.post(f"{service.url}/invoke", json={}, timeout=10)
        assert replay.requests() == before  # no run reached weather.gov
        answer = httpx.post(
            f"{service.url}/invoke",
            json={"source": "devstack.local.scheduler"},
            headers={"Authorization": f"Bearer {INVOKE_TOKEN}"},
            timeout=INVOKE_TIMEOUT,
        )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert answer.status_code == 200, answer.text
    assert answer.json()["published"] == listed


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_producer_serve_beyond_loopback_without_a_token_keeps_invoke_closed(
    producer_env: dict[str, str], replay: Replay, tmp_path: Path
) -> None:
    with producer_serving({**producer_env, "HTTP_HOST": "0.0.0.0"}, tmp_path) as service:
        before = replay.requests()
        answer = httpx.post(f"{service.url}/invoke", json={}, timeout=10)
        assert replay.requests() == before
        # A body /invoke could never take is a clear 4xx too, never a traceback.
        binary = httpx.post(f"{service.url}/invoke", content=b"\xff" * 10, timeout=10)
        log = service.log()
    assert answer.status_code == binary.status_code == 403
    assert "Set INVOKE_TOKEN" in answer.json()["detail"]
    assert log.count("/invoke is disabled") == 1
    assert "Traceback" not in log


def test_producer_serve_listens_on_loopback_by_default_and_refuses_bad_bodies(
    producer_env: dict[str, str], replay: Replay, tmp_path: Path
) -> None:
    with producer_serving(producer_env, tmp_path) as service:
        if Path("/proc/net/tcp").exists():
            assert listening_addresses(service.http_port) == {"127.0.0.1"}
        before = replay.requests()
        answers = [
            httpx.post(f"{service.url}/invoke", content=body, timeout=10)
            for body in (b"\xff\xfe", b"{oops", b"[]", b" " * (64 * 1024 + 1))
        ]
        assert replay.requests() == before
        log = service.log()
    assert [answer.status_code for answer in answers] == [400, 400, 400, 413]
    assert answers[0].json() == {"detail": "body is not UTF-8: byte 0xff at position 0"}
    assert "Traceback" not in log
