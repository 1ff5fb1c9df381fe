"""Autoscaler run: for now it measures queue depth and decides nothing.

The scaling policy, ECS calls and the management-API depth source are the
autoscaler issue's; this entry point already runs under every runtime (Lambda,
HTTP, CLI) and reports the depth it would act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from rnr.core.metrics import emit_emf
from rnr.core.readiness import ReadinessCheck
from rnr.messaging.connection import connect
from rnr.messaging.topology import Topology, declare_topology
from rnr.storage.aws import AwsClients
from rnr.storage.secrets import SecretCache
from services.autoscaler.settings import AutoscalerSettings


@dataclass
class AutoscalerState:
    settings: AutoscalerSettings
    secrets: SecretCache
    depth: Gauge


def setup(settings: AutoscalerSettings, registry: CollectorRegistry) -> AutoscalerState:
    return AutoscalerState(
        settings=settings,
        secrets=SecretCache(AwsClients(settings)),
        depth=Gauge(
            "rnr_autoscaler_queue_ready_messages",
            "Ready messages seen at the last run",
            ["queue"],
            registry=registry,
        ),
    )


async def run(state: AutoscalerState, event: Mapping[str, Any]) -> dict[str, Any]:
    topology = Topology.from_settings(state.settings)
    connection = await connect(state.settings, state.secrets, name="rnr-autoscaler")
    try:
        channel = await connection.channel()
        await declare_topology(channel, topology)
        # A fresh passive declare: the declared objects' counts may be cached.
        work = await channel.declare_queue(topology.queue, passive=True)
        dead = await channel.declare_queue(topology.dead_letter_queue, passive=True)
        ready = work.declaration_result.message_count or 0
        dead_ready = dead.declaration_result.message_count or 0
    finally:
        await connection.close()
    state.depth.labels(topology.queue).set(ready)
    state.depth.labels(topology.dead_letter_queue).set(dead_ready)
    emit_emf("autoscaler", {"QueueReady": ready, "DeadLetterReady": dead_ready})
    return {
        "queue": topology.queue,
        "ready": ready,
        "dead_letter_ready": dead_ready,
        "depth_source": "amqp_passive_declare",
        "action": "none",
    }


def checks(state: AutoscalerState) -> dict[str, ReadinessCheck]:
    async def rabbitmq_connect() -> None:
        connection = await connect(state.settings, state.secrets, name="rnr-autoscaler-readyz")
        await connection.close()

    return {"rabbitmq": rabbitmq_connect}
