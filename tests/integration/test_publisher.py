"""Publishing against the real broker: confirms, persistence, returned messages."""

from __future__ import annotations

import asyncio
import dataclasses

import aio_pika
import pytest

from devstack.brokers import RabbitMQNode
from rnr.messaging.errors import UnroutableMessage
from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import declare_topology
from tests.support.broker import BrokerFixture


async def test_confirmed_publish_lands_persistent_with_ids(broker: BrokerFixture) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await Publisher.open_channel(connection)
        declared = await declare_topology(channel, broker.topology())
        publisher = Publisher(declared.exchange, timeout_seconds=5)
        await publisher.publish(
            b'{"x": 1}',
            routing_key=broker.topology().routing_key,
            message_id="m-1",
            correlation_id="c-1",
            headers={"x-rnr-schema-version": 1},
        )
    [message] = await broker.drain(broker.queue)
    assert message.body == b'{"x": 1}'
    assert message.message_id == "m-1"
    assert message.correlation_id == "c-1"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.headers["x-rnr-schema-version"] == 1


async def test_unroutable_message_is_returned_as_an_error(broker: BrokerFixture) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await Publisher.open_channel(connection)
        declared = await declare_topology(channel, broker.topology())
        publisher = Publisher(declared.exchange, timeout_seconds=5)
        with pytest.raises(UnroutableMessage, match="no queue bound"):
            await publisher.publish(
                b"{}", routing_key="nobody-listens-here", message_id="m-2", correlation_id="c-2"
            )
        # The channel stays usable after a return.
        await publisher.publish(
            b"{}", routing_key=broker.topology().routing_key, message_id="m-3", correlation_id="c"
        )
    assert [m.message_id for m in await broker.drain(broker.queue)] == ["m-3"]


async def test_topology_declaration_is_idempotent(broker: BrokerFixture) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        first = await declare_topology(channel, broker.topology())
        second = await declare_topology(channel, broker.topology())
        assert first.queue.name == second.queue.name == broker.queue
        passive = await channel.declare_queue(broker.topology().dead_letter_queue, passive=True)
        assert passive.declaration_result.message_count == 0


async def test_auto_queue_type_declares_quorum_queues_on_this_broker(
    broker: BrokerFixture, rabbitmq_node: RabbitMQNode
) -> None:
    topology = dataclasses.replace(broker.topology(), queue_type="auto")
    connection = await aio_pika.connect(broker.url)
    async with connection:
        await declare_topology(await connection.channel(), topology)
    listed = await asyncio.to_thread(
        rabbitmq_node.ctl, "list_queues", "--no-table-headers", "name", "type"
    )
    types = dict(line.split("\t") for line in listed.splitlines() if "\t" in line)
    assert types[broker.queue] == "quorum"
    assert types[topology.dead_letter_queue] == "quorum"
