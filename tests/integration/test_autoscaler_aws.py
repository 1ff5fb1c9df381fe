"""ECS and CloudWatch calls against moto in server mode, and the whole autoscaler run
against the real RabbitMQ, Redis and moto's ECS and CloudWatch."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aio_pika
import boto3
import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry, generate_latest

from rnr.autoscaling.cloudwatch import METRIC_NAME, put_backlog_per_task
from rnr.autoscaling.ecs import ServiceCounts, describe_service, service_counts, set_desired_count
from rnr.autoscaling.state import StabilizationStore
from rnr.core.errors import ConfigurationError
from rnr.core.settings import AwsSettings, load_settings
from rnr.messaging.topology import declare_topology
from rnr.storage.aws import AwsClients
from services.autoscaler import autoscaler
from services.autoscaler.settings import AutoscalerSettings
from tests.support.broker import BrokerFixture
from tests.support.management import management_shows


@dataclass(frozen=True)
class EcsService:
    cluster: str
    service: str
    endpoint: str

    def boto(self, name: str):  # type: ignore[no-untyped-def]
        return boto3.client(name, endpoint_url=self.endpoint, region_name="us-east-1")

    def desired(self) -> int:
        answer = self.boto("ecs").describe_services(cluster=self.cluster, services=[self.service])
        return answer["services"][0]["desiredCount"]

    def metric_values(self, namespace: str) -> list[float]:
        now = dt.datetime.now(dt.UTC)
        answer = self.boto("cloudwatch").get_metric_statistics(
            Namespace=namespace,
            MetricName=METRIC_NAME,
            Dimensions=[
                {"Name": "ClusterName", "Value": self.cluster},
                {"Name": "ServiceName", "Value": self.service},
            ],
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=10),
            Period=60,
            Statistics=["Maximum"],
        )
        return [point["Maximum"] for point in answer["Datapoints"]]


@pytest.fixture
def ecs_service(moto_endpoint: str, unique: str) -> Iterator[EcsService]:
    """A Fargate service with no tasks, as the worker service is when idle."""
    service = EcsService(f"rnr-test-{unique}", "worker", moto_endpoint)
    ecs = service.boto("ecs")
    ecs.create_cluster(clusterName=service.cluster)
    ecs.register_task_definition(
        family=f"rnr-worker-{unique}",
        containerDefinitions=[{"name": "worker", "image": "rnr/worker", "memory": 2048}],
    )
    ecs.create_service(
        cluster=service.cluster,
        serviceName=service.service,
        taskDefinition=f"rnr-worker-{unique}",
        desiredCount=0,
        launchType="FARGATE",
    )
    yield service
    ecs.delete_service(cluster=service.cluster, service=service.service, force=True)


@pytest.fixture
def aws(moto_endpoint: str) -> AwsClients:
    return AwsClients(AwsSettings(aws_endpoint_url=moto_endpoint))


# ------------------------------------------------------------------------ the adapters


async def test_describe_and_set_the_desired_count(ecs_service: EcsService, aws: AwsClients) -> None:
    async with aws.client("ecs") as ecs:
        before = await describe_service(ecs, ecs_service.cluster, ecs_service.service)
        await set_desired_count(ecs, ecs_service.cluster, ecs_service.service, 3)
        after = await describe_service(ecs, ecs_service.cluster, ecs_service.service)
    assert before == ServiceCounts(0, 0, 0, False)
    assert (after.desired, after.deployment_in_progress) == (3, False)
    assert ecs_service.desired() == 3


async def test_a_missing_service_is_a_configuration_error(
    ecs_service: EcsService, aws: AwsClients
) -> None:
    async with aws.client("ecs") as ecs:
        with pytest.raises(ConfigurationError, match="ECS_SERVICE"):
            await describe_service(ecs, ecs_service.cluster, "no-such-service")


@pytest.mark.parametrize(
    ("deployments", "in_progress"),
    [
        ([], False),
        ([{"status": "PRIMARY", "rolloutState": "COMPLETED"}], False),
        ([{"status": "PRIMARY", "rolloutState": "IN_PROGRESS"}], True),
        ([{"status": "PRIMARY", "rolloutState": "COMPLETED"}, {"status": "ACTIVE"}], True),
    ],
)
def test_deployment_in_progress(deployments: list[dict[str, str]], in_progress: bool) -> None:
    entry = {"desiredCount": 2, "runningCount": 1, "pendingCount": 1, "deployments": deployments}
    assert service_counts(entry) == ServiceCounts(2, 1, 1, in_progress)


async def test_backlog_per_task_reaches_cloudwatch(
    ecs_service: EcsService, aws: AwsClients
) -> None:
    async with aws.client("cloudwatch") as cloudwatch:
        await put_backlog_per_task(
            cloudwatch, "rnr-test", ecs_service.cluster, ecs_service.service, 12.5
        )
    assert ecs_service.metric_values("rnr-test") == [12.5]


# ------------------------------------------------------------------- the whole run


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(redis_url)
    yield client
    await client.aclose()


async def fill(broker: BrokerFixture, count: int) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        declared = await declare_topology(channel, broker.topology())
        for i in range(count):
            await declared.exchange.publish(
                aio_pika.Message(b"{}", message_id=str(i)), routing_key=broker.queue
            )
    await management_shows(broker, broker.queue, ready=count)


async def purge(broker: BrokerFixture) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        await (await channel.get_queue(broker.queue)).purge()
    await management_shows(broker, broker.queue, ready=0)


def autoscaler_env(
    broker: BrokerFixture, redis_url: str, unique: str, moto_endpoint: str, **extra: str
) -> dict[str, str]:
    return {
        **broker.env(),
        "RABBITMQ_QUEUE_TYPE": "quorum",
        "REDIS_URL": redis_url,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AUTOSCALER_STATE_KEY_PREFIX": f"rnr:test:{unique}:autoscaler:",
        "AUTOSCALER_TARGET_PER_TASK": "50",
        "AUTOSCALER_STABILIZATION_SECONDS": "300",
        **extra,
    }


def direct_env(
    broker: BrokerFixture, redis_url: str, unique: str, ecs_service: EcsService
) -> dict[str, str]:
    """The autoscaler in ``direct`` mode on the test's ECS service."""
    return autoscaler_env(
        broker,
        redis_url,
        unique,
        ecs_service.endpoint,
        AUTOSCALER_MODE="direct",
        ECS_CLUSTER=ecs_service.cluster,
        ECS_SERVICE=ecs_service.service,
    )


async def invoke(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], event: dict[str, object] | None = None
) -> dict[str, object]:
    """One run on a fresh state object: what a Lambda cold start does."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state = autoscaler.setup(load_settings(AutoscalerSettings), CollectorRegistry())
    try:
        return await autoscaler.run(state, event or {})
    finally:
        if state.session is not None:
            await state.session.close()


async def test_direct_mode_scales_from_zero_then_holds_across_cold_starts(
    broker: BrokerFixture,
    redis_url: str,
    unique: str,
    moto_endpoint: str,
    ecs_service: EcsService,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
) -> None:
    env = direct_env(broker, redis_url, unique, ecs_service)
    await fill(broker, 120)
    first = await invoke(monkeypatch, env)
    assert first["rule"] == "activate_from_zero"
    assert first["oldest_message_age_seconds"] == 0.0  # first seen waiting just now
    assert (first["old_count"], first["new_count"], first["action"]) == (0, 3, "set_desired_count")
    assert first["backlog"] == 120 and first["tasks_source"] == "ecs"
    assert first["depth_source"] in {"management_api", "amqp_passive_declare"}
    assert ecs_service.desired() == 3

    # The queue empties; each run is a cold start, yet the window read from Redis holds.
    await purge(broker)
    second = await invoke(monkeypatch, env)
    assert second["rule"] in {"scale_in_stabilizing", "scale_in_held_unknown"}
    assert (second["new_count"], ecs_service.desired()) == (3, 3)
    key = f"rnr:test:{unique}:autoscaler:{ecs_service.cluster}/{ecs_service.service}"
    stored = json.loads(await redis_client.get(key))
    assert [tasks for _, tasks in stored][-2:] == [3, 0]
    assert second["oldest_message_age_seconds"] == 0.0  # the queue is empty now
    await redis_client.delete(key)


async def test_waiting_time_counts_from_the_first_run_that_saw_ready_messages(
    redis_client: redis.Redis, unique: str
) -> None:
    store = StabilizationStore(redis_client, f"rnr:test:{unique}:autoscaler:q", ttl_seconds=600)
    assert await store.ready_since(5, now_s=1000.0) == 0.0
    assert await store.ready_since(9, now_s=1060.0) == 60.0
    assert await store.ready_since(1, now_s=1120.0) == 120.0
    assert await store.ready_since(0, now_s=1180.0) == 0.0  # drained: the clock resets
    assert await store.ready_since(3, now_s=1240.0) == 0.0
    assert await store.ready_since(3, now_s=1270.0) == 30.0


async def test_waiting_time_is_unknown_when_redis_is_unreachable() -> None:
    client = redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    store = StabilizationStore(client, "rnr:test:unreachable", ttl_seconds=600)
    try:
        assert await store.ready_since(5, now_s=1000.0) is None
    finally:
        await client.aclose()


async def test_metric_mode_publishes_backlog_per_task_without_touching_the_service(
    broker: BrokerFixture,
    redis_url: str,
    unique: str,
    moto_endpoint: str,
    ecs_service: EcsService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespace = f"rnr-test-{unique}"
    env = autoscaler_env(
        broker,
        redis_url,
        unique,
        moto_endpoint,
        AUTOSCALER_MODE="metric",
        AUTOSCALER_METRIC_NAMESPACE=namespace,
        ECS_CLUSTER=ecs_service.cluster,
        ECS_SERVICE=ecs_service.service,
    )
    await fill(broker, 30)
    record = await invoke(monkeypatch, env)
    # No task runs: the metric is the whole backlog, above any target, so a
    # target-tracking policy scales out from zero.
    assert (record["action"], record["running"], record["backlog_per_task"]) == (
        "put_metric",
        0,
        30.0,
    )
    assert ecs_service.metric_values(namespace) == [30.0]
    assert ecs_service.desired() == 0


async def test_dry_run_without_ecs_counts_consumers_and_changes_nothing(
    broker: BrokerFixture,
    redis_url: str,
    unique: str,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = autoscaler_env(broker, redis_url, unique, moto_endpoint, AUTOSCALER_MODE="dry-run")
    monkeypatch.delenv("ECS_CLUSTER", raising=False)
    monkeypatch.delenv("ECS_SERVICE", raising=False)
    await fill(broker, 75)
    record = await invoke(monkeypatch, env)
    assert (record["tasks_source"], record["old_count"], record["new_count"]) == (
        "queue_consumers",
        0,
        2,
    )
    assert (record["rule"], record["action"], record["mode"]) == (
        "activate_from_zero",
        "dry_run",
        "dry-run",
    )
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert emf and emf[-1]["DesiredTasks"] == 2 and emf[-1]["QueueReady"] == 75


async def test_http_mode_serves_the_decision_as_prometheus_metrics(
    broker: BrokerFixture,
    redis_url: str,
    unique: str,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in autoscaler_env(broker, redis_url, unique, moto_endpoint).items():
        monkeypatch.setenv(name, value)
    registry = CollectorRegistry()
    state = autoscaler.setup(load_settings(AutoscalerSettings), registry)
    await fill(broker, 10)
    try:
        await autoscaler.run(state, {})
    finally:
        assert state.session is not None
        await state.session.close()
    text = generate_latest(registry).decode()
    assert f'rnr_autoscaler_queue_ready_messages{{queue="{broker.queue}"}} 10.0' in text
    assert 'rnr_autoscaler_decisions_total{rule="activate_from_zero"} 1.0' in text
    assert 'rnr_autoscaler_tasks{kind="desired_after"} 1.0' in text
    assert 'rnr_autoscaler_scaling_actions_total{direction="out"} 1.0' in text


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        ({"source": "producer", "published": 12}, "producer"),
        ({"source": "eventbridge-scheduler", "schedule": "rnr-dev-autoscaler"}, "schedule"),
        ({}, "schedule"),  # the local scheduler's POST /invoke
    ],
)
async def test_a_wake_runs_the_same_decision_and_the_record_names_its_trigger(
    broker: BrokerFixture,
    redis_url: str,
    unique: str,
    ecs_service: EcsService,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, object],
    trigger: str,
) -> None:
    env = direct_env(broker, redis_url, unique, ecs_service)
    await fill(broker, 12)
    record = await invoke(monkeypatch, env, event)
    assert record["trigger"] == trigger
    assert (record["rule"], record["old_count"], record["new_count"]) == (
        "activate_from_zero",
        0,
        1,
    )
    assert ecs_service.desired() == 1
