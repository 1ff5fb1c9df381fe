"""Opening the one robust RabbitMQ connection a process uses.

aio-pika's robust connection reconnects with backoff and restores channels, queues
and consumers by itself, so callers never rebuild topology after a broker restart.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from rnr.core.errors import ConfigurationError
from rnr.core.settings import BrokerSettings
from rnr.storage.secrets import SecretCache

logger = logging.getLogger(__name__)

# How long to wait for the first connection before giving up and telling the operator.
CONNECT_TIMEOUT_SECONDS = 15.0


async def resolve_broker_url(settings: BrokerSettings, secrets: SecretCache | None) -> str:
    """The AMQP URL with credentials: given directly, or built from endpoint and secret."""
    if settings.rabbitmq_url is not None:
        return settings.rabbitmq_url.get_secret_value()
    if secrets is None or not settings.rabbitmq_endpoint or not settings.rabbitmq_secret_arn:
        raise ConfigurationError("RABBITMQ_ENDPOINT and RABBITMQ_SECRET_ARN are both required")
    credentials = await secrets.broker_credentials(settings.rabbitmq_secret_arn)
    parts = urlsplit(settings.rabbitmq_endpoint)
    if parts.scheme not in {"amqp", "amqps"} or not parts.hostname:
        raise ConfigurationError(
            "RABBITMQ_ENDPOINT must look like amqps://host:5671, "
            f"got {settings.rabbitmq_endpoint!r}"
        )
    userinfo = f"{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}"
    netloc = f"{userinfo}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def connect(
    settings: BrokerSettings, secrets: SecretCache | None, *, name: str
) -> AbstractRobustConnection:
    """Connect once, naming the connection so it is recognisable in the management UI."""
    url = await resolve_broker_url(settings, secrets)
    try:
        connection = await aio_pika.connect_robust(
            url,
            client_properties={"connection_name": name},
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except aio_pika.exceptions.ProbableAuthenticationError as exc:
        if secrets is not None and settings.rabbitmq_secret_arn:
            # The secret may have been rotated since we cached it: drop it for next time.
            secrets.invalidate(settings.rabbitmq_secret_arn)
        raise ConfigurationError(f"RabbitMQ refused the credentials for {redact(url)}") from exc
    logger.info("connected to RabbitMQ", extra={"broker": redact(url), "connection_name": name})
    return connection
