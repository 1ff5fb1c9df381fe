"""Waiting for the RabbitMQ management API's figures, which the broker refreshes every
few seconds (``collect_statistics_interval``)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import aiohttp

MANAGEMENT_URL = "http://127.0.0.1:15672"


async def management_shows(queue: str, *, ready: int, within: float = 30, vhost: str = "/") -> None:
    """Return once the API reports ``ready`` messages in ``queue``; fail after ``within``."""
    url = f"{MANAGEMENT_URL}/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}"
    headers = {"Authorization": aiohttp.encode_basic_auth("guest", "guest")}
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
