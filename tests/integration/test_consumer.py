"""The worker runtime against the real broker: ack, delayed retry, dead-lettering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from prometheus_client import CollectorRegistry

from rnr.core.errors import PermanentError, TransientError
from rnr.messaging.consumer import Consumer, ConsumerMetrics, Delivery, Handled
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
)
from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import declare_topology
from tests.support.broker import BrokerFixture
from tests.support.messages import product_message
from tests.support.servers import wait_until_async

Processor = Callable[[Delivery], Awaitable[Handled]]
StartConsumer = Callable[[Processor], Awaitable[Consumer]]


@pytest.fixture
async def start_consumer(broker: BrokerFixture) -> AsyncIterator[StartConsumer]:
    connections: list[aio_pika.abc.AbstractRobustConnection] = []
    consumers: list[Consumer] = []

    async def start(processor: Processor) -> Consumer:
        connection = await aio_pika.connect_robust(broker.url)
        connections.append(connection)
        registry = CollectorRegistry()
        consumer = Consumer(
            connection,
            broker.topology(),
            processor,
            prefetch=4,
            max_attempts=3,
            publish_timeout_seconds=5,
            metrics=ConsumerMetrics(registry),
        )
        await consumer.start()
        consumers.append(consumer)
        consumer.registry = registry  # type: ignore[attr-defined]  # for the tests to read
        return consumer

    yield start
    for consumer in consumers:
        await consumer.stop(drain_seconds=1)
    for connection in connections:
        await connection.close()


async def publish_raw(
    broker: BrokerFixture, body: bytes, message_id: str, headers: dict | None = None
) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await Publisher.open_channel(connection)
        declared = await declare_topology(channel, broker.topology())
        await Publisher(declared.exchange, timeout_seconds=5).publish(
            body,
            routing_key=broker.topology().routing_key,
            message_id=message_id,
            correlation_id=message_id,
            headers=headers,
        )


async def test_success_is_acked_once(broker: BrokerFixture, start_consumer: StartConsumer) -> None:
    seen: list[str] = []

    async def processor(delivery: Delivery) -> Handled:
        seen.append(delivery.product.id)
        return Handled.PROCESSED

    consumer = await start_consumer(processor)
    await publish_raw(broker, product_message("p-ok").to_body(), "p-ok")
    await wait_until_async(lambda: seen == ["p-ok"], within=10)
    await asyncio.sleep(0.3)
    assert seen == ["p-ok"]
    assert consumer.is_consuming()


async def test_transient_failure_is_retried_after_a_broker_held_delay(
    broker: BrokerFixture, start_consumer: StartConsumer
) -> None:
    calls: list[float] = []

    async def processor(delivery: Delivery) -> Handled:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise TransientError("upstream 503")
        return Handled.PROCESSED

    await start_consumer(processor)
    await publish_raw(broker, product_message("p-retry").to_body(), "p-retry")
    await wait_until_async(lambda: len(calls) == 2, within=10)
    # The first retry tier holds the message 0.3 s in the broker.
    assert calls[1] - calls[0] >= 0.3
    assert await broker.drain(broker.topology().dead_letter_queue) == []


async def test_attempts_are_bounded_then_dead_lettered_with_reason(
    broker: BrokerFixture, start_consumer: StartConsumer
) -> None:
    calls: list[float] = []

    async def processor(delivery: Delivery) -> Handled:
        calls.append(time.monotonic())
        raise TransientError(f"still failing ({len(calls)})")

    await start_consumer(processor)
    await publish_raw(broker, product_message("p-bounded").to_body(), "p-bounded")
    await wait_until_async(lambda: len(calls) == 3, within=10)
    # Delays grow: 0.3 s then 0.6 s.
    assert calls[2] - calls[1] > calls[1] - calls[0] >= 0.3
    dead = await wait_for_messages(broker, broker.topology().dead_letter_queue, 1)
    assert dead[0].headers[ATTEMPT_HEADER] == 3
    assert dead[0].headers[DEAD_LETTER_REASON_HEADER] == "attempts_exhausted"
    assert "still failing (3)" in dead[0].headers[ERROR_HEADER]
    assert dead[0].message_id == "p-bounded"
    await asyncio.sleep(1.0)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("body", "reason_fragment"),
    [
        (b"{not json", "not a valid ProductMessage"),
        (b'{"id": "x"}', "url: Field required"),
        (b'{"schema_version": 2, "id": "x"}', "schema_version"),
    ],
    ids=["invalid-json", "schema-violation", "unknown-version"],
)
async def test_poison_message_goes_straight_to_dead_letter_and_worker_carries_on(
    broker: BrokerFixture, start_consumer: StartConsumer, body: bytes, reason_fragment: str
) -> None:
    seen: list[str] = []

    async def processor(delivery: Delivery) -> Handled:
        seen.append(delivery.product.id)
        return Handled.PROCESSED

    consumer = await start_consumer(processor)
    await publish_raw(broker, body, "poison")
    await publish_raw(broker, product_message("p-after").to_body(), "p-after")
    dead = await wait_for_messages(broker, broker.topology().dead_letter_queue, 1)
    assert dead[0].body == body
    assert dead[0].headers[DEAD_LETTER_REASON_HEADER] == "permanent"
    assert dead[0].headers[ATTEMPT_HEADER] == 1
    assert reason_fragment in dead[0].headers[ERROR_HEADER]
    await wait_until_async(lambda: seen == ["p-after"], within=10)
    assert consumer.is_consuming()


async def test_permanent_processing_error_is_not_retried(
    broker: BrokerFixture, start_consumer: StartConsumer
) -> None:
    calls = 0

    async def processor(delivery: Delivery) -> Handled:
        nonlocal calls
        calls += 1
        raise PermanentError("product not found")

    await start_consumer(processor)
    await publish_raw(broker, product_message("p-gone").to_body(), "p-gone")
    dead = await wait_for_messages(broker, broker.topology().dead_letter_queue, 1)
    assert dead[0].headers[ERROR_HEADER] == "product not found"
    assert calls == 1


def metric(consumer: Consumer, name: str, **labels: str) -> float:
    value = consumer.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return value or 0.0


@pytest.mark.parametrize(
    "error", [ValueError("a bug"), KeyError("flow"), RecursionError("deep"), ZeroDivisionError()]
)
async def test_an_unexpected_exception_is_a_bug_dead_lettered_at_once(
    broker: BrokerFixture, start_consumer: StartConsumer, error: Exception
) -> None:
    """Not retried for minutes: logged, counted by type, dead-lettered as permanent."""
    calls = 0

    async def processor(delivery: Delivery) -> Handled:
        nonlocal calls
        calls += 1
        raise error

    consumer = await start_consumer(processor)
    await publish_raw(broker, product_message("p-bug").to_body(), "p-bug")
    [dead] = await wait_for_messages(broker, broker.topology().dead_letter_queue, 1)
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "permanent"
    assert dead.headers[ERROR_TYPE_HEADER] == type(error).__name__
    assert calls == 1
    name = "rnr_worker_unexpected_errors_total"
    assert metric(consumer, name, error_type=type(error).__name__) == 1


async def test_an_os_level_failure_is_retried(
    broker: BrokerFixture, start_consumer: StartConsumer
) -> None:
    attempts: list[int] = []

    async def processor(delivery: Delivery) -> Handled:
        attempts.append(delivery.attempt)
        if len(attempts) == 1:
            raise ConnectionResetError("peer reset")
        return Handled.PROCESSED

    await start_consumer(processor)
    await publish_raw(broker, product_message("p-os").to_body(), "p-os")
    await wait_until_async(lambda: attempts == [1, 2], within=10)
    assert await broker.drain(broker.topology().dead_letter_queue) == []


async def test_the_processor_is_told_when_it_has_its_last_attempt(
    broker: BrokerFixture, start_consumer: StartConsumer
) -> None:
    seen: list[tuple[int, bool]] = []

    async def processor(delivery: Delivery) -> Handled:
        seen.append((delivery.attempt, delivery.is_last_attempt))
        if not delivery.is_last_attempt:
            raise TransientError("not yet")
        return Handled.PROCESSED

    await start_consumer(processor)
    await publish_raw(broker, product_message("p-last").to_body(), "p-last")
    await wait_until_async(lambda: len(seen) == 3, within=10)
    assert seen == [(1, False), (2, False), (3, True)]


async def test_a_duplicate_is_acked_and_counted_apart(
    broker: BrokerFixture, start_consumer: StartConsumer
) -> None:
    async def processor(delivery: Delivery) -> Handled:
        return Handled.DUPLICATE

    consumer = await start_consumer(processor)
    await publish_raw(broker, product_message("p-dup").to_body(), "p-dup")
    name = "rnr_worker_messages_total"
    await wait_until_async(lambda: metric(consumer, name, outcome="duplicate") == 1, within=10)
    assert metric(consumer, name, outcome="acked") == 0


@pytest.mark.parametrize(
    "attempt",
    ["1" * 40, 1e30, 2**62, -1, 0, "abc", True, 1001, [1, 2]],
    ids=[
        "40-digits",
        "huge-float",
        "huge-int",
        "negative",
        "zero",
        "text",
        "bool",
        "over-cap",
        "list",
    ],
)
async def test_an_unusable_attempt_header_dead_letters_with_a_reason_and_never_loops(
    broker: BrokerFixture, start_consumer: StartConsumer, attempt: object
) -> None:
    calls = 0

    async def processor(delivery: Delivery) -> Handled:
        nonlocal calls
        calls += 1
        return Handled.PROCESSED

    consumer = await start_consumer(processor)
    await publish_raw(
        broker, product_message("p-hdr").to_body(), "p-hdr", headers={ATTEMPT_HEADER: attempt}
    )
    [dead] = await wait_for_messages(broker, broker.topology().dead_letter_queue, 1)
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "invalid_header"
    assert ATTEMPT_HEADER in dead.headers[ERROR_HEADER]
    assert dead.headers[ATTEMPT_HEADER] == 1
    assert calls == 0
    await asyncio.sleep(0.5)
    assert metric(consumer, "rnr_worker_messages_total", outcome="requeued") == 0
    assert metric(consumer, "rnr_worker_messages_total", outcome="dead_lettered") == 1


@pytest.mark.parametrize(("attempt", "expected"), [("2", 2), (2, 2), (" 3 ", 3)])
async def test_a_usable_attempt_header_counts_attempts(
    broker: BrokerFixture, start_consumer: StartConsumer, attempt: object, expected: int
) -> None:
    seen: list[int] = []

    async def processor(delivery: Delivery) -> Handled:
        seen.append(delivery.attempt)
        return Handled.PROCESSED

    await start_consumer(processor)
    await publish_raw(
        broker, product_message("p-n").to_body(), "p-n", headers={ATTEMPT_HEADER: attempt}
    )
    await wait_until_async(lambda: seen == [expected], within=10)


async def wait_for_messages(
    broker: BrokerFixture, queue: str, count: int, within: float = 10.0
) -> list[aio_pika.IncomingMessage]:
    collected: list[aio_pika.IncomingMessage] = []
    deadline = time.monotonic() + within
    while len(collected) < count and time.monotonic() < deadline:
        collected.extend(await broker.drain(queue))
        if len(collected) < count:
            await asyncio.sleep(0.1)
    assert len(collected) == count, f"expected {count} messages in {queue}, got {len(collected)}"
    return collected
