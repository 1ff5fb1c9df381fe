"""ECS task scale-in protection, held while the worker has a message in flight.

When the autoscaler lowers the desired count, ECS stops tasks of its own choosing; a
task that is routing a product would lose that work (the message comes back, but the
minutes are wasted, and the latency doubled). A protected task is skipped by scale-in.
The worker protects itself through the ECS agent's endpoint
(``PUT $ECS_AGENT_URI/task-protection/v1/state``) when it goes from idle to busy and
releases it once it has been idle for ``release_grace_seconds`` (a short grace so that
back-to-back messages do not toggle it, and so the ack after the processor returns is
covered). ``ExpiresInMinutes`` bounds a protection whose release never arrived (a hung
task); it is renewed while the task stays busy. Outside ECS (no ``ECS_AGENT_URI``) all
of this is a no-op. A failed agent call is logged and never fails a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from prometheus_client import CollectorRegistry, Gauge

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
AGENT_PATH = "/task-protection/v1/state"
AGENT_TIMEOUT_SECONDS = 5.0
# After a failed call, messages are not held up by another attempt for this long.
RETRY_AFTER_FAILURE_SECONDS = 30.0


class TaskProtection:
    def __init__(
        self,
        agent_uri: str | None,
        *,
        expires_minutes: int,
        registry: CollectorRegistry | None = None,
        release_grace_seconds: float = 2.0,
    ) -> None:
        self._url = f"{agent_uri.rstrip('/')}{AGENT_PATH}" if agent_uri else None
        self._expires_minutes = expires_minutes
        self._grace_seconds = release_grace_seconds
        self._lock = asyncio.Lock()
        self._in_flight = 0
        self._protected_until = 0.0  # monotonic seconds; 0 = not protected
        self._quiet_until = 0.0  # no agent call before this, after a failure
        self._release: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._gauge = (
            Gauge(
                "rnr_worker_scale_in_protected",
                "1 while this task holds ECS scale-in protection",
                registry=registry,
            )
            if registry is not None
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._url is not None

    def guard(self, processor: Callable[[T], Awaitable[R]]) -> Callable[[T], Awaitable[R]]:
        """The processor, run under protection; unchanged outside ECS."""
        if not self.enabled:
            return processor

        async def protected(item: T) -> R:
            await self._busy()
            try:
                return await processor(item)
            finally:
                self._idle()

        return protected

    async def _busy(self) -> None:
        async with self._lock:
            self._in_flight += 1
            if self._release is not None:
                self._release.cancel()
                self._release = None
            # Renew once half the protection has run out, so a task that stays busy
            # stays protected.
            now = time.monotonic()
            renew_at = self._protected_until - self._expires_minutes * 30
            if now >= renew_at and now >= self._quiet_until:
                await self._set(True)

    def _idle(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._release is None:
            self._release = asyncio.create_task(self._release_after_grace())

    async def _release_after_grace(self) -> None:
        await asyncio.sleep(self._grace_seconds)
        async with self._lock:
            self._release = None
            if self._in_flight == 0 and self._protected_until:
                await self._set(False)

    async def _set(self, enabled: bool) -> None:
        assert self._url is not None
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self._expires_minutes
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.put(
                self._url, json=body, timeout=aiohttp.ClientTimeout(total=AGENT_TIMEOUT_SECONDS)
            ) as answer:
                reply = await answer.json(content_type=None)
                if answer.status != 200 or (isinstance(reply, dict) and reply.get("failure")):
                    raise RuntimeError(f"agent answered {answer.status}: {reply}")
        except (aiohttp.ClientError, TimeoutError, ValueError, RuntimeError) as exc:
            logger.warning(
                "could not change ECS scale-in protection; processing goes on",
                extra={"protection_enabled": enabled, "reason": str(exc)},
            )
            self._quiet_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
            return
        self._protected_until = time.monotonic() + self._expires_minutes * 60 if enabled else 0.0
        if self._gauge is not None:
            self._gauge.set(1 if enabled else 0)
        logger.info("ECS scale-in protection " + ("held" if enabled else "released"))

    async def close(self) -> None:
        """Release at shutdown (the task is stopping anyway) and close the session."""
        if self._release is not None:
            self._release.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._release
            self._release = None
        if self._protected_until and self._url is not None:
            async with self._lock:
                await self._set(False)
        if self._session is not None:
            await self._session.close()
