"""Messaging throughput: the project's paths against raw aio-pika on the same broker.

In one run, on fresh quorum queues of the real broker, it measures:

* raw publish: aio-pika with publisher confirms, ``concurrency`` publishes in flight;
* producer publish: the producer's publishing path per product (``Producer._publish``:
  ProductMessage, ``Publisher`` with confirm, mandatory routing and timeout, the JSON
  log line with the correlation id), same concurrency;
* producer run: a whole ``Producer.run`` over an in-memory listing, adding the Redis
  claims and commits (reported for information: dedupe is the producer's own work, as
  processing is the worker's);
* raw consume: aio-pika consume with manual ack, ``prefetch`` unacked;
* worker consume: the worker runtime (``Consumer``: decode, validate, settle, metrics,
  logging) with a no-op processing step, same prefetch;

and prints messages/s for each and the ratios, then the import time of each Lambda
handler module (a cold-start proxy). Usage:

    python bench/throughput.py [--messages 20000] [--concurrency 32] [--prefetch 32]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import redis.asyncio as redis
from prometheus_client import CollectorRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rnr.core.logging import setup_logging  # noqa: E402
from rnr.messaging.consumer import Consumer, ConsumerMetrics  # noqa: E402
from rnr.messaging.publisher import Publisher  # noqa: E402
from rnr.messaging.topology import Topology, declare_topology, delete_topology  # noqa: E402
from rnr.storage.dedupe import RedisDedupeStore  # noqa: E402
from rnr.upstream.nws import ProductListing, ProductSummary  # noqa: E402
from services.producer.producer import Producer, ProducerMetrics  # noqa: E402

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
HANDLERS = ("services.producer.handler", "services.autoscaler.handler", "services.postproc.handler")


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def products(count: int) -> list[ProductSummary]:
    start = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
    return [
        ProductSummary.model_validate(
            {
                "@id": f"https://api.weather.gov/products/bench-{i}",
                "id": f"bench-{uuid.uuid4().hex}",
                "wmoCollectiveId": "SRUS54",
                "issuingOffice": "KFWR",
                "issuanceTime": (start + dt.timedelta(seconds=i)).isoformat(),
                "productCode": "HML",
                "productName": "Hydrologic Markup Language",
            }
        )
        for i in range(count)
    ]


class StaticListing:
    """Stands in for weather.gov: the benchmark measures publishing, not HTTP."""

    def __init__(self, listing: list[ProductSummary]) -> None:
        self._listing = ProductListing(products=listing, invalid=[])

    async def list_products(self, product_type: str = "HML") -> ProductListing:
        return self._listing


def fresh_topology() -> Topology:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    return Topology(name, f"{name}.products", "quorum", (5.0,))


async def raw_publish(connection, topology: Topology, bodies: list[bytes], concurrency: int):
    channel = await connection.channel(publisher_confirms=True)
    declared = await declare_topology(channel, topology)
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int, body: bytes) -> None:
        async with limit:
            await declared.exchange.publish(
                aio_pika.Message(
                    body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(i)
                ),
                routing_key=topology.routing_key,
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))
    return time.perf_counter() - started


async def producer_publish(
    connection, topology: Topology, listing, concurrency: int, *, whole_run: bool
) -> float:
    """The producer's publishing path (``Producer._publish``: message model, confirmed
    mandatory publish, JSON log line) with ``concurrency`` in flight; or, with
    ``whole_run``, a whole ``Producer.run`` including its Redis claims and commits."""
    channel = await Publisher.open_channel(connection)
    declared = await declare_topology(channel, topology)
    client = redis.from_url(REDIS_URL)
    prefix = f"rnr:bench:{uuid.uuid4().hex[:8]}:"
    producer = Producer(
        nws=StaticListing(listing),  # type: ignore[arg-type]
        dedupe=RedisDedupeStore(client, ttl_seconds=600, claim_seconds=60, prefix=prefix),
        publisher=Publisher(declared.exchange, timeout_seconds=30),
        routing_key=topology.routing_key,
        concurrency=concurrency,
        metrics=ProducerMetrics(CollectorRegistry()),
    )
    window = asyncio.Semaphore(concurrency)

    async def publish(product: ProductSummary) -> None:
        async with window:
            await producer._publish(product)

    started = time.perf_counter()
    if whole_run:
        summary = await producer.run()
        assert summary.published == len(listing), summary.counts()
    else:
        await asyncio.gather(*(publish(product) for product in listing))
    elapsed = time.perf_counter() - started
    keys = [key async for key in client.scan_iter(f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i : i + 1000])
    await client.aclose()
    return elapsed


async def raw_consume(connection, topology: Topology, count: int, prefetch: int) -> float:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.get_queue(topology.queue)
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        await message.ack()
        seen += 1
        if seen == count:
            done.set()

    started = time.perf_counter()
    tag = await queue.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - started
    await queue.cancel(tag)
    return elapsed


async def worker_consume(connection, topology: Topology, count: int, prefetch: int) -> float:
    done = asyncio.Event()
    seen = 0

    async def no_op(product) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            done.set()

    consumer = Consumer(
        connection,
        topology,
        no_op,
        prefetch=prefetch,
        max_attempts=5,
        publish_timeout_seconds=30,
        metrics=ConsumerMetrics(CollectorRegistry()),
    )
    started = time.perf_counter()
    await consumer.start()
    await done.wait()
    elapsed = time.perf_counter() - started
    await consumer.stop(drain_seconds=10)
    return elapsed


def import_seconds(module: str, repeats: int = 5) -> float:
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                check=True,
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(runs)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--prefetch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, averaged")
    args = parser.parse_args()
    n = args.messages

    # The services log one JSON line per product at INFO: keep that cost in the figures.
    setup_logging("bench", "INFO", stream=io.StringIO())

    bodies = [p.model_dump_json().encode() for p in products(n)]
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    admin = await connection.channel()
    rates: dict[str, list[float]] = {
        "raw_publish": [],
        "producer_publish": [],
        "producer_run": [],
        "raw_consume": [],
        "worker_consume": [],
    }

    async def raw_pair() -> None:
        topology = fresh_topology()
        progress(f"raw aio-pika publish x{n}")
        rates["raw_publish"].append(
            n / await raw_publish(connection, topology, bodies, args.concurrency)
        )
        progress(f"raw aio-pika consume x{n}")
        rates["raw_consume"].append(n / await raw_consume(connection, topology, n, args.prefetch))
        await delete_topology(admin, topology)

    async def project_pair() -> None:
        topology = fresh_topology()
        progress(f"producer publish path x{n}")
        rates["producer_publish"].append(
            n
            / await producer_publish(
                connection, topology, products(n), args.concurrency, whole_run=False
            )
        )
        progress(f"worker runtime consume x{n}")
        rates["worker_consume"].append(
            n / await worker_consume(connection, topology, n, args.prefetch)
        )
        await delete_topology(admin, topology)

    async def producer_run() -> None:
        topology = fresh_topology()
        progress(f"whole producer run (with Redis dedupe) x{n}")
        rates["producer_run"].append(
            n
            / await producer_publish(
                connection, topology, products(n), args.concurrency, whole_run=True
            )
        )
        await delete_topology(admin, topology)

    # Each pair runs on an otherwise empty broker; the order alternates between
    # rounds so neither side always gets the warmer (or more fragmented) broker.
    try:
        for round_index in range(args.rounds):
            pairs = (raw_pair, project_pair) if round_index % 2 == 0 else (project_pair, raw_pair)
            for pair in pairs:
                await pair()
            await producer_run()
    finally:
        await connection.close()
    results = {name: statistics.mean(values) for name, values in rates.items()}

    print(
        f"messages={n} rounds={args.rounds} concurrency={args.concurrency} "
        f"prefetch={args.prefetch} "
        f"broker={RABBITMQ_URL.split('@')[-1]} python={sys.version.split()[0]}"
    )
    print(f"{'path':<22}{'msg/s':>10}")
    for name, rate in results.items():
        print(f"{name:<22}{rate:>10.0f}")
    print(
        f"producer/raw publish  {results['producer_publish'] / results['raw_publish']:>10.2f}"
        "   (target >= 0.70)"
    )
    print(
        f"worker/raw consume    {results['worker_consume'] / results['raw_consume']:>10.2f}"
        "   (target >= 0.70)"
    )
    print(
        f"producer run/raw      {results['producer_run'] / results['raw_publish']:>10.2f}"
        "   (whole run incl. Redis dedupe; no target)"
    )
    print("handler import (median of 5, fresh interpreter):")
    for module in HANDLERS:
        print(f"  {module:<32}{import_seconds(module) * 1000:>8.0f} ms   (target < 400 ms)")


if __name__ == "__main__":
    asyncio.run(main())
