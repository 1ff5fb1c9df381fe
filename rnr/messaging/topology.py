"""Exchanges and queues of the pipeline, declared idempotently by every service.

    producer ─► [rnr] ──products──► rnr.products ──► worker
                                        │  ▲
            worker: transient failure   │  │ TTL expires (broker-held delay)
                 ─► [rnr.retry] ─► rnr.products.retry.<delay>ms
            worker: permanent failure, or attempts exhausted
                 ─► [rnr.dlx] ─► rnr.products.dlq

Delays are held by the broker in one queue per delay tier (queue-level TTL, so
messages expire in order and never block one another), not in a worker's memory:
a worker that dies while a message waits loses nothing. Tier names carry the delay,
so changing ``RETRY_DELAYS_SECONDS`` declares new queues instead of failing on the
old queues' arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from rnr.core.settings import BrokerSettings

# Redeliveries without an ack (a worker killed mid-message, again and again) after
# which a quorum queue dead-letters the message by itself: a crash-looping poison
# message ends in the DLQ instead of taking every worker down forever.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Topology:
    exchange: str
    queue: str
    queue_type: Literal["auto", "quorum", "classic"]
    retry_delays_seconds: tuple[float, ...]

    @classmethod
    def from_settings(cls, settings: BrokerSettings) -> Topology:
        return cls(
            exchange=settings.rabbitmq_exchange,
            queue=settings.rabbitmq_queue,
            queue_type=settings.rabbitmq_queue_type,
            retry_delays_seconds=settings.retry_delays_seconds,
        )

    @property
    def routing_key(self) -> str:
        return self.queue

    @property
    def retry_exchange(self) -> str:
        return f"{self.exchange}.retry"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    def retry_queue(self, attempt: int) -> str:
        """The delay tier for a message that has failed ``attempt`` times (1-based)."""
        delay = self.retry_delays_seconds[min(attempt, len(self.retry_delays_seconds)) - 1]
        return f"{self.queue}.retry.{round(delay * 1000)}ms"

    def retry_queues(self) -> dict[str, int]:
        """Tier queue name -> delay in milliseconds."""
        return {
            f"{self.queue}.retry.{round(delay * 1000)}ms": round(delay * 1000)
            for delay in self.retry_delays_seconds
        }


@dataclass(frozen=True)
class DeclaredTopology:
    exchange: AbstractExchange
    queue: AbstractQueue
    retry_exchange: AbstractExchange
    dead_letter_exchange: AbstractExchange
    dead_letter_queue: AbstractQueue


def _queue_arguments(topology: Topology, **extra: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-queue-type": topology.queue_type}
    if topology.queue_type == "quorum":
        # Dead-letter with the broker's own confirms, so a message leaving a retry tier
        # or hitting the delivery limit cannot be lost in transit.
        arguments["x-dead-letter-strategy"] = "at-least-once"
        arguments["x-overflow"] = "reject-publish"
    arguments.update(extra)
    return arguments


# Quorum queues (and the dead-lettering options used with them) arrived in RabbitMQ 3.8.
QUORUM_SINCE = (3, 8)


def queue_type_for(broker_version: str) -> Literal["quorum", "classic"]:
    """``quorum`` where a broker of this version supports it, else ``classic``."""
    try:
        parsed = tuple(int(part) for part in broker_version.split(".")[:2])
    except ValueError:
        return "quorum"  # an unparsable version is a newer build, not an older one
    return "quorum" if parsed >= QUORUM_SINCE else "classic"


async def broker_queue_type(channel: AbstractChannel) -> Literal["quorum", "classic"]:
    underlay = await channel.get_underlay_channel()
    return queue_type_for(str(underlay.connection.server_properties.get("version", "")))


async def declare_topology(channel: AbstractChannel, topology: Topology) -> DeclaredTopology:
    """Declare everything; safe to run from every process at every start."""
    if topology.queue_type == "auto":
        topology = dataclasses.replace(topology, queue_type=await broker_queue_type(channel))
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    retry_exchange = await channel.declare_exchange(
        topology.retry_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead_letter_exchange = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )

    work_arguments = _queue_arguments(
        topology,
        **{
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": topology.routing_key,
        },
    )
    if topology.queue_type == "quorum":
        work_arguments["x-delivery-limit"] = DELIVERY_LIMIT
    queue = await channel.declare_queue(topology.queue, durable=True, arguments=work_arguments)
    await queue.bind(exchange, routing_key=topology.routing_key)

    for name, delay_ms in topology.retry_queues().items():
        tier = await channel.declare_queue(
            name,
            durable=True,
            arguments=_queue_arguments(
                topology,
                **{
                    "x-message-ttl": delay_ms,
                    "x-dead-letter-exchange": topology.exchange,
                    "x-dead-letter-routing-key": topology.routing_key,
                },
            ),
        )
        await tier.bind(retry_exchange, routing_key=name)

    dead_letter_queue = await channel.declare_queue(
        topology.dead_letter_queue,
        durable=True,
        arguments={"x-queue-type": topology.queue_type},
    )
    await dead_letter_queue.bind(dead_letter_exchange, routing_key=topology.routing_key)
    return DeclaredTopology(
        exchange=exchange,
        queue=queue,
        retry_exchange=retry_exchange,
        dead_letter_exchange=dead_letter_exchange,
        dead_letter_queue=dead_letter_queue,
    )


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Remove every queue and exchange of a topology: for throw-away ones (tests,
    ``make run``, benchmarks), never for the deployed pipeline's."""
    for queue in (topology.queue, topology.dead_letter_queue, *topology.retry_queues()):
        await channel.queue_delete(queue)
    for exchange in (topology.exchange, topology.retry_exchange, topology.dead_letter_exchange):
        await channel.exchange_delete(exchange)
