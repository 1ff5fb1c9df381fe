"""The worker's messaging runtime: consume, process, and settle every message once.

Settlement is decided in one place (:meth:`Consumer._settle`):

* success                            -> ack (only after the processor returned, i.e.
                                        after its output was durably written); a
                                        product already processed is acked as a
                                        ``duplicate``;
* ``PermanentError`` (bad JSON, schema violation, product not found)
                                     -> dead-letter queue at once, reason ``permanent``;
* ``TransientError`` and ``OSError`` (outages, timeouts)
                                     -> a delay tier of the retry exchange, with the
                                        attempt count and reason in headers, until
                                        ``max_attempts`` is reached, then dead-letter
                                        (``attempts_exhausted``);
* any other exception                -> a bug: logged with its traceback, counted in
                                        ``rnr_<subsystem>_unexpected_errors_total`` and
                                        dead-lettered at once as ``permanent`` with its
                                        type in ``x-rnr-error-type``; retrying a bug
                                        only delays the page to a human.

Headers are input too: an ``x-rnr-attempt`` that is not a small positive integer
dead-letters the message at once (``invalid_header``), and headers copied onto a
republished message are made encodable first, so a hostile header can never make a
message loop between delivery and a republish that cannot be sent.

Retries and dead-letters are republished with a confirm *before* the original is
acked, so a crash in between duplicates a message at worst and never loses one.
On shutdown the consumer is cancelled first, in-flight work gets ``drain_seconds``
to finish, and whatever is still running is cancelled and requeued.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pamqp.encode
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rnr.core.errors import PermanentError, TransientError
from rnr.core.logging import log_context
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    DeadLetterReason,
)
from rnr.messaging.models import ProductMessage
from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import DeclaredTopology, Topology, declare_topology

logger = logging.getLogger(__name__)

# No deployment retries a message anywhere near this often (settings cap at 50).
MAX_ATTEMPT_HEADER = 1000
# What a republished copy keeps of an incoming header value it cannot re-encode.
_HEADER_TEXT_LIMIT = 200

# Failures the same input may survive a little later: the project's own transient
# errors, and the OS-level ones (timeouts, refused or reset connections) of any library.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (TransientError, OSError)

OUTCOMES = ("acked", "duplicate", "retried", "dead_lettered", "requeued")


class Handled(enum.Enum):
    """What the processor did with a message it returned from normally."""

    PROCESSED = "acked"
    DUPLICATE = "duplicate"  # already processed with the same content: nothing redone


@dataclass(frozen=True)
class Delivery:
    """One delivery of a product: the message, and which attempt this is."""

    product: ProductMessage
    attempt: int
    max_attempts: int

    @property
    def is_last_attempt(self) -> bool:
        """A transient failure now dead-letters instead of retrying."""
        return self.attempt >= self.max_attempts


Processor = Callable[[Delivery], Awaitable[Handled]]


class InvalidHeader(PermanentError):
    """A header the consumer reads holds a value it cannot use."""


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry, subsystem: str = "worker") -> None:
        self.messages = Counter(
            f"rnr_{subsystem}_messages_total",
            "Messages settled, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.processing_seconds = Histogram(
            f"rnr_{subsystem}_processing_seconds",
            "Time from delivery to settlement",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.in_flight = Gauge(
            f"rnr_{subsystem}_in_flight_messages", "Messages being processed", registry=registry
        )
        self.consuming = Gauge(
            f"rnr_{subsystem}_consumer_active", "1 while the consumer is active", registry=registry
        )
        self.unexpected_errors = Counter(
            f"rnr_{subsystem}_unexpected_errors_total",
            "Exceptions of no expected type (bugs), by type; each message was dead-lettered",
            ["error_type"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.messages.labels(outcome)


def attempt_of(headers: Mapping[str, Any] | None) -> int:
    """The delivery's attempt number from ``x-rnr-attempt`` (1 when absent).

    Raises:
        InvalidHeader: the value is not an integer from 1 to ``MAX_ATTEMPT_HEADER``
            (a string of digits counts; a bool, float or 40-digit number does not).
    """
    value = (headers or {}).get(ATTEMPT_HEADER, 1)
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 4:
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ATTEMPT_HEADER:
        return value
    shown = repr(value)[:_HEADER_TEXT_LIMIT]
    raise InvalidHeader(
        f"header {ATTEMPT_HEADER} is {shown}; expected an integer from 1 to {MAX_ATTEMPT_HEADER}"
    )


def encodable_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """``headers`` with every value AMQP cannot encode replaced by its (shortened) repr."""
    encodable: dict[str, Any] = {}
    for name, value in headers.items():
        try:
            pamqp.encode.field_table({name: value})
        except (TypeError, ValueError, OverflowError):
            value = repr(value)[:_HEADER_TEXT_LIMIT]
        encodable[str(name)[:_HEADER_TEXT_LIMIT]] = value
    return encodable


class Consumer:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        topology: Topology,
        processor: Processor,
        *,
        prefetch: int,
        max_attempts: int,
        publish_timeout_seconds: float,
        metrics: ConsumerMetrics,
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._processor = processor
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._publish_timeout_seconds = publish_timeout_seconds
        self._metrics = metrics
        self._channel: AbstractChannel | None = None
        self._declared: DeclaredTopology | None = None
        self._retry_publisher: Publisher | None = None
        self._dead_letter: Publisher | None = None
        self._consumer_tag: str | None = None
        self._stopping = False
        self._in_flight: set[asyncio.Task[Any]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def is_consuming(self) -> bool:
        """True while deliveries can arrive: connected, channel open, consumer registered."""
        return (
            self._consumer_tag is not None
            and not self._stopping
            and not self._connection.is_closed
            and self._connection.connected.is_set()
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._declared = await declare_topology(self._channel, self._topology)
        # Retries and dead-letters go out on their own channel with confirms on.
        publish_channel = await Publisher.open_channel(self._connection)
        self._dead_letter = Publisher(
            await publish_channel.get_exchange(self._topology.dead_letter_exchange),
            timeout_seconds=self._publish_timeout_seconds,
        )
        self._retry_publisher = Publisher(
            await publish_channel.get_exchange(self._topology.retry_exchange),
            timeout_seconds=self._publish_timeout_seconds,
        )
        self._consumer_tag = await self._declared.queue.consume(self._on_message)
        self._metrics.consuming.set_function(lambda: 1.0 if self.is_consuming() else 0.0)
        logger.info(
            "consuming",
            extra={"queue": self._topology.queue, "prefetch": self._prefetch},
        )

    async def stop(self, drain_seconds: float, requeue_seconds: float = 5.0) -> None:
        """Stop taking messages, let in-flight ones finish, requeue the rest.

        Safe to call before :meth:`start` finished (or was cancelled): a delivery that
        still arrives is requeued at once.
        """
        self._stopping = True
        if self._declared is not None and self._consumer_tag is not None:
            try:
                await self._declared.queue.cancel(self._consumer_tag)
            except Exception:
                logger.warning("could not cancel the consumer; closing anyway", exc_info=True)
        pending = set(self._in_flight)
        if pending:
            logger.info(
                "draining in-flight messages",
                extra={"in_flight": len(pending), "drain_seconds": drain_seconds},
            )
            _, still_running = await asyncio.wait(pending, timeout=drain_seconds)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running, timeout=requeue_seconds)
                logger.warning(
                    "drain time over: requeued unfinished messages",
                    extra={"requeued": len(still_running)},
                )
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._stopping:
            await self._requeue(message)
            return
        self._in_flight.add(task)
        self._metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            with log_context(message.correlation_id, message.message_id):
                await self._settle(message)
        finally:
            self._metrics.in_flight.dec()
            self._metrics.processing_seconds.observe(time.perf_counter() - started)
            self._in_flight.discard(task)

    async def _settle(self, message: AbstractIncomingMessage) -> None:
        try:
            attempt = attempt_of(message.headers)
        except InvalidHeader as exc:
            await self._dead_letter_message(message, 1, exc, reason="invalid_header")
            return
        try:
            product = ProductMessage.from_body(message.body)
            handled = await self._processor(Delivery(product, attempt, self._max_attempts))
        except asyncio.CancelledError:
            await self._requeue(message)
            raise
        except PermanentError as exc:
            await self._dead_letter_message(message, attempt, exc, reason="permanent")
        except RETRYABLE_ERRORS as exc:
            if attempt >= self._max_attempts:
                await self._dead_letter_message(message, attempt, exc, reason="attempts_exhausted")
            else:
                await self._retry(message, attempt, exc)
        except Exception as exc:
            self._metrics.unexpected_errors.labels(type(exc).__name__).inc()
            logger.exception(
                "unexpected error: a bug; the message is dead-lettered, not retried",
                extra={"error_type": type(exc).__name__, "attempt": attempt},
            )
            await self._dead_letter_message(message, attempt, exc, reason="permanent")
        else:
            await message.ack()
            self._metrics.messages.labels(handled.value).inc()
            logger.debug("message settled", extra={"attempt": attempt, "handled": handled.value})

    def _failure_headers(
        self, message: AbstractIncomingMessage, attempt: int, exc: BaseException
    ) -> dict[str, Any]:
        headers = encodable_headers(message.headers or {})
        headers.update(
            {
                ATTEMPT_HEADER: attempt,
                ERROR_HEADER: (str(exc) or type(exc).__name__)[:1000],
                ERROR_TYPE_HEADER: type(exc).__name__,
                FAILED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
        return headers

    async def _republish(
        self,
        publisher: Publisher,
        message: AbstractIncomingMessage,
        routing_key: str,
        headers: dict[str, Any],
    ) -> bool:
        """Publish a copy and ack the original; on failure leave it to be redelivered."""
        try:
            await publisher.publish(
                message.body,
                routing_key=routing_key,
                message_id=message.message_id or "",
                correlation_id=message.correlation_id or message.message_id or "",
                headers=headers,
                content_type=message.content_type or "application/json",
            )
        except Exception:
            logger.error(
                "could not republish a failed message; requeueing it instead", exc_info=True
            )
            await self._requeue(message)
            return False
        await message.ack()
        return True

    async def _retry(
        self, message: AbstractIncomingMessage, attempt: int, exc: BaseException
    ) -> None:
        assert self._retry_publisher is not None
        tier = self._topology.retry_queue(attempt)
        headers = self._failure_headers(message, attempt + 1, exc)
        if await self._republish(self._retry_publisher, message, tier, headers):
            self._metrics.messages.labels("retried").inc()
            logger.warning(
                "transient failure; retrying after a delay",
                extra={
                    "attempt": attempt,
                    "max_attempts": self._max_attempts,
                    "retry_queue": tier,
                    "reason": headers[ERROR_HEADER],
                    "error_type": type(exc).__name__,
                },
            )

    async def _dead_letter_message(
        self,
        message: AbstractIncomingMessage,
        attempt: int,
        exc: BaseException,
        *,
        reason: DeadLetterReason,
    ) -> None:
        assert self._dead_letter is not None
        headers = self._failure_headers(message, attempt, exc)
        headers[DEAD_LETTER_REASON_HEADER] = reason
        if await self._republish(self._dead_letter, message, self._topology.routing_key, headers):
            self._metrics.messages.labels("dead_lettered").inc()
            logger.error(
                "message dead-lettered; inspect it in the dead-letter queue",
                extra={
                    "dead_letter_queue": self._topology.dead_letter_queue,
                    "dead_letter_reason": reason,
                    "attempt": attempt,
                    "reason": headers[ERROR_HEADER],
                    "error_type": type(exc).__name__,
                },
            )

    async def _requeue(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.nack(requeue=True)
            self._metrics.messages.labels("requeued").inc()
        except Exception:
            # The channel is gone; the broker requeues unacked messages by itself.
            logger.debug("nack failed; the broker will requeue on channel close", exc_info=True)
