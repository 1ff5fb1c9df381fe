"""The AsyncAPI document's promises, kept by the real broker and a second AMQP client.

A team integrating with the queue reads docs/asyncapi.yaml and uses its own client; pika
stands in for it. The topology is declared by the project's own code (aio-pika) under
throw-away names; the document for those names comes from the same generator as the
committed file, and the test reads what to publish from it, as an integrator would.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aio_pika
import aiohttp
import pika
import pika.exceptions
import pytest
import yaml

from rnr.messaging.asyncapi import DOCUMENT_PATH, EXAMPLE_PRODUCT, build_document
from rnr.messaging.models import ProductMessage
from rnr.messaging.topology import declare_topology
from tests.support.broker import BrokerFixture


def resolve(document: dict[str, Any], reference: str) -> Any:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _dereferenced(document: dict[str, Any], node: dict[str, Any]) -> Any:
    while "$ref" in node:
        node = resolve(document, node["$ref"])
    return node


def what_to_publish(document: dict[str, Any]) -> dict[str, Any]:
    """Exchange, routing key, properties and body of the document's publish example."""
    operation = document["operations"]["publishProduct"]
    channel = resolve(document, operation["channel"]["$ref"])
    message = _dereferenced(document, operation["messages"][0])
    trait = resolve(document, message["traits"][0]["$ref"])
    return {
        "exchange": channel["bindings"]["amqp"]["exchange"]["name"],
        "routing_key": channel["address"],
        "mandatory": operation["bindings"]["amqp"]["mandatory"],
        "delivery_mode": operation["bindings"]["amqp"]["deliveryMode"],
        "properties": trait["bindings"]["amqp"]["x-properties"]["examples"][0],
        "payload": message["examples"][0]["payload"],
    }


def publish_with_pika(url: str, exchange: str, routing_key: str, plan: dict[str, Any]) -> None:
    """One confirmed publish; pika raises UnroutableError if no queue takes it."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = plan["properties"]
        channel.basic_publish(
            exchange=exchange,
            routing_key=routing_key,
            body=json.dumps(plan["payload"]).encode(),
            properties=pika.BasicProperties(
                content_type=properties["content_type"],
                delivery_mode=properties["delivery_mode"],
                message_id=properties["message_id"],
                correlation_id=properties["correlation_id"],
            ),
            mandatory=plan["mandatory"],
        )
    finally:
        connection.close()


async def _management_get(broker: BrokerFixture, path: str) -> Any:
    headers = {"Authorization": aiohttp.encode_basic_auth(*broker.credentials)}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{broker.management_url}/api/{path}") as answer,
    ):
        answer.raise_for_status()
        return await answer.json()


@pytest.fixture
async def declared(broker: BrokerFixture) -> dict[str, Any]:
    """The throw-away topology declared by the project's code; its document."""
    connection = await aio_pika.connect(broker.url)
    async with connection:
        await declare_topology(await connection.channel(), broker.topology())
    return build_document(broker.topology())


def test_committed_example_is_the_one_published(declared: dict[str, Any]) -> None:
    committed = what_to_publish(yaml.safe_load(DOCUMENT_PATH.read_text()))
    here = what_to_publish(declared)
    assert (committed["exchange"], committed["routing_key"]) == ("rnr", "rnr.products")
    for key in ("mandatory", "delivery_mode", "properties", "payload"):
        assert committed[key] == here[key]


async def test_example_published_with_pika_reaches_the_work_queue_intact(
    broker: BrokerFixture, declared: dict[str, Any]
) -> None:
    plan = what_to_publish(declared)
    assert (plan["exchange"], plan["routing_key"]) == (broker.exchange, broker.queue)
    await asyncio.to_thread(
        publish_with_pika, broker.url, plan["exchange"], plan["routing_key"], plan
    )

    (message,) = await broker.drain(broker.queue)
    assert ProductMessage.from_body(message.body) == EXAMPLE_PRODUCT
    assert message.message_id == plan["properties"]["message_id"] == EXAMPLE_PRODUCT.id
    assert message.correlation_id == plan["properties"]["correlation_id"] == EXAMPLE_PRODUCT.id
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT == plan["delivery_mode"]
    assert message.exchange == broker.exchange and message.routing_key == broker.queue
    topology = broker.topology()
    for elsewhere in (topology.dead_letter_queue, *topology.retry_queues()):
        assert await broker.drain(elsewhere) == []


async def test_a_routing_key_the_document_does_not_state_is_refused(
    broker: BrokerFixture, declared: dict[str, Any]
) -> None:
    plan = what_to_publish(declared)
    with pytest.raises(pika.exceptions.UnroutableError):
        await asyncio.to_thread(
            publish_with_pika, broker.url, plan["exchange"], f"{broker.queue}.typo", plan
        )
    assert await broker.drain(broker.queue) == []


async def test_broker_holds_the_queues_and_bindings_the_document_states(
    broker: BrokerFixture, declared: dict[str, Any]
) -> None:
    vhost = quote("/", safe="")
    for channel in declared["channels"].values():
        binding = channel["bindings"]["amqp"]
        if binding["is"] == "routingKey":
            exchange = binding["exchange"]
            seen = await _management_get(broker, f"exchanges/{vhost}/{quote(exchange['name'])}")
            assert (seen["type"], seen["durable"], seen["auto_delete"]) == (
                exchange["type"],
                exchange["durable"],
                exchange["autoDelete"],
            )
            continue
        name = binding["queue"]["name"]
        seen = await _management_get(broker, f"queues/{vhost}/{quote(name)}")
        assert seen["arguments"] == binding["x-arguments"], name
        assert seen["durable"] is binding["queue"]["durable"]
        assert seen["exclusive"] is binding["queue"]["exclusive"]
        assert seen["auto_delete"] is binding["queue"]["autoDelete"]
        bindings = await _management_get(broker, f"queues/{vhost}/{quote(name)}/bindings")
        bound = [
            {"exchange": entry["source"], "routingKey": entry["routing_key"]}
            for entry in bindings
            if entry["source"]  # the default exchange binds every queue by its name
        ]
        assert bound == binding["x-bound-to"], name
