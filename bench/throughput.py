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
import contextlib
import datetime as dt
import gc
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import redis.asyncio as redis
from prometheus_client import CollectorRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rnr.core.logging import setup_logging  # noqa: E402
from rnr.messaging.consumer import Consumer, ConsumerMetrics, Delivery, Handled  # noqa: E402
from rnr.messaging.models import ProductMessage  # noqa: E402
from rnr.messaging.publisher import Publisher  # noqa: E402
from rnr.messaging.topology import Topology, declare_topology, delete_topology  # noqa: E402
from rnr.storage.dedupe import RedisDedupeStore  # noqa: E402
from rnr.upstream.nws import ProductListing, ProductSummary  # noqa: E402
from services.producer.producer import Producer, ProducerMetrics  # noqa: E402

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
# Each handler module, and the third-party packages it cannot run without: importing
# those alone is the floor no restructuring of the project's own code can go below.
HANDLERS = {
    "services.producer.handler": "pydantic_settings, prometheus_client, aio_pika, "
    "redis.asyncio, aiohttp",
    "services.autoscaler.handler": "pydantic_settings, prometheus_client, aio_pika, "
    "redis.asyncio, aiohttp",
    "services.postproc.handler": "pydantic_settings, prometheus_client, netCDF4, "
    "pyarrow.parquet, pyarrow.compute, shapely",
}


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


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the harness's own data (20,000 prepared products) out of garbage collection.

    A real producer run holds a listing of hundreds of products, not tens of
    thousands; left in the collected heap, the prepared data makes every collection
    slower and so penalises whichever path allocates more per message.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def fresh_topology() -> Topology:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    return Topology(name, f"{name}.products", "quorum", (5.0,))


async def publish_window(items: list, publish_one, concurrency: int) -> float:
    """Publish every item with at most ``concurrency`` in flight; return the seconds.

    Tasks are created as slots free up (as the producer's batches do), not all at
    once: thousands of live tasks would make every garbage collection pass slower and
    penalise whichever path allocates more, which measures the harness, not the path.
    """
    window = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    async def one(item) -> None:
        try:
            await publish_one(item)
        finally:
            window.release()

    started = time.perf_counter()
    for item in items:
        await window.acquire()
        task = asyncio.create_task(one(item))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    return time.perf_counter() - started


async def raw_publish(
    connection, topology: Topology, bodies: list[tuple[str, bytes]], concurrency: int
) -> float:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    declared = await declare_topology(channel, topology)

    # The same AMQP message the producer sends (body, properties, mandatory flag), so
    # the ratio measures the project's overhead, not AMQP work any publisher must do.
    async def one(item: tuple[str, bytes]) -> None:
        product_id, body = item
        await declared.exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=product_id,
                correlation_id=product_id,
            ),
            routing_key=topology.routing_key,
            mandatory=True,
        )

    return await publish_window(bodies, one, concurrency)


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
    if whole_run:
        started = time.perf_counter()
        summary = await producer.run()
        elapsed = time.perf_counter() - started
        assert summary.published == len(listing), summary.counts()
    else:
        elapsed = await publish_window(listing, producer._publish, concurrency)
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

    async def no_op(delivery: Delivery) -> Handled:
        nonlocal seen
        seen += 1
        if seen == count:
            done.set()
        return Handled.PROCESSED

    registry = CollectorRegistry()
    consumer = Consumer(
        connection,
        topology,
        no_op,
        prefetch=prefetch,
        max_attempts=5,
        publish_timeout_seconds=30,
        metrics=ConsumerMetrics(registry),
    )
    started = time.perf_counter()
    await consumer.start()
    await done.wait()
    elapsed = time.perf_counter() - started
    await consumer.stop(drain_seconds=10)
    # A figure is only the worker path's if every message took it to the end: a no-op
    # the consumer rejects would measure dead-lettering instead (and run faster or slower).
    acked = registry.get_sample_value("rnr_worker_messages_total", {"outcome": "acked"})
    if acked != count:
        raise SystemExit(f"worker consume: {acked} of {count} messages acked; the bench is broken")
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
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="the services' LOG_LEVEL; INFO (their default) logs one line per product",
    )
    args = parser.parse_args()
    n = args.messages
    logging.getLogger().setLevel(args.log_level)

    listing = products(n)
    bodies = [(p.id, ProductMessage.from_summary(p).to_body()) for p in listing]
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
                connection, topology, listing, args.concurrency, whole_run=False
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
                connection, topology, listing, args.concurrency, whole_run=True
            )
        )
        await delete_topology(admin, topology)

    # Each pair runs on an otherwise empty broker; the order alternates between
    # rounds so neither side always gets the warmer (or more fragmented) broker.
    try:
        for round_index in range(args.rounds):
            pairs = (raw_pair, project_pair) if round_index % 2 == 0 else (project_pair, raw_pair)
            for phase in (*pairs, producer_run):
                with frozen_heap():
                    await phase()
    finally:
        await connection.close()
    results = {name: statistics.mean(values) for name, values in rates.items()}

    print(
        f"messages={n} rounds={args.rounds} concurrency={args.concurrency} "
        f"prefetch={args.prefetch} log_level={args.log_level} "
        f"broker={RABBITMQ_URL.split('@')[-1]} python={sys.version.split()[0]}"
    )
    print(f"{'path':<22}{'msg/s':>10}")
    for name, rate in results.items():
        print(f"{name:<22}{rate:>10.0f}")
    # Each round's ratio pairs two runs minutes apart at most: their spread says how much
    # of a difference this (shared, noisy) machine can show by itself.
    for label, project, raw in (
        ("producer/raw publish", "producer_publish", "raw_publish"),
        ("worker/raw consume", "worker_consume", "raw_consume"),
    ):
        per_round = [p / r for p, r in zip(rates[project], rates[raw], strict=True)]
        print(
            f"{label:<22}{results[project] / results[raw]:>10.2f}   (target >= 0.90; "
            f"rounds {min(per_round):.2f}-{max(per_round):.2f})"
        )
    print(
        f"producer run/raw      {results['producer_run'] / results['raw_publish']:>10.2f}"
        "   (whole run incl. Redis dedupe; no target)"
    )
    print("handler import, median of 5 fresh interpreters (target < 300 ms):")
    print(f"  {'module':<32}{'handler':>9}{'packages alone':>16}")
    for module, packages in HANDLERS.items():
        handler_ms = import_seconds(module) * 1000
        floor_ms = import_seconds(packages) * 1000
        print(f"  {module:<32}{handler_ms:>6.0f} ms{floor_ms:>13.0f} ms")


if __name__ == "__main__":
    # The services log one JSON line per product at INFO: keep that cost in the figures,
    # written where a service's stdout goes, minus the terminal.
    with open(os.devnull, "w") as devnull:
        setup_logging("bench", "INFO", stream=devnull)
        asyncio.run(main())
