r"""Which products have been published, kept in Redis so every run agrees.

A product moves through two states under one key:

    (absent) --claim: SET NX EX claim_seconds--> "pending" --commit: SET XX EX ttl--> "published"
                              \--release: DEL (publish failed)--> (absent)

The claim is atomic (``SET NX``), so two concurrent runs never both publish. It
expires by itself after ``claim_seconds``, so a run that dies between claim and
publish delays a product by one claim period instead of losing it. Only a publish the
broker has confirmed is committed for the full TTL. If Redis fails right after a
confirm the claim lapses and the product is published again: a duplicate the worker
absorbs (its output keys are deterministic), never a loss.
"""

from __future__ import annotations

import enum
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from rnr.core.errors import TransientError

_PENDING = b"pending"
_PUBLISHED = b"published"
# Only a pending claim is ours to drop: never undo a committed product.
_RELEASE_IF_PENDING = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


class DedupeUnavailable(TransientError):
    """Redis could not be reached or answered with an error."""


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    PUBLISHED_BEFORE = "published_before"
    IN_PROGRESS = "in_progress"


class DedupeStore(Protocol):
    async def claim(self, product_id: str) -> ClaimOutcome: ...
    async def commit(self, product_id: str) -> None: ...
    async def release(self, product_id: str) -> None: ...


class RedisDedupeStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_seconds: int,
        claim_seconds: int,
        prefix: str = "rnr:product:",
    ) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._claim_seconds = claim_seconds
        self._prefix = prefix

    def key(self, product_id: str) -> str:
        return f"{self._prefix}{product_id}"

    async def claim(self, product_id: str) -> ClaimOutcome:
        key = self.key(product_id)
        try:
            if await self._client.set(key, _PENDING, nx=True, ex=self._claim_seconds):
                return ClaimOutcome.CLAIMED
            state = await self._client.get(key)
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis claim of {key} failed: {exc}") from exc
        if state is None:  # expired between the two calls: try once more
            return await self.claim(product_id)
        return ClaimOutcome.PUBLISHED_BEFORE if state == _PUBLISHED else ClaimOutcome.IN_PROGRESS

    async def commit(self, product_id: str) -> None:
        key = self.key(product_id)
        try:
            await self._client.set(key, _PUBLISHED, ex=self._ttl_seconds)
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis commit of {key} failed: {exc}") from exc

    async def release(self, product_id: str) -> None:
        key = self.key(product_id)
        try:
            await self._client.eval(_RELEASE_IF_PENDING, 1, key, _PENDING)
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis release of {key} failed: {exc}") from exc
