"""Each Lambda image entry point, run by the real awslambdaric against a fake Runtime API."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pyarrow.parquet as pq
import pytest

from rnr.autoscaling.wake import wake_payload
from tests.conftest import REPO_ROOT, Replay
from tests.support.broker import BrokerFixture, broker_secret
from tests.support.forecasts import forecast_file
from tests.support.lambda_invoke import Invocation, fake_lambda
from tests.support.lambda_runtime import FakeRuntime, FakeRuntimeServer

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
    producer_env: dict[str, str], moto_endpoint: str, unique: str, replay: Replay
) -> None:
    arn = broker_secret(moto_endpoint, f"rnr/test/{unique}")
    env = {k: v for k, v in producer_env.items() if k != "RABBITMQ_URL"}
    env |= {"RABBITMQ_ENDPOINT": "amqp://127.0.0.1:5672", "RABBITMQ_SECRET_ARN": arn}
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
