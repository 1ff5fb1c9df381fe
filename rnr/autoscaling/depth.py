"""Queue depth: from the RabbitMQ management HTTP API, else from an AMQP passive declare.

The management API is the better source: it counts unacknowledged messages (work that a
task holds and would lose to a scale-in) besides ready ones, and its channel list tells
which tasks hold them. Amazon MQ for RabbitMQ publishes no per-queue CloudWatch metrics
on RabbitMQ 4, and serves this API over HTTPS on port 443 of the broker's host. Its
figures are refreshed by the broker every few seconds (``collect_statistics_interval``,
5 s by default), which is fine for a once-a-minute decision.

A passive declare answers with the ready count and the number of consumers only; a
reading from it carries ``unacked=None`` and ``busy_tasks=None``, and the policy then
never scales in. Credentials are the broker's own (RABBITMQ_URL's userinfo, or the
Secrets Manager secret), read through :func:`resolve_broker_url`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import yarl

from rnr.core.errors import ConfigurationError, TransientError
from rnr.core.settings import BrokerSettings
from rnr.messaging.connection import connect, resolve_broker_url
from rnr.messaging.topology import Topology, declare_topology
from rnr.storage.secrets import SecretCache

logger = logging.getLogger(__name__)

DepthSource = Literal["management_api", "amqp_passive_declare"]
MANAGEMENT_TIMEOUT_SECONDS = 5.0
# The management listener's default port where RABBITMQ_URL names a plain AMQP broker.
MANAGEMENT_PORT = 15672


class ManagementApiError(TransientError):
    """The management API could not be used for this reading (the caller falls back)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class QueueCounts:
    name: str
    ready: int
    unacked: int | None
    consumers: int

    @property
    def messages(self) -> int:
        return self.ready + (self.unacked or 0)


@dataclass(frozen=True)
class DepthReading:
    work: QueueCounts
    dead_letter: QueueCounts
    # Distinct broker connections (one per worker task) whose channel on the work queue
    # holds unacknowledged messages; None when the source cannot tell.
    busy_tasks: int | None
    source: DepthSource
    fallback_reason: str | None = None


def management_url(settings: BrokerSettings, configured: str | None) -> str:
    """RABBITMQ_MANAGEMENT_URL, else derived from the AMQP address.

    ``amqps://host:5671`` (Amazon MQ) gives ``https://host``; ``amqp://host:5672``
    gives ``http://host:15672``, the management plugin's default listener.
    """
    if configured:
        return configured.rstrip("/")
    source = settings.rabbitmq_endpoint or (
        settings.rabbitmq_url.get_secret_value() if settings.rabbitmq_url else ""
    )
    parts = urlsplit(source)
    if parts.scheme not in {"amqp", "amqps"} or not parts.hostname:
        raise ConfigurationError(
            "cannot derive RABBITMQ_MANAGEMENT_URL from the broker address; set it"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.scheme == "amqps":
        return f"https://{host}"
    return f"http://{host}:{MANAGEMENT_PORT}"


def vhost_of(broker_url: str) -> str:
    """The virtual host an AMQP URL names: its path, unquoted; ``/`` when empty."""
    path = urlsplit(broker_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


class ManagementApi:
    """The two read-only calls the autoscaler needs, with basic auth."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, username: str, password: str
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._headers = {"Authorization": aiohttp.encode_basic_auth(username, password)}

    async def _get(self, path: str, **params: str) -> Any:
        url = yarl.URL(f"{self._base_url}{path}", encoded=True)
        try:
            async with self._session.get(
                url,
                params=params or None,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=MANAGEMENT_TIMEOUT_SECONDS),
            ) as answer:
                if answer.status != 200:
                    raise ManagementApiError(f"GET {path} answered {answer.status}", answer.status)
                return await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ManagementApiError(f"GET {path} failed: {exc!r}") from exc

    async def queue(self, vhost: str, name: str) -> dict[str, Any]:
        return await self._get(f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}")

    async def unacked_by_channel(self) -> dict[str, int]:
        rows = await self._get("/api/channels", columns="name,messages_unacknowledged")
        return {row["name"]: int(row.get("messages_unacknowledged") or 0) for row in rows}


def _counts(name: str, queue: dict[str, Any]) -> QueueCounts:
    return QueueCounts(
        name=name,
        ready=int(queue.get("messages_ready") or 0),
        unacked=int(queue.get("messages_unacknowledged") or 0),
        consumers=int(queue.get("consumers") or 0),
    )


def busy_connections(queue: dict[str, Any], unacked_by_channel: dict[str, int]) -> int:
    """Connections consuming ``queue`` whose consuming channel holds unacked messages."""
    busy = set()
    for consumer in queue.get("consumer_details") or []:
        channel = consumer.get("channel_details") or {}
        if unacked_by_channel.get(channel.get("name", ""), 0) > 0:
            busy.add(channel.get("connection_name") or channel.get("name"))
    return len(busy)


async def read_from_management(api: ManagementApi, vhost: str, topology: Topology) -> DepthReading:
    work = await api.queue(vhost, topology.queue)
    dead = await api.queue(vhost, topology.dead_letter_queue)
    counts = _counts(topology.queue, work)
    busy: int | None = 0
    if counts.unacked:
        try:
            busy = busy_connections(work, await api.unacked_by_channel())
        except ManagementApiError as exc:
            logger.warning("cannot tell which tasks hold messages", extra={"reason": str(exc)})
            busy = None
    return DepthReading(counts, _counts(topology.dead_letter_queue, dead), busy, "management_api")


async def read_from_amqp(
    settings: BrokerSettings, secrets: SecretCache | None, topology: Topology, reason: str
) -> DepthReading:
    """Ready counts by passive declare on a fresh channel (a robust connection's cached
    declaration would answer with stale counts)."""
    connection = await connect(settings, secrets, name="rnr-autoscaler")
    try:
        channel = await connection.channel()
        await declare_topology(channel, topology)
        work = await channel.declare_queue(topology.queue, passive=True)
        dead = await channel.declare_queue(topology.dead_letter_queue, passive=True)
    finally:
        await connection.close()
    work_ok, dead_ok = work.declaration_result, dead.declaration_result
    return DepthReading(
        QueueCounts(topology.queue, work_ok.message_count or 0, None, work_ok.consumer_count or 0),
        QueueCounts(
            topology.dead_letter_queue,
            dead_ok.message_count or 0,
            None,
            dead_ok.consumer_count or 0,
        ),
        busy_tasks=None,
        source="amqp_passive_declare",
        fallback_reason=reason,
    )


class QueueDepthReader:
    """Management API first; the AMQP fallback when it fails, saying why."""

    def __init__(
        self,
        settings: BrokerSettings,
        secrets: SecretCache | None,
        session: aiohttp.ClientSession,
        management_base_url: str,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._session = session
        self._base_url = management_base_url
        self._topology = Topology.from_settings(settings)

    async def read(self) -> DepthReading:
        broker_url = await resolve_broker_url(self._settings, self._secrets)
        parts = urlsplit(broker_url)
        api = ManagementApi(
            self._session,
            self._base_url,
            unquote(parts.username or ""),
            unquote(parts.password or ""),
        )
        try:
            return await read_from_management(api, vhost_of(broker_url), self._topology)
        except ManagementApiError as exc:
            if exc.status == 401 and self._secrets and self._settings.rabbitmq_secret_arn:
                # The secret may have been rotated since it was cached.
                self._secrets.invalidate(self._settings.rabbitmq_secret_arn)
            logger.warning(
                "management API unavailable; falling back to an AMQP passive declare",
                extra={"management_url": self._base_url, "reason": str(exc)},
            )
            return await read_from_amqp(self._settings, self._secrets, self._topology, str(exc))
