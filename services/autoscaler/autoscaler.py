"""Autoscaler run: read depth and task counts, decide, act, and record the decision.

    depth (management API, else AMQP) ─┐
    task counts (ECS describe_services) ├─► policy.decide ─► direct: ECS UpdateService
    history (Redis)                    ─┘        │          metric: CloudWatch BacklogPerTask
                                                 ▼          dry-run: nothing
                          one JSON line "autoscaling decision", EMF line, /metrics, return value

Without ECS_CLUSTER/ECS_SERVICE (the local stack, dry-run only) the task counts are the
work queue's consumers: each local worker is one "task".

Runs come from the schedule (every minute) and, between them, from the producer's wake
after a run that published (``rnr.autoscaling.wake``). Both run the same code; the record
says which (``trigger``). They never overlap: the function's reserved concurrency is 1,
so an invoke arriving during a run is throttled, and Lambda retries a throttled
asynchronous event by itself (within the event's maximum age), which costs one more run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as redis
from prometheus_client import CollectorRegistry, Counter, Gauge

from rnr.autoscaling.cloudwatch import backlog_per_task, put_backlog_per_task
from rnr.autoscaling.depth import DepthReading, QueueDepthReader, management_url
from rnr.autoscaling.ecs import ServiceCounts, describe_service, set_desired_count
from rnr.autoscaling.policy import Decision, Observation, Rule, decide
from rnr.autoscaling.state import StabilizationStore
from rnr.autoscaling.wake import trigger_of
from rnr.core.metrics import emit_emf
from rnr.core.readiness import ReadinessCheck
from rnr.messaging.connection import connect
from rnr.storage.aws import AwsClients
from rnr.storage.secrets import SecretCache
from services.autoscaler.settings import AutoscalerSettings

logger = logging.getLogger(__name__)


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ready = Gauge(
            "rnr_autoscaler_queue_ready_messages",
            "Ready messages seen at the last run",
            ["queue"],
            registry=registry,
        )
        self.unacked = Gauge(
            "rnr_autoscaler_queue_unacked_messages",
            "Unacknowledged messages seen at the last run (management API only)",
            ["queue"],
            registry=registry,
        )
        self.tasks = Gauge(
            "rnr_autoscaler_tasks",
            "Worker tasks at the last run: desired before and after the decision, running",
            ["kind"],
            registry=registry,
        )
        self.backlog_per_task = Gauge(
            "rnr_autoscaler_backlog_per_task",
            "(ready + unacked) / max(running, 1) at the last run",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "rnr_autoscaler_oldest_message_age_seconds",
            "Seconds since the work queue last had no ready message (an upper estimate of "
            "the oldest message's age)",
            registry=registry,
        )
        self.decisions = Counter(
            "rnr_autoscaler_decisions_total",
            "Runs, by the rule that decided",
            ["rule"],
            registry=registry,
        )
        self.actions = Counter(
            "rnr_autoscaler_scaling_actions_total",
            "Desired-count changes made (or, in dry-run, that would have been made)",
            ["direction"],
            registry=registry,
        )
        for rule in Rule:
            self.decisions.labels(rule.value)
        for direction in ("out", "in"):
            self.actions.labels(direction)


@dataclass
class AutoscalerState:
    settings: AutoscalerSettings
    aws: AwsClients
    secrets: SecretCache
    store: StabilizationStore
    metrics: AutoscalerMetrics
    session: aiohttp.ClientSession | None = field(default=None)

    def depth_reader(self) -> QueueDepthReader:
        # The HTTP session belongs to the event loop that runs the handler, so it is
        # opened on the first run, not at setup.
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()
        base_url = management_url(self.settings, self.settings.rabbitmq_management_url)
        return QueueDepthReader(self.settings, self.secrets, self.session, base_url)


def setup(settings: AutoscalerSettings, registry: CollectorRegistry) -> AutoscalerState:
    aws = AwsClients(settings)
    scope = (
        f"{settings.ecs_cluster}/{settings.ecs_service}"
        if settings.ecs_cluster and settings.ecs_service
        else settings.rabbitmq_queue
    )
    client = redis.from_url(settings.redis_url.get_secret_value(), socket_timeout=5)
    store = StabilizationStore(
        client,
        f"{settings.autoscaler_state_key_prefix}{scope}",
        ttl_seconds=settings.autoscaler_stabilization_seconds + 3600,
    )
    return AutoscalerState(settings, aws, SecretCache(aws), store, AutoscalerMetrics(registry))


async def task_counts(state: AutoscalerState, reading: DepthReading) -> tuple[ServiceCounts, str]:
    settings = state.settings
    if settings.ecs_cluster and settings.ecs_service:
        async with state.aws.client("ecs") as ecs:
            counts = await describe_service(ecs, settings.ecs_cluster, settings.ecs_service)
        return counts, "ecs"
    consumers = reading.work.consumers
    return ServiceCounts(consumers, consumers, 0, False), "queue_consumers"


async def act(state: AutoscalerState, decision: Decision, metric_value: float) -> str:
    """Carry the decision out as the mode says; returns what was done."""
    settings = state.settings
    if settings.autoscaler_mode == "metric":
        assert settings.ecs_cluster and settings.ecs_service
        async with state.aws.client("cloudwatch") as cloudwatch:
            await put_backlog_per_task(
                cloudwatch,
                settings.autoscaler_metric_namespace,
                settings.ecs_cluster,
                settings.ecs_service,
                metric_value,
            )
        return "put_metric"
    if not decision.changed:
        return "none"
    if settings.autoscaler_mode == "dry-run":
        return "dry_run"
    assert settings.ecs_cluster and settings.ecs_service
    async with state.aws.client("ecs") as ecs:
        await set_desired_count(ecs, settings.ecs_cluster, settings.ecs_service, decision.desired)
    return "set_desired_count"


def decision_record(
    state: AutoscalerState,
    decision: Decision,
    reading: DepthReading,
    counts: ServiceCounts,
    tasks_source: str,
    action: str,
) -> dict[str, Any]:
    """Everything the decision rested on, flat, so Logs Insights can filter any field."""
    settings = state.settings
    work, dead = reading.work, reading.dead_letter
    return {
        "mode": settings.autoscaler_mode,
        "rule": decision.rule.value,
        "action": action,
        "old_count": decision.current,
        "new_count": decision.desired,
        "recommended": decision.recommended,
        "stabilized": decision.stabilized,
        "queue": work.name,
        "ready": work.ready,
        "unacked": work.unacked,
        "backlog": work.messages,
        "busy_tasks": reading.busy_tasks,
        "consumers": work.consumers,
        "depth_source": reading.source,
        "depth_fallback_reason": reading.fallback_reason,
        "dead_letter_queue": dead.name,
        "dead_letter_ready": dead.ready,
        "dead_letter_unacked": dead.unacked,
        "running": counts.running,
        "pending": counts.pending,
        "deployment_in_progress": counts.deployment_in_progress,
        "tasks_source": tasks_source,
        "backlog_per_task": backlog_per_task(work.messages, counts.running),
        "policy": {
            "min_tasks": settings.autoscaler_min_tasks,
            "max_tasks": settings.autoscaler_max_tasks,
            "target_per_task": settings.autoscaler_target_per_task,
            "activation_threshold": settings.autoscaler_activation_threshold,
            "stabilization_seconds": settings.autoscaler_stabilization_seconds,
            "scale_in_step": settings.autoscaler_scale_in_step,
        },
    }


def publish_metrics(metrics: AutoscalerMetrics, record: Mapping[str, Any]) -> None:
    for queue, ready, unacked in (
        (record["queue"], record["ready"], record["unacked"]),
        (record["dead_letter_queue"], record["dead_letter_ready"], record["dead_letter_unacked"]),
    ):
        metrics.ready.labels(queue).set(ready)
        if unacked is not None:
            metrics.unacked.labels(queue).set(unacked)
    metrics.tasks.labels("desired_before").set(record["old_count"])
    metrics.tasks.labels("desired_after").set(record["new_count"])
    metrics.tasks.labels("running").set(record["running"])
    metrics.backlog_per_task.set(record["backlog_per_task"])
    if record["oldest_message_age_seconds"] is not None:
        metrics.oldest_age.set(record["oldest_message_age_seconds"])
    metrics.decisions.labels(record["rule"]).inc()
    scaled = record["action"] in {"set_desired_count", "dry_run"}
    if scaled:
        metrics.actions.labels("out" if record["new_count"] > record["old_count"] else "in").inc()
    emit_emf(
        "autoscaler",
        {
            "QueueReady": record["ready"],
            "QueueUnacked": record["unacked"] or 0,
            "DeadLetterReady": record["dead_letter_ready"],
            "DeadLetterUnacked": record["dead_letter_unacked"] or 0,
            "DesiredTasks": record["new_count"],
            "RunningTasks": record["running"],
            "BacklogPerTask": record["backlog_per_task"],
            "ScalingActions": int(scaled),
            # No datapoint when Redis could not tell: the alarm treats that as missing.
            **(
                {"OldestMessageAgeSeconds": record["oldest_message_age_seconds"]}
                if record["oldest_message_age_seconds"] is not None
                else {}
            ),
        },
    )


async def run(state: AutoscalerState, event: Mapping[str, Any]) -> dict[str, Any]:
    reading = await state.depth_reader().read()
    counts, tasks_source = await task_counts(state, reading)
    history = await state.store.load()
    observation = Observation(
        ready=reading.work.ready,
        unacked=reading.work.unacked or 0,
        current=counts.desired,
        busy_tasks=reading.busy_tasks,
        deployment_in_progress=counts.deployment_in_progress,
        now_s=time.time(),
    )
    decision = decide(state.settings.policy(), observation, history)
    await state.store.save(decision.history)
    waiting_s = await state.store.ready_since(reading.work.ready, observation.now_s)
    action = await act(state, decision, backlog_per_task(reading.work.messages, counts.running))
    record = decision_record(state, decision, reading, counts, tasks_source, action)
    record["oldest_message_age_seconds"] = waiting_s
    record["trigger"] = trigger_of(event)
    logger.info("autoscaling decision", extra=record)
    publish_metrics(state.metrics, record)
    return record


def checks(state: AutoscalerState) -> dict[str, ReadinessCheck]:
    async def rabbitmq_connect() -> None:
        connection = await connect(state.settings, state.secrets, name="rnr-autoscaler-readyz")
        await connection.close()

    return {"rabbitmq": rabbitmq_connect}
