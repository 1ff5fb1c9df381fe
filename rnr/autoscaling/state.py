"""The policy's stabilization history, kept in Redis between runs.

Why Redis: a Lambda keeps nothing reliably between invocations (a cold start, or two
concurrent containers, each begin empty), and the scale-in window must survive them,
or every cold start would be a license to scale in. The pipeline already runs Redis
(ElastiCache) for the producer's dedupe keys, reachable from the same subnets, so this
adds no new service. The state is a few recommendations (one per run in the window)
under one key with a TTL, written once per run. DynamoDB or SSM Parameter Store
would also do, at the price of a new resource and IAM grant for a few bytes.

If Redis cannot be read, ``load`` returns None and the policy holds scale-in (it still
scales out): losing the window must never remove tasks early.
"""

from __future__ import annotations

import json
import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from rnr.autoscaling.policy import Recommendation

logger = logging.getLogger(__name__)


class StabilizationStore:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: int) -> None:
        self._client = client
        self._key = key
        self._ttl_seconds = ttl_seconds

    async def load(self) -> list[Recommendation] | None:
        try:
            raw = await self._client.get(self._key)
        except (RedisError, OSError) as exc:
            logger.warning(
                "cannot read the scaling history; holding scale-in", extra={"reason": repr(exc)}
            )
            return None
        if raw is None:
            return []
        try:
            return [Recommendation(float(at), int(tasks)) for at, tasks in json.loads(raw)]
        except (TypeError, ValueError):
            logger.warning("unreadable scaling history replaced", extra={"key": self._key})
            return []

    async def save(self, history: tuple[Recommendation, ...]) -> None:
        payload = json.dumps([[r.at_s, r.tasks] for r in history])
        try:
            await self._client.set(self._key, payload, ex=self._ttl_seconds)
        except (RedisError, OSError) as exc:
            logger.warning("cannot store the scaling history", extra={"reason": repr(exc)})

    async def ready_since(self, ready: int, now_s: float) -> float | None:
        """Seconds since the work queue was last seen with no ready message (0 when it
        has none now); None when Redis cannot tell.

        Quorum queues do not report their head message's age, so this stands in for
        the oldest message's age: a ready message cannot have waited longer than the
        queue has held one, except one requeued by a crashed worker.
        """
        key = f"{self._key}:ready-since"
        try:
            if ready == 0:
                await self._client.delete(key)
                return 0.0
            await self._client.set(key, repr(now_s), nx=True, ex=self._ttl_seconds)
            since = await self._client.get(key)
        except (RedisError, OSError) as exc:
            logger.warning("cannot track the queue's waiting time", extra={"reason": repr(exc)})
            return None
        return max(0.0, now_s - float(since)) if since is not None else 0.0
