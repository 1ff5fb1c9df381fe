"""The producer against real Redis, the real broker and the replay server.

Failures are injected at the real components where the broker allows it (a queue
length limit makes RabbitMQ itself nack publishes) and with a thin failing wrapper
around the real Redis store where it does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry

from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import declare_topology
from rnr.storage.dedupe import ClaimOutcome, DedupeUnavailable, RedisDedupeStore
from rnr.upstream.http import UpstreamClient, UpstreamUnavailable
from rnr.upstream.nws import NwsClient
from services.producer.producer import Producer, ProducerMetrics
from tests.conftest import Replay
from tests.support.broker import BrokerFixture


@dataclass
class Parts:
    nws: NwsClient
    dedupe: RedisDedupeStore
    publisher: Publisher
    redis: redis.Redis
    routing_key: str

    def producer(self, **overrides: object) -> Producer:
        options: dict[str, object] = {
            "nws": self.nws,
            "dedupe": self.dedupe,
            "publisher": self.publisher,
            "routing_key": self.routing_key,
            "concurrency": 4,
            "metrics": ProducerMetrics(CollectorRegistry()),
        }
        options.update(overrides)
        return Producer(**options)  # type: ignore[arg-type]


@pytest.fixture
async def parts(
    broker: BrokerFixture, redis_url: str, replay: Replay, unique: str
) -> AsyncIterator[Parts]:
    redis_client = redis.from_url(redis_url)
    connection = await aio_pika.connect(broker.url)
    session = UpstreamClient.open_session(user_agent="rnr-tests", timeout_seconds=5)
    channel = await Publisher.open_channel(connection)
    declared = await declare_topology(channel, broker.topology())
    yield Parts(
        nws=NwsClient(UpstreamClient(session, retries=2, backoff_seconds=0.01), replay.url),
        dedupe=RedisDedupeStore(
            redis_client, ttl_seconds=3600, claim_seconds=30, prefix=f"rnr:test:{unique}:"
        ),
        publisher=Publisher(declared.exchange, timeout_seconds=5),
        redis=redis_client,
        routing_key=broker.topology().routing_key,
    )
    await session.close()
    await connection.close()
    keys = [key async for key in redis_client.scan_iter(f"rnr:test:{unique}:*")]
    if keys:
        await redis_client.delete(*keys)
    await redis_client.aclose()


async def queued_ids(broker: BrokerFixture) -> list[str]:
    return [message.message_id for message in await broker.drain(broker.queue)]


async def test_new_products_are_published_oldest_first_then_deduplicated(
    parts: Parts, broker: BrokerFixture, replay: Replay
) -> None:
    listing = replay.listing()
    oldest_first = [p["id"] for p in sorted(listing, key=lambda p: p["issuanceTime"])]

    first = await parts.producer(concurrency=1).run()
    assert first.counts() == {
        "listed": len(listing),
        "new": len(listing),
        "duplicate": 0,
        "in_progress": 0,
        "published": len(listing),
        "failed": 0,
        "invalid": 0,
    }
    assert await queued_ids(broker) == oldest_first

    second = await parts.producer().run()
    assert second.duplicate == len(listing)
    assert second.published == 0
    assert await queued_ids(broker) == []


async def test_dedupe_key_has_the_configured_ttl(parts: Parts) -> None:
    await parts.producer().run()
    for product in (await parts.nws.list_products()).products:
        assert 3500 < await parts.redis.ttl(parts.dedupe.key(product.id)) <= 3600


async def test_concurrent_claims_admit_exactly_one(parts: Parts) -> None:
    answers = await asyncio.gather(
        *(parts.dedupe.claim_many(["same-product", f"other-{i}"]) for i in range(25))
    )
    firsts = [answer[0] for answer in answers]
    assert firsts.count(ClaimOutcome.CLAIMED) == 1
    assert firsts.count(ClaimOutcome.IN_PROGRESS) == 24
    assert {answer[1] for answer in answers} == {ClaimOutcome.CLAIMED}
    await parts.dedupe.commit_many(["same-product"])
    assert await parts.dedupe.claim_many(["same-product"]) == [ClaimOutcome.PUBLISHED_BEFORE]
    # Releasing never undoes a committed product, but does free a pending claim.
    await parts.dedupe.release_many(["same-product", "other-0"])
    assert await parts.dedupe.claim_many(["same-product", "other-0"]) == [
        ClaimOutcome.PUBLISHED_BEFORE,
        ClaimOutcome.CLAIMED,
    ]


class UnbindsAfter(Publisher):
    """The real publisher; after ``count`` confirms it removes the queue's binding, so
    the broker itself returns every later message as unroutable."""

    def __init__(self, real: Publisher, count: int, unbind) -> None:
        self.__dict__.update(real.__dict__)
        self.remaining = count
        self.unbind = unbind

    async def publish(self, body: bytes, **options) -> None:
        await super().publish(body, **options)
        self.remaining -= 1
        if self.remaining == 0:
            await self.unbind()


async def test_broker_refusing_part_way_loses_nothing_and_duplicates_nothing(
    parts: Parts, broker: BrokerFixture, replay: Replay
) -> None:
    listing = replay.listing()
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        declared = await declare_topology(channel, broker.topology())

        async def unbind() -> None:
            await declared.queue.unbind(declared.exchange, broker.topology().routing_key)

        publisher = UnbindsAfter(parts.publisher, 2, unbind)
        summary = await parts.producer(publisher=publisher, concurrency=1).run()
        first_batch = await queued_ids(broker)
        assert summary.published == len(first_batch) == 2
        assert summary.failed == len(listing) - 2
        assert all("no queue bound" in f["reason"] for f in summary.failures)
        assert {f["product_id"] for f in summary.failures}.isdisjoint(first_batch)

        # Once the topology is back, the next run publishes exactly the refused ones.
        await declare_topology(channel, broker.topology())
    rerun = await parts.producer().run()
    assert (rerun.published, rerun.duplicate, rerun.failed) == (len(listing) - 2, 2, 0)
    assert sorted(first_batch + await queued_ids(broker)) == sorted(p["id"] for p in listing)


class RedisDiesAfterFirstBatch(RedisDedupeStore):
    """The real store, until Redis goes away after the first batch's claims."""

    def __init__(self, real: RedisDedupeStore) -> None:
        self.__dict__.update(real.__dict__)
        self.claims = 0

    async def claim_many(self, product_ids) -> list[ClaimOutcome]:
        self.claims += 1
        if self.claims > 1:
            raise DedupeUnavailable("Redis claim failed: Connection reset by peer")
        return await super().claim_many(product_ids)


async def test_redis_failing_part_way_loses_nothing_and_duplicates_nothing(
    parts: Parts, broker: BrokerFixture, replay: Replay
) -> None:
    listing = replay.listing()
    batch = 4
    summary = await parts.producer(dedupe=RedisDiesAfterFirstBatch(parts.dedupe)).run()
    assert (summary.published, summary.failed) == (batch, len(listing) - batch)
    first_batch = await queued_ids(broker)
    assert {f["product_id"] for f in summary.failures}.isdisjoint(first_batch)

    rerun = await parts.producer().run()
    assert (rerun.published, rerun.duplicate) == (len(listing) - batch, batch)
    assert sorted(first_batch + await queued_ids(broker)) == sorted(p["id"] for p in listing)


async def test_upstream_failing_persistently_fails_the_run_and_marks_nothing(
    parts: Parts, broker: BrokerFixture, replay: Replay, unique: str
) -> None:
    replay.fault(r"^/products$", status=502)
    with pytest.raises(UpstreamUnavailable, match="502"):
        await parts.producer().run()
    assert [key async for key in parts.redis.scan_iter(f"rnr:test:{unique}:*")] == []
    assert await queued_ids(broker) == []


async def test_upstream_failing_briefly_is_retried(
    parts: Parts, broker: BrokerFixture, replay: Replay
) -> None:
    replay.fault(r"^/products$", status=503, times=2)
    summary = await parts.producer().run()
    assert summary.published == len(replay.listing())


async def test_published_product_survives_a_failed_dedupe_commit_as_a_lapsing_claim(
    parts: Parts, broker: BrokerFixture, replay: Replay
) -> None:
    class CommitFails(RedisDedupeStore):
        def __init__(self, real: RedisDedupeStore) -> None:
            self.__dict__.update(real.__dict__)

        async def commit_many(self, product_ids) -> None:
            raise DedupeUnavailable("Redis commit failed")

    summary = await parts.producer(dedupe=CommitFails(parts.dedupe)).run()
    # Published and confirmed, so counted as published; the claim stays pending until
    # it lapses, and meanwhile another run leaves the product alone.
    assert summary.published == len(replay.listing())
    rerun = await parts.producer().run()
    assert rerun.in_progress == len(replay.listing())
    assert rerun.published == 0
