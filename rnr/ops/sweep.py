"""One pass over the dead-letter queue: take each message once, decide, settle it.

Every command on the DLQ is such a pass: ``stats`` and ``show`` keep every message,
``redrive`` sends the ones its filter picks to the work exchange, ``purge`` deletes.

**Taking.** Messages are taken with ``basic.get`` and manual acknowledgement, as many
as the queue held when the pass began (a passive declare's count): the pass never
receives more than it asked for, so it has nothing prefetched to hand back at the end,
and never meets the copies it put back itself.

**Settling, in this order.** A redriven message is published to the work exchange
(confirmed, mandatory, persistent) and only then acked. A deleted one is acked. A kept
one is put back by the pass's release mode:

* ``requeue``: held unacknowledged until the pass ends, then handed back with one
  ``basic.nack(requeue)``: content untouched, nothing written. A classic queue puts
  each back where it was; a quorum queue appends what it gets back, so there the pass
  takes the whole queue and hands it back at once, in order. But on a quorum queue
  before RabbitMQ 4.3 every requeue counts as a delivery, and at the delivery limit
  (20 by default from 4.0; a policy sets one on Amazon MQ) the broker drops the
  message: the DLQ has no dead-letter exchange of its own. Twenty ``stats`` would
  silently empty it.
* ``republish``: a copy (same body, properties and headers, without the quorum
  queue's ``x-delivery-count``) is published to the DLQ's tail with a confirm, then
  the original is acked. The delivery count starts again at 0, so looking never uses
  up a dead letter. A pass over the whole queue leaves it in the same order; so
  ``show`` and a ``redrive --limit`` carry on through the queue after they have what
  they need, putting the rest back in turn.

:meth:`rnr.ops.broker.Broker.release_mode` picks ``republish`` for a quorum DLQ on a
broker before 4.3 and ``requeue`` elsewhere; ``--release`` overrides it.

**Failure.** Each message is settled before the next is taken, and a publish is always
confirmed before its original is acked: a tool killed (or a broker lost) at any point
loses nothing. The broker hands back what was unacked; at worst, a message whose
copy was confirmed just before the crash exists twice (in the work queue and the DLQ,
or twice in the DLQ), the same message under the same id. Running the command again
carries on. An interrupted ``republish`` pass leaves the queue rotated (its first
messages now last), never shorter.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from rnr.messaging.errors import PublishFailed, UnroutableMessage
from rnr.messaging.publisher import Publisher
from rnr.ops.broker import CONNECTION_ERRORS, Broker, ReleaseMode
from rnr.ops.dead_letters import DeadLetter, kept_headers, redrive_headers
from rnr.ops.errors import BrokerUnavailable, OperatorError
from rnr.ops.progress import Progress

# Handing back can meet a dead channel (the broker has the messages back already) or a
# message already settled.
_HAND_BACK_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    aio_pika.exceptions.MessageProcessError,
)


class Verdict(enum.Enum):
    KEEP = "keep"
    REDRIVE = "redrive"
    DELETE = "delete"


Decide = Callable[[DeadLetter], Verdict]


@dataclass
class SweepResult:
    queue: str
    depth: int  # ready messages when the pass began
    release: ReleaseMode
    taken: int = 0
    kept: int = 0
    redriven: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class _Channels:
    get: AbstractChannel
    publish: AbstractChannel
    queue: AbstractQueue
    work: Publisher | None
    # The connection's channel the pass began on: a robust connection that reconnected
    # mid-way hands out messages on another, and the pass stops rather than mix them.
    underlay: aiormq.abc.AbstractChannel
    held: list[AbstractIncomingMessage] = field(default_factory=list)
    in_hand: AbstractIncomingMessage | None = None


def _copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    """The same message for the DLQ's tail; a fresh delivery count, no expiry."""
    return aio_pika.Message(
        message.body,
        headers=kept_headers(message.headers or {}),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


class Sweep:
    def __init__(
        self,
        broker: Broker,
        queue: str,
        *,
        release: ReleaseMode,
        progress: Callable[[int], Progress] | None = None,
        rate_per_second: float | None = None,
    ) -> None:
        self._broker = broker
        self._queue = queue
        self._release = release
        self._make_progress = progress
        self._progress: Progress | None = None
        self._rate = rate_per_second
        self._result = SweepResult(queue=queue, depth=0, release=release)
        # Only a classic queue puts a requeued message back where it was: a quorum queue
        # appends it (3.x), so there the whole queue is taken and handed back together.
        self._stops_early = release == "requeue" and broker.topology.queue_type == "classic"

    @property
    def result(self) -> SweepResult:
        """What the pass did so far (also after it failed part-way)."""
        return self._result

    async def run(
        self,
        decide: Decide,
        *,
        done: Callable[[], bool] = lambda: False,
        redrives: bool = False,
    ) -> SweepResult:
        """Take every message the queue holds now, once. ``decide`` sees each until
        ``done()`` says the command has what it needs; then a pass that requeues on a
        classic queue stops, any other keeps the rest, to leave the queue in order."""
        channels = await self._open(redrives)
        if self._make_progress is not None:
            self._progress = self._make_progress(self._result.depth)
        started = time.monotonic()
        try:
            for _ in range(self._result.depth):
                if done() and self._stops_early:
                    break
                message = await self._take(channels)
                if message is None:
                    break  # someone else emptied it
                verdict = Verdict.KEEP if done() else decide(DeadLetter.of(message))
                await self._settle(channels, message, verdict)
                if self._progress is not None:
                    self._progress.advance()
                await self._pace(started)
        finally:
            if self._progress is not None:
                self._progress.finish()
            await self._close(channels)
        return self._result

    async def _open(self, redrives: bool) -> _Channels:
        broker = self._broker
        try:
            get_channel = await broker.channel()
            queue = await broker.declare_passive(get_channel, self._queue)
            self._result.depth = queue.declaration_result.message_count or 0
            publish_channel = await Publisher.open_channel(broker.connection)
            work = None
            if redrives:
                exchange = await broker.exchange(publish_channel, broker.topology.exchange)
                work = Publisher(exchange, timeout_seconds=broker.publish_timeout_seconds)
            underlay = await get_channel.get_underlay_channel()
        except CONNECTION_ERRORS as exc:
            raise self._lost(exc) from exc
        return _Channels(get_channel, publish_channel, queue, work, underlay)

    async def _take(self, channels: _Channels) -> AbstractIncomingMessage | None:
        try:
            message = await channels.queue.get(
                no_ack=False, fail=False, timeout=self._broker.publish_timeout_seconds
            )
            if message is not None and message.channel is not channels.underlay:
                raise ConnectionError("the connection was re-established mid-way")
        except CONNECTION_ERRORS as exc:
            raise self._lost(exc) from exc
        if message is not None:
            self._result.taken += 1
            channels.in_hand = message
        return message

    async def _settle(
        self, channels: _Channels, message: AbstractIncomingMessage, verdict: Verdict
    ) -> None:
        try:
            if verdict is Verdict.REDRIVE:
                await self._redrive(channels, message)
                await message.ack()
                self._result.redriven += 1
            elif verdict is Verdict.DELETE:
                await message.ack()
                self._result.deleted += 1
            elif self._release == "requeue":
                channels.held.append(message)
                self._result.kept += 1
            else:
                await self._put_back(channels, message)
                await message.ack()
                self._result.kept += 1
        except UnroutableMessage as exc:
            raise OperatorError(
                f"{exc}. The dead letter stays in {self._queue} ({self._result.redriven:,} "
                "redriven before it); fix the topology, then run the command again"
            ) from exc
        except PublishFailed as exc:
            raise self._lost(exc) from exc
        except CONNECTION_ERRORS as exc:
            raise self._lost(exc) from exc
        channels.in_hand = None

    async def _redrive(self, channels: _Channels, message: AbstractIncomingMessage) -> None:
        assert channels.work is not None
        self._check_open(message)
        letter = DeadLetter.of(message)
        message_id = message.message_id or letter.product_id or ""
        await channels.work.publish(
            message.body,
            routing_key=self._broker.topology.routing_key,
            message_id=message_id,
            correlation_id=message.correlation_id or message_id,
            headers=redrive_headers(letter),
            content_type=message.content_type or "application/json",
        )

    async def _put_back(self, channels: _Channels, message: AbstractIncomingMessage) -> None:
        self._check_open(message)
        try:
            await channels.publish.default_exchange.publish(
                _copy(message),
                routing_key=self._queue,
                mandatory=True,
                timeout=self._broker.publish_timeout_seconds,
            )
        except aiormq.exceptions.PublishError as exc:
            raise UnroutableMessage(f"the copy of a dead letter found no {self._queue}") from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishFailed(f"the broker refused the copy of a dead letter: {exc}") from exc
        except TimeoutError as exc:
            raise PublishFailed("no confirm for the copy of a dead letter") from exc

    def _check_open(self, message: AbstractIncomingMessage) -> None:
        """Publish nothing for a message whose channel is gone: its ack could not follow,
        and the broker has already handed it back."""
        if message.channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the channel it came on closed")

    async def _pace(self, started: float) -> None:
        """Hold redrives to the rate asked for: it is the workers' load that a large
        redrive must not spike; what a pass only looks at goes at full speed."""
        if self._rate:
            due = started + self._result.redriven / self._rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _close(self, channels: _Channels) -> None:
        """Hand back what is held (requeue mode) and the message in hand, then close.
        On a dead channel there is nothing to do: the broker has them back already."""
        try:
            # Earliest first: a quorum queue returns messages in the order it gets them.
            if channels.held:
                await channels.held[-1].nack(multiple=True, requeue=True)
            if channels.in_hand is not None and not channels.in_hand.processed:
                await channels.in_hand.nack(requeue=True)
        except _HAND_BACK_ERRORS:
            pass
        for channel in (channels.get, channels.publish):
            try:
                if not channel.is_closed:
                    await channel.close()
            except CONNECTION_ERRORS:
                pass

    def _lost(self, exc: BaseException) -> BrokerUnavailable:
        done = self._result
        return BrokerUnavailable(
            f"the pass over {self._queue} on {self._broker.shown_url} stopped after "
            f"{done.taken:,} of {done.depth:,} messages ({done.redriven:,} redriven, "
            f"{done.deleted:,} deleted): {str(exc) or type(exc).__name__}. Nothing is lost: "
            "the broker keeps every message not yet settled. Run the same command again to "
            "carry on"
        )
