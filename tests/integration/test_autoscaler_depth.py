"""Queue depth against the real RabbitMQ: management API (ready, unacked, busy tasks,
a URL-encoded vhost, credentials from Secrets Manager) and the AMQP fallback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

import aio_pika
import aiohttp
import pytest

from rnr.autoscaling.depth import (
    DepthReading,
    QueueDepthReader,
    management_url,
    vhost_of,
)
from rnr.core.settings import AwsSettings, BrokerSettings
from rnr.messaging.topology import Topology, declare_topology
from rnr.storage.aws import AwsClients
from rnr.storage.secrets import SecretCache
from tests.support.broker import BrokerFixture, broker_secret
from tests.support.servers import free_port


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def broker_settings(broker: BrokerFixture, **env: str) -> BrokerSettings:
    values = {k.lower(): v for k, v in {**broker.env(), **env}.items()}
    values["rabbitmq_queue_type"] = "quorum"
    return BrokerSettings(**values)


async def publish(url: str, topology: Topology, count: int, *, dead: int = 0) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, topology)
        for routing_exchange, n in (
            (topology.exchange, count),
            (topology.dead_letter_exchange, dead),
        ):
            exchange = await channel.get_exchange(routing_exchange)
            for i in range(n):
                await exchange.publish(
                    aio_pika.Message(b"{}", message_id=str(i)), routing_key=topology.routing_key
                )


async def reading_until(
    read: Callable[[], Awaitable[DepthReading]],
    done: Callable[[DepthReading], bool],
    within: float = 30,
) -> DepthReading:
    """The management API refreshes its figures every few seconds: read until they agree."""
    deadline = time.monotonic() + within
    while True:
        reading = await read()
        if done(reading) or time.monotonic() > deadline:
            return reading
        await asyncio.sleep(0.5)


def test_management_url_is_derived_from_the_broker_address() -> None:
    def derived(**env: str) -> str:
        return management_url(BrokerSettings(**env), None)

    amazon_mq = "amqps://b-1234.mq.us-east-1.amazonaws.com:5671"
    assert (
        derived(rabbitmq_endpoint=amazon_mq, rabbitmq_secret_arn="arn:x")
        == "https://b-1234.mq.us-east-1.amazonaws.com"
    )
    assert derived(rabbitmq_url="amqp://u:p@rabbit:5672/") == "http://rabbit:15672"
    assert derived(rabbitmq_url="amqps://u:p@b-1.mq.eu-west-1.amazonaws.com:5671/") == (
        "https://b-1.mq.eu-west-1.amazonaws.com"
    )
    configured = management_url(BrokerSettings(rabbitmq_url="amqp://h/"), "https://x:8443/")
    assert configured == "https://x:8443"
    assert vhost_of("amqp://u:p@h:5672/") == "/"
    assert vhost_of("amqp://u:p@h:5672") == "/"
    assert vhost_of("amqp://u:p@h:5672/rnr%2Fprod") == "rnr/prod"


async def test_management_api_counts_ready_unacked_busy_tasks_and_dead_letters(
    broker: BrokerFixture, session: aiohttp.ClientSession
) -> None:
    topology = broker.topology()
    await publish(broker.url, topology, 7, dead=2)
    holder = await aio_pika.connect(broker.url, client_properties={"connection_name": "holder"})
    async with holder:
        channel = await holder.channel()
        await channel.set_qos(prefetch_count=3)
        queue = await channel.get_queue(topology.queue)
        held: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            held.append(message)  # never acked while the connection lives

        await queue.consume(hold)
        settings = broker_settings(broker)
        reader = QueueDepthReader(settings, None, session, broker.management_url)
        reading = await reading_until(
            reader.read, lambda r: (r.work.ready, r.work.unacked, r.dead_letter.ready) == (4, 3, 2)
        )
    assert reading.source == "management_api"
    assert reading.fallback_reason is None
    assert (reading.work.name, reading.work.ready, reading.work.unacked) == (topology.queue, 4, 3)
    assert reading.work.consumers == 1
    assert reading.busy_tasks == 1
    assert (reading.dead_letter.name, reading.dead_letter.messages) == (
        topology.dead_letter_queue,
        2,
    )


async def test_an_idle_consumer_is_not_a_busy_task(
    broker: BrokerFixture, session: aiohttp.ClientSession
) -> None:
    topology = broker.topology()
    await publish(broker.url, topology, 0)
    idle = await aio_pika.connect(broker.url)
    async with idle:
        channel = await idle.channel()

        async def ignore(_: aio_pika.abc.AbstractIncomingMessage) -> None:
            return None

        await (await channel.get_queue(topology.queue)).consume(ignore)
        reader = QueueDepthReader(broker_settings(broker), None, session, broker.management_url)
        reading = await reading_until(reader.read, lambda r: r.work.consumers == 1)
    assert (reading.work.consumers, reading.work.messages, reading.busy_tasks) == (1, 0, 0)


@pytest.fixture
async def slash_vhost(
    broker: BrokerFixture, unique: str, session: aiohttp.ClientSession
) -> AsyncIterator[str]:
    """A virtual host whose name holds a slash: it only works if URL-encoded (%2F)."""
    name = f"rnr/test-{unique}"
    username, _ = broker.credentials
    auth = {"Authorization": aiohttp.encode_basic_auth(*broker.credentials)}
    path = f"{broker.management_url}/api/vhosts/{quote(name, safe='')}"
    async with session.put(path, headers=auth) as answer:
        assert answer.status in (201, 204), await answer.text()
    permissions = (
        f"{broker.management_url}/api/permissions/{quote(name, safe='')}/{quote(username)}"
    )
    body = {"configure": ".*", "write": ".*", "read": ".*"}
    async with session.put(permissions, headers=auth, json=body) as answer:
        assert answer.status in (201, 204), await answer.text()
    yield name
    async with session.delete(path, headers=auth) as answer:
        assert answer.status == 204


async def test_a_vhost_with_a_slash_is_url_encoded(
    broker: BrokerFixture, slash_vhost: str, session: aiohttp.ClientSession
) -> None:
    url = broker.url_for(slash_vhost)
    await publish(url, broker.topology(), 5)
    settings = broker_settings(broker, RABBITMQ_URL=url)
    reader = QueueDepthReader(settings, None, session, broker.management_url)
    reading = await reading_until(reader.read, lambda r: r.work.ready == 5)
    assert (reading.source, reading.work.ready, reading.work.unacked) == ("management_api", 5, 0)


async def test_credentials_come_from_the_broker_secret(
    broker: BrokerFixture, moto_endpoint: str, unique: str, session: aiohttp.ClientSession
) -> None:
    arn = broker_secret(moto_endpoint, f"rnr/test/mgmt-{unique}", broker)
    await publish(broker.url, broker.topology(), 3)
    env = {k: v for k, v in broker.env().items() if k != "RABBITMQ_URL"}
    values = {k.lower(): v for k, v in env.items()} | {
        "rabbitmq_endpoint": broker.endpoint,
        "rabbitmq_secret_arn": arn,
        "rabbitmq_queue_type": "quorum",
    }
    settings = BrokerSettings(**values)
    cache = SecretCache(AwsClients(AwsSettings(aws_endpoint_url=moto_endpoint)))
    # Derived from the endpoint's host; the session's own node serves it on another port.
    host = broker.endpoint.split("://")[1].rsplit(":", 1)[0]
    assert management_url(settings, None) == f"http://{host}:15672"
    reader = QueueDepthReader(settings, cache, session, broker.management_url)
    reading = await reading_until(reader.read, lambda r: r.work.ready == 3)
    assert (reading.source, reading.work.ready) == ("management_api", 3)


async def test_falls_back_to_a_passive_declare_when_the_api_is_unreachable(
    broker: BrokerFixture, session: aiohttp.ClientSession
) -> None:
    await publish(broker.url, broker.topology(), 4, dead=1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    reader = QueueDepthReader(broker_settings(broker), None, session, nowhere)
    reading = await reader.read()
    assert reading.source == "amqp_passive_declare"
    assert reading.fallback_reason and "/api/queues/" in reading.fallback_reason
    assert (reading.work.ready, reading.work.unacked, reading.busy_tasks) == (4, None, None)
    assert reading.dead_letter.ready == 1


@pytest.fixture
async def amqp_only_user(
    broker: BrokerFixture, unique: str, session: aiohttp.ClientSession
) -> AsyncIterator[str]:
    """A user that may use AMQP but has no management tag: the API answers it 401."""
    name, auth = (
        f"rnr-amqp-{unique}",
        {"Authorization": aiohttp.encode_basic_auth(*broker.credentials)},
    )
    user = f"{broker.management_url}/api/users/{name}"
    async with session.put(user, headers=auth, json={"password": "pw", "tags": ""}) as answer:
        assert answer.status in (201, 204), await answer.text()
    body = {"configure": ".*", "write": ".*", "read": ".*"}
    permissions = f"{broker.management_url}/api/permissions/%2F/{name}"
    async with session.put(permissions, headers=auth, json=body):
        pass
    yield broker.url_for(username=name, password="pw")
    async with session.delete(user, headers=auth):
        pass


async def test_falls_back_when_the_api_refuses_the_credentials(
    broker: BrokerFixture, amqp_only_user: str, session: aiohttp.ClientSession
) -> None:
    await publish(broker.url, broker.topology(), 2)
    settings = broker_settings(broker, RABBITMQ_URL=amqp_only_user)
    reading = await QueueDepthReader(settings, None, session, broker.management_url).read()
    assert reading.source == "amqp_passive_declare"
    assert "answered 401" in (reading.fallback_reason or "")
    assert (reading.work.ready, reading.work.unacked) == (2, None)
