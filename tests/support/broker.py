"""Per-test broker names and environment, and cleanup of what a test declared."""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika

from rnr.messaging.topology import Topology, delete_topology


@dataclass(frozen=True)
class BrokerFixture:
    url: str
    unique: str
    retry_delays: str = "0.3,0.6"

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


def broker_secret(moto_endpoint: str, name: str) -> str:
    """A Secrets Manager secret holding the local broker's credentials; returns its ARN."""
    import json

    import boto3

    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    payload = json.dumps({"username": "guest", "password": "guest"})
    return secrets.create_secret(Name=name, SecretString=payload)["ARN"]
