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
from collections.abc import Sequence
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
    """Batch operations: one round trip per batch, not per product."""

    async def claim_many(self, product_ids: Sequence[str]) -> list[ClaimOutcome]: ...
    async def commit_many(self, product_ids: Sequence[str]) -> None: ...
    async def release_many(self, product_ids: Sequence[str]) -> None: ...


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
        self._release_if_pending = client.register_script(_RELEASE_IF_PENDING)

    def key(self, product_id: str) -> str:
        return f"{self._prefix}{product_id}"

    async def claim_many(self, product_ids: Sequence[str]) -> list[ClaimOutcome]:
        """Claim each product atomically (``SET NX``), in one pipelined round trip."""
        if not product_ids:
            return []
        keys = [self.key(product_id) for product_id in product_ids]
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, _PENDING, nx=True, ex=self._claim_seconds)
                claimed = await pipe.execute()
                taken = [key for key, ok in zip(keys, claimed, strict=True) if not ok]
                for key in taken:
                    pipe.get(key)
                states = dict(zip(taken, await pipe.execute(), strict=True)) if taken else {}
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis claim of {len(keys)} products failed: {exc}") from exc
        outcomes = []
        for key, ok in zip(keys, claimed, strict=True):
            if ok:
                outcomes.append(ClaimOutcome.CLAIMED)
            elif states.get(key) == _PUBLISHED:
                outcomes.append(ClaimOutcome.PUBLISHED_BEFORE)
            else:  # pending elsewhere, or lapsed just now: the next run sees it afresh
                outcomes.append(ClaimOutcome.IN_PROGRESS)
        return outcomes

    async def commit_many(self, product_ids: Sequence[str]) -> None:
        if not product_ids:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for product_id in product_ids:
                    pipe.set(self.key(product_id), _PUBLISHED, ex=self._ttl_seconds)
                await pipe.execute()
        except RedisError as exc:
            raise DedupeUnavailable(
                f"Redis commit of {len(product_ids)} products failed: {exc}"
            ) from exc

    async def release_many(self, product_ids: Sequence[str]) -> None:
        if not product_ids:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for product_id in product_ids:
                    await self._release_if_pending(
                        keys=[self.key(product_id)], args=[_PENDING], client=pipe
                    )
                await pipe.execute()
        except RedisError as exc:
            raise DedupeUnavailable(
                f"Redis release of {len(product_ids)} products failed: {exc}"
            ) from exc
