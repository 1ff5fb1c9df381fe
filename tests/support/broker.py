"""Per-test broker names and environment, and cleanup of what a test declared."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import aio_pika

from rnr.messaging.topology import Topology, delete_topology


@dataclass(frozen=True)
class BrokerFixture:
    url: str
    unique: str
    management_url: str
    retry_delays: str = "0.3,0.6"

    @property
    def endpoint(self) -> str:
        """``amqp://host:port``: the broker's address without credentials or vhost."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}"

    @property
    def credentials(self) -> tuple[str, str]:
        parts = urlsplit(self.url)
        return unquote(parts.username or "guest"), unquote(parts.password or "guest")

    def url_for(self, vhost: str = "/", username: str = "", password: str = "") -> str:
        """The broker's AMQP URL with other credentials or another virtual host."""
        user, secret = (username, password) if username else self.credentials
        userinfo = f"{quote(user, safe='')}:{quote(secret, safe='')}"
        path = "" if vhost == "/" else quote(vhost, safe="")
        return f"{self.endpoint.replace('://', f'://{userinfo}@', 1)}/{path}"

    @property
    def exchange(self) -> str:
        return f"rnr-test-{self.unique}"

    @property
    def queue(self) -> str:
        return f"rnr-test-{self.unique}.products"

    def topology(self) -> Topology:
        return Topology(
            exchange=self.exchange,
            queue=self.queue,
            queue_type="quorum",
            retry_delays_seconds=tuple(float(d) for d in self.retry_delays.split(",")),
        )

    def env(self) -> dict[str, str]:
        return {
            "RABBITMQ_URL": self.url,
            # The session's node listens for the API on a port of its own, not 15672.
            "RABBITMQ_MANAGEMENT_URL": self.management_url,
            "RABBITMQ_EXCHANGE": self.exchange,
            "RABBITMQ_QUEUE": self.queue,
            "RETRY_DELAYS_SECONDS": self.retry_delays,
        }

    async def delete_all(self) -> None:
        connection = await aio_pika.connect(self.url)
        async with connection:
            await delete_topology(await connection.channel(), self.topology())

    async def drain(self, queue: str) -> list[aio_pika.IncomingMessage]:
        """Every message now in ``queue``, acked and returned in order."""
        connection = await aio_pika.connect(self.url)
        messages = []
        async with connection:
            channel = await connection.channel()
            declared = await channel.get_queue(queue, ensure=True)
            while (message := await declared.get(fail=False)) is not None:
                await message.ack()
                messages.append(message)
        return messages


def broker_secret(moto_endpoint: str, name: str, broker: BrokerFixture) -> str:
    """A Secrets Manager secret holding the test broker's credentials; returns its ARN."""
    import json

    import boto3

    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    username, password = broker.credentials
    payload = json.dumps({"username": username, "password": password})
    return secrets.create_secret(Name=name, SecretString=payload)["ARN"]
