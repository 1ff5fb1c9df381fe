"""The tool's one connection to the deployment's broker, opened the way the services open it.

The URL and credentials come from :mod:`rnr.messaging.connection` (``RABBITMQ_URL``, or
``RABBITMQ_ENDPOINT`` plus the Secrets Manager secret ``RABBITMQ_SECRET_ARN``, as on
Amazon MQ), so the tool reaches every broker the services reach. What it adds is the
operator's view of failure: an unreachable broker, a missing queue or a connection
that drops mid-way becomes one line naming the broker (without its password) and
what to check.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from rnr.core.errors import TransientError
from rnr.messaging.connection import connect, redact, resolve_broker_url
from rnr.messaging.topology import Topology, broker_queue_type
from rnr.ops.errors import BrokerUnavailable, QueueMissing
from rnr.ops.settings import OpsSettings
from rnr.storage.aws import AwsClients
from rnr.storage.secrets import SecretCache

# Failures that mean the broker (or the way to it) is gone, not that a request was bad.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ConnectionClosed,
)
# From this version on, basic.nack with requeue does not count as a delivery on a quorum
# queue (basic.reject does); before it, every requeue counted (RabbitMQ's "Negative
# Acknowledgements" guide, and its 4.3 poison-message changes).
NACK_NOT_COUNTED_SINCE = (4, 3)

ReleaseMode = Literal["requeue", "republish"]


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return (99, 0)  # an unparsable version is a newer build, not an older one


@dataclass(frozen=True)
class Broker:
    """A connected broker and the deployment's names on it."""

    connection: AbstractRobustConnection
    topology: Topology
    shown_url: str  # the URL without its password, for messages
    version: str
    publish_timeout_seconds: float

    async def channel(self) -> AbstractChannel:
        return await self.connection.channel()

    async def depth(self, queue: str) -> int:
        """Ready messages in ``queue`` now, from a passive declare on a fresh channel
        (a robust channel's cached declaration would answer with an old count)."""
        channel = await self.connection.channel()
        try:
            declared = await self.declare_passive(channel, queue)
            return declared.declaration_result.message_count or 0
        finally:
            if not channel.is_closed:
                await channel.close()

    async def declare_passive(
        self, channel: AbstractChannel, queue: str
    ) -> aio_pika.abc.AbstractQueue:
        try:
            return await channel.declare_queue(queue, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise QueueMissing(
                f"queue {queue!r} does not exist on {self.shown_url}: check RABBITMQ_QUEUE "
                "(and the vhost in the URL); the worker declares its queues when it starts"
            ) from exc

    async def exchange(self, channel: AbstractChannel, name: str) -> AbstractExchange:
        try:
            return await channel.get_exchange(name, ensure=True)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise QueueMissing(
                f"exchange {name!r} does not exist on {self.shown_url}: check "
                "RABBITMQ_EXCHANGE; the worker declares it when it starts"
            ) from exc

    def release_mode(self) -> ReleaseMode:
        """How a pass over the DLQ puts back what it leaves there (see rnr.ops.sweep).

        ``republish`` on a quorum DLQ of a broker before 4.3, where each requeue counts
        as a delivery and the delivery limit (20 by default from 4.0; Amazon MQ sets
        one by policy) finally drops a dead letter that was only ever looked at; the DLQ
        has no dead-letter exchange of its own to catch it. ``requeue`` elsewhere.
        """
        if self.topology.queue_type == "classic":
            return "requeue"
        if _version(self.version) >= NACK_NOT_COUNTED_SINCE:
            return "requeue"
        return "republish"


def _unreachable(shown_url: str, exc: BaseException) -> BrokerUnavailable:
    detail = str(exc) or type(exc).__name__
    return BrokerUnavailable(
        f"cannot reach RabbitMQ at {shown_url}: {detail}. Check that the broker is running, "
        "that RABBITMQ_URL or RABBITMQ_ENDPOINT names it (amqps://…:5671 for Amazon MQ, "
        "amqp://…:5672 locally), and that this machine may open that port "
        "(security group, VPN, bastion)"
    )


async def _resolve_url(settings: OpsSettings, secrets: SecretCache | None) -> str:
    try:
        return await resolve_broker_url(settings, secrets)
    except TransientError as exc:
        raise BrokerUnavailable(
            f"cannot read the broker's credentials from RABBITMQ_SECRET_ARN: {exc}; "
            "check AWS_REGION, the network path to Secrets Manager and your AWS credentials"
        ) from exc


@contextlib.asynccontextmanager
async def open_broker(settings: OpsSettings, *, name: str) -> AsyncIterator[Broker]:
    """Connect (named ``name`` in the management UI), yield, close.

    Raises:
        BrokerUnavailable: the broker does not answer (or the secret cannot be read).
        ConfigurationError: the broker refused the credentials.
    """
    secrets = SecretCache(AwsClients(settings)) if settings.rabbitmq_secret_arn else None
    shown_url = redact(await _resolve_url(settings, secrets))
    try:
        connection = await connect(settings, secrets, name=name)
    except CONNECTION_ERRORS as exc:
        raise _unreachable(shown_url, exc) from exc
    try:
        probe = await connection.channel()
        topology = Topology.from_settings(settings)
        if topology.queue_type == "auto":
            topology = dataclasses.replace(topology, queue_type=await broker_queue_type(probe))
        underlay = await probe.get_underlay_channel()
        version = str(underlay.connection.server_properties.get("version", ""))
        await probe.close()
        yield Broker(
            connection=connection,
            topology=topology,
            shown_url=shown_url,
            version=version,
            publish_timeout_seconds=settings.rabbitmq_publish_timeout_seconds,
        )
    finally:
        await connection.close()
