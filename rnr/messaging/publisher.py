"""Publishing that either reaches a queue durably or raises.

Every publish waits for the broker's confirm (with a timeout), is persistent, and is
mandatory: a message no queue would take comes back as ``UnroutableMessage`` instead
of vanishing. Many publishes may be awaited concurrently on the one channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange

from rnr.messaging.errors import PublishFailed, UnroutableMessage


class Publisher:
    def __init__(self, exchange: AbstractExchange, *, timeout_seconds: float) -> None:
        self._exchange = exchange
        self._timeout_seconds = timeout_seconds

    @staticmethod
    async def open_channel(connection: aio_pika.abc.AbstractConnection) -> AbstractChannel:
        """A channel with confirms on and returned messages raised as errors."""
        return await connection.channel(publisher_confirms=True, on_return_raises=True)

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        correlation_id: str,
        headers: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> None:
        message = aio_pika.Message(
            body,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            correlation_id=correlation_id,
            headers=dict(headers) if headers else None,
        )
        try:
            await self._exchange.publish(
                message, routing_key=routing_key, mandatory=True, timeout=self._timeout_seconds
            )
        except aiormq.exceptions.PublishError as exc:
            raise UnroutableMessage(
                f"broker returned message {message_id}: no queue bound to exchange "
                f"{self._exchange.name!r} with routing key {routing_key!r}; "
                "run the service once to declare the topology, or check RABBITMQ_QUEUE"
            ) from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishFailed(f"broker nacked message {message_id}: {exc}") from exc
        except TimeoutError as exc:
            raise PublishFailed(
                f"no confirm for message {message_id} within {self._timeout_seconds}s"
            ) from exc
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishFailed(f"publish of message {message_id} failed: {exc!r}") from exc
