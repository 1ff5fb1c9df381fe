"""Waiting for the RabbitMQ management API's figures, which the broker refreshes every
few seconds (``collect_statistics_interval``: 1 s on the session's own node)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import aiohttp

from tests.support.broker import BrokerFixture


async def management_shows(
    broker: BrokerFixture, queue: str, *, ready: int, within: float = 30, vhost: str = "/"
) -> None:
    """Return once the API reports ``ready`` messages in ``queue``; fail after ``within``."""
    url = f"{broker.management_url}/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}"
    headers = {"Authorization": aiohttp.encode_basic_auth(*broker.credentials)}
    deadline = time.monotonic() + within
    seen = None
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.monotonic() < deadline:
            async with session.get(url) as answer:
                if answer.status == 200:
                    seen = (await answer.json()).get("messages_ready")
                    if seen == ready:
                        return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"management API shows {seen} ready in {queue}, not {ready}")
