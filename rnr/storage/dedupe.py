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
_CLAIMED, _PUBLISHED_BEFORE, _IN_PROGRESS = 1, 2, 3

# One script call per batch: a pipeline of per-key commands costs redis-py tens of
# microseconds of CPU per key, the script one round trip and one reply per batch.
# Each key is still claimed atomically (the script runs without interleaving). With
# ElastiCache in cluster mode, give DEDUPE_KEY_PREFIX a hash tag ({rnr}) so a batch's
# keys share one slot.
_CLAIM = """
local outcomes = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[2]) then
    outcomes[i] = 1
  elseif redis.call('GET', key) == ARGV[3] then
    outcomes[i] = 2
  else
    outcomes[i] = 3
  end
end
return outcomes
"""
_COMMIT = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return #KEYS
"""
# Only a pending claim is ours to drop: never undo a committed product.
_RELEASE_IF_PENDING = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    released = released + redis.call('DEL', key)
  end
end
return released
"""


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
        self._ttl_seconds = ttl_seconds
        self._claim_seconds = claim_seconds
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._commit = client.register_script(_COMMIT)
        self._release = client.register_script(_RELEASE_IF_PENDING)

    def key(self, product_id: str) -> str:
        return f"{self._prefix}{product_id}"

    async def claim_many(self, product_ids: Sequence[str]) -> list[ClaimOutcome]:
        """Claim each product atomically (``SET NX``), in one round trip."""
        if not product_ids:
            return []
        keys = [self.key(product_id) for product_id in product_ids]
        try:
            codes = await self._claim(keys=keys, args=[_PENDING, self._claim_seconds, _PUBLISHED])
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis claim of {len(keys)} products failed: {exc}") from exc
        by_code = {
            _CLAIMED: ClaimOutcome.CLAIMED,
            _PUBLISHED_BEFORE: ClaimOutcome.PUBLISHED_BEFORE,
            _IN_PROGRESS: ClaimOutcome.IN_PROGRESS,
        }
        return [by_code[int(code)] for code in codes]

    async def commit_many(self, product_ids: Sequence[str]) -> None:
        if not product_ids:
            return
        keys = [self.key(product_id) for product_id in product_ids]
        try:
            await self._commit(keys=keys, args=[_PUBLISHED, self._ttl_seconds])
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis commit of {len(keys)} products failed: {exc}") from exc

    async def release_many(self, product_ids: Sequence[str]) -> None:
        if not product_ids:
            return
        keys = [self.key(product_id) for product_id in product_ids]
        try:
            await self._release(keys=keys, args=[_PENDING])
        except RedisError as exc:
            raise DedupeUnavailable(f"Redis release of {len(keys)} products failed: {exc}") from exc
