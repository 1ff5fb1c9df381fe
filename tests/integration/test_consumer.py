"""The worker runtime against the real broker: ack, delayed retry, dead-lettering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from prometheus_client import CollectorRegistry

from rnr.core.errors import PermanentError, TransientError
from rnr.messaging.consumer import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    Consumer,
    ConsumerMetrics,
)
from rnr.messaging.models import ProductMessage
from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import declare_topology
from tests.support.broker import BrokerFixture
from tests.support.messages import product_message
from tests.support.servers import wait_until_async

StartConsumer = Callable[[Callable[[ProductMessage], Awaitable[None]]], Awaitable[Consumer]]


@pytest.fixture
async def start_consumer(broker: BrokerFixture) -> AsyncIterator[StartConsumer]:
    connections: list[aio_pika.abc.AbstractRobustConnection] = []
    consumers: list[Consumer] = []

    async def start(processor: Callable[[ProductMessage], Awaitable[None]]) -> Consumer:
        connection = await aio_pika.connect_robust(broker.url)
        connections.append(connection)
        consumer = Consumer(
            connection,
            broker.topology(),
            processor,
            prefetch=4,
            max_attempts=3,
            publish_timeout_seconds=5,
            metrics=ConsumerMetrics(CollectorRegistry()),
        )
        await consumer.start()
        consumers.append(consumer)
        return consumer

    yield start
    for consumer in consumers:
        await consumer.stop(drain_seconds=1)
    for connection in connections:
        await connection.close()


async def publish_raw(broker: BrokerFixture, body: bytes, message_id: str) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await Publisher.open_channel(connection)
        declared = await declare_topology(channel, broker.topology())
        await Publisher(declared.exchange, timeout_seconds=5).publish(
            body,
            routing_key=broker.topology().routing_key,
            message_id=message_id,
            correlation_id=message_id,
        )


async def test_success_is_acked_once(broker: BrokerFixture, start_consumer: StartConsumer) -> None:
    seen: list[str] = []

    async def processor(product: ProductMessage) -> None:
        seen.append(product.id)

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

    async def processor(product: ProductMessage) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise TransientError("upstream 503")

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

    async def processor(product: ProductMessage) -> None:
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

    async def processor(product: ProductMessage) -> None:
        seen.append(product.id)

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

    async def processor(product: ProductMessage) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("product not found")

    await start_consumer(processor)
    await publish_raw(broker, product_message("p-gone").to_body(), "p-gone")
    dead = await wait_for_messages(broker, broker.topology().dead_letter_queue, 1)
    assert dead[0].headers[ERROR_HEADER] == "product not found"
    assert calls == 1


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
