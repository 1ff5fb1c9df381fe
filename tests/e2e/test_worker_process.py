"""The worker as its own process: the pipeline end to end, crashes, shutdown, broker restart."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aio_pika
import boto3
import pytest

from devstack.brokers import RabbitMQNode
from rnr.hydro.hml import extract_lids
from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import declare_topology
from tests.conftest import Replay
from tests.support.broker import BrokerFixture
from tests.support.ecs_agent import fake_ecs_agent
from tests.support.messages import product_message
from tests.support.processes import (
    REPO_ROOT,
    ServiceProcess,
    producer_once_command,
    worker_command,
)
from tests.support.servers import wait_until


@pytest.fixture
def s3(moto_endpoint: str):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def service_env(
    broker: BrokerFixture,
    redis_url: str,
    replay: Replay,
    moto_endpoint: str,
    bucket: str,
    unique: str,
    sample_hydrofabric: str,
    tmp_path_factory,
) -> dict[str, str]:
    return {
        **broker.env(),
        "REDIS_URL": redis_url,
        "DEDUPE_KEY_PREFIX": f"rnr:test:{unique}:",
        "NWS_API_URL": replay.nws_api_url,
        "NWPS_API_URL": replay.nwps_api_url,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "OUTPUT_BUCKET": bucket,
        "INPUT_BUCKET": bucket,
        "HYDROFABRIC_LOCATION": sample_hydrofabric,
        "HYDROFABRIC_CACHE_DIR": str(tmp_path_factory.mktemp("hydrofabric")),
        "HTTP_TIMEOUT_SECONDS": "30",
        "HTTP_RETRIES": "1",
        "HTTP_BACKOFF_SECONDS": "0.05",
        "WORKER_PREFETCH": "4",
    }


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.stop()
    for service in started:
        print(f"--- {service.command} log ---\n{service.log()[-3000:]}")


def start_worker(
    services: list[ServiceProcess], env: dict[str, str], tmp_path: Path, **extra: str
) -> ServiceProcess:
    worker = ServiceProcess(worker_command(), {**env, **extra}).start(tmp_path)
    services.append(worker)
    worker.wait_ready()
    return worker


def run_producer(env: dict[str, str]) -> dict[str, int]:
    import os

    finished = subprocess.run(
        producer_once_command(),
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr.decode() + finished.stdout.decode()
    return json.loads(finished.stdout.decode().strip().splitlines()[-1])


def publish_product(broker: BrokerFixture, product_id: str) -> None:
    """Publish one product the way the producer does, without listing the others."""

    async def publish() -> None:
        connection = await aio_pika.connect(broker.url)
        async with connection:
            channel = await Publisher.open_channel(connection)
            declared = await declare_topology(channel, broker.topology())
            await Publisher(declared.exchange, timeout_seconds=5).publish(
                product_message(product_id).to_body(),
                routing_key=broker.topology().routing_key,
                message_id=product_id,
                correlation_id=product_id,
            )

    asyncio.run(publish())


def outputs(s3, bucket: str, prefix: str = "replace_and_route/products/") -> dict[str, int]:
    """Product record key -> number of versions written (the bucket is versioned)."""
    versions: dict[str, int] = {}
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for version in page.get("Versions", []):
            versions[version["Key"]] = versions.get(version["Key"], 0) + 1
    return versions


@pytest.fixture
def queue_depth(rabbitmq_node: RabbitMQNode) -> Callable[[str], int]:
    """Ready plus unacknowledged messages of a queue, as the session's node counts them
    (``rabbitmqctl -n <node> list_queues``: at once, unlike the management API)."""

    def depth(queue: str) -> int:
        listed = rabbitmq_node.ctl("list_queues", "--no-table-headers", "name", "messages")
        for line in listed.splitlines():
            name, _, count = line.partition("\t")
            if name == queue:
                return int(count)
        raise AssertionError(f"queue {queue} not found")

    return depth


def test_products_flow_from_producer_through_worker_to_s3(
    service_env,
    services,
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
    queue_depth: Callable[[str], int],
) -> None:
    start_worker(services, service_env, tmp_path)
    summary = run_producer(service_env)
    listing = replay.listing()
    assert summary["published"] == len(listing) > 0
    wait_until(lambda: len(outputs(s3, bucket)) == len(listing), timeout=30, what="all outputs")
    written = outputs(s3, bucket)
    assert set(written.values()) == {1}
    for product in listing:
        [key] = [k for k in written if k.endswith(f"/{product['id']}.json")]
        record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        text = replay.product(product["id"])["productText"]
        assert record["lids"] == extract_lids(text).lids
        assert record["product_id"] == product["id"]
    # A second run publishes nothing new, so nothing is written twice.
    assert run_producer(service_env)["duplicate"] == len(listing)
    time.sleep(1)
    assert set(outputs(s3, bucket).values()) == {1}
    assert queue_depth(broker.topology().dead_letter_queue) == 0


def worker_busy_with_slow_message(
    services,
    env: dict[str, str],
    tmp_path,
    replay: Replay,
    broker: BrokerFixture,
    *,
    delay_seconds: float,
    **worker_env: str,
) -> ServiceProcess:
    """A worker whose one message hangs ``delay_seconds`` fetching its product text."""
    [product] = replay.add_products(1)
    replay.fault(f"^/products/{product['id']}$", delay_seconds=delay_seconds, times=1)
    worker = start_worker(services, env, tmp_path, **worker_env)
    publish_product(broker, product["id"])
    wait_until(lambda: worker.metric("rnr_worker_in_flight_messages") == 1, timeout=15)
    return worker


def test_worker_killed_mid_message_redelivers_and_writes_exactly_once(
    service_env,
    services,
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
    queue_depth: Callable[[str], int],
) -> None:
    # The first fetch of the product's text hangs long enough to kill the worker.
    first = worker_busy_with_slow_message(
        services, service_env, tmp_path, replay, broker, delay_seconds=20
    )
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert outputs(s3, bucket) == {}

    second = start_worker(services, service_env, tmp_path)
    wait_until(lambda: len(outputs(s3, bucket)) == 1, timeout=30, what="output after redelivery")
    time.sleep(1.0)
    assert list(outputs(s3, bucket).values()) == [1]
    forecasts = {k: v for k, v in outputs(s3, bucket, "replace_and_route/").items() if ".nc" in k}
    assert forecasts  # the product's flooding gauges were routed...
    assert set(forecasts.values()) == {1}  # ...and each forecast written once
    assert second.metric('rnr_worker_messages_total{outcome="acked"}') == 1
    assert queue_depth(broker.queue) == 0
    assert queue_depth(broker.topology().dead_letter_queue) == 0


def test_sigterm_finishes_in_flight_work_and_exits_zero(
    service_env,
    services,
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
    queue_depth: Callable[[str], int],
) -> None:
    worker = worker_busy_with_slow_message(
        services, service_env, tmp_path, replay, broker, delay_seconds=2
    )
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert time.monotonic() - started < 30
    assert len(outputs(s3, bucket)) == 1
    assert queue_depth(broker.queue) == 0


def test_readyz_turns_503_at_sigterm_and_answers_until_the_drain_ends(
    service_env, services, tmp_path, replay: Replay, s3, bucket: str, broker: BrokerFixture
) -> None:
    worker = worker_busy_with_slow_message(
        services, service_env, tmp_path, replay, broker, delay_seconds=4
    )
    assert worker.status("/readyz") == 200
    worker.signal(signal.SIGTERM)
    wait_until(lambda: worker.status("/readyz") == 503, timeout=2, what="/readyz 503")
    # Still draining the message: the server answers, and says why it is not ready.
    assert worker.process is not None and worker.process.poll() is None
    assert worker.status("/healthz") == 200
    assert worker.wait(timeout=30) == 0
    assert len(outputs(s3, bucket)) == 1


# From 0.15 s: the interpreter's own start (about 25 ms here) comes before any Python
# code can install a handler.
@pytest.mark.parametrize("after_seconds", [0.15, 0.5, 1.5])
def test_sigterm_during_start_up_exits_zero_and_takes_no_message(
    service_env,
    services,
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
    queue_depth: Callable[[str], int],
    after_seconds: float,
) -> None:
    """During the imports (-15 before the fix), or while loading the hydrofabric or
    connecting (the consumer started anyway before the fix)."""
    [product] = replay.add_products(1)
    publish_product(broker, product["id"])
    worker = ServiceProcess(worker_command(), service_env).start(tmp_path)
    services.append(worker)
    time.sleep(after_seconds)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert "consuming" not in [line.get("message") for line in log_lines(worker)]
    assert outputs(s3, bucket) == {}
    wait_until(lambda: queue_depth(broker.queue) == 1, timeout=10, what="untouched")


def log_lines(service: ServiceProcess) -> list[dict]:
    lines = []
    for line in service.log().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def test_sigterm_requeues_work_that_outlasts_the_drain_time(
    service_env,
    services,
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
    queue_depth: Callable[[str], int],
) -> None:
    worker = worker_busy_with_slow_message(
        services,
        service_env,
        tmp_path,
        replay,
        broker,
        delay_seconds=25,
        WORKER_STOP_TIMEOUT_SECONDS="8",  # a drain of 1 s
    )
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert outputs(s3, bucket) == {}
    wait_until(lambda: queue_depth(broker.queue) == 1, timeout=10, what="requeued")


def test_worker_holds_scale_in_protection_only_while_a_message_is_in_flight(
    service_env, services, tmp_path, replay: Replay, s3, bucket: str, broker: BrokerFixture
) -> None:
    with fake_ecs_agent() as agent:
        worker = worker_busy_with_slow_message(
            services,
            service_env,
            tmp_path,
            replay,
            broker,
            delay_seconds=3,
            ECS_AGENT_URI=agent.uri,
        )
        assert agent.calls == [{"ProtectionEnabled": True, "ExpiresInMinutes": 10}]
        assert worker.metric("rnr_worker_scale_in_protected") == 1
        wait_until(lambda: len(outputs(s3, bucket)) == 1, timeout=30, what="the output")
        wait_until(lambda: agent.states == [True, False], timeout=15, what="the release")
        assert worker.metric("rnr_worker_scale_in_protected") == 0


def test_readyz_is_503_while_rabbitmq_is_down_and_recovers_by_itself(
    service_env,
    services,
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
    rabbitmq_node: RabbitMQNode,
) -> None:
    worker = start_worker(services, service_env, tmp_path)
    try:
        rabbitmq_node.stop_app()  # the session's own node: never a broker on 5672
        wait_until(lambda: worker.status("/readyz") == 503, timeout=30, what="readyz 503")
        assert worker.status("/healthz") == 200
    finally:
        rabbitmq_node.start_app()
    wait_until(lambda: worker.status("/readyz") == 200, timeout=90, what="readyz back to 200")
    # The restored consumer really consumes.
    [product] = replay.add_products(1)
    publish_product(broker, product["id"])
    wait_until(lambda: len(outputs(s3, bucket)) == 1, timeout=30, what="output after restart")
