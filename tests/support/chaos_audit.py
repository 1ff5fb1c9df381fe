"""Accounting for the chaos suite: what went in, what came out, what was lost.

Every scenario ends with the same audit, once no worker holds a message any more:

* in: the product ids published (by the test, or listed by the replay server and
  published by the producer);
* out: the product records in S3 (``{OUTPUT_PREFIX}/products/YYYY/MM/DD/{id}.json``,
  versions counted: the bucket is versioned), and the messages in the dead-letter queue;
* lost = in - (records | dead letters), which must be empty, and nothing may be left in
  the work queue or a retry tier;
* duplicates are allowed (at-least-once delivery), never silent: a product processed
  twice shows as a second ``product processed`` log line (``reprocessed``), a second
  record version (``record_rewrites``), a second publish by the producer
  (``republished``), or a redelivery the worker recognised and acked without redoing
  it (its ``duplicate`` outcome and log line: ``duplicate_acks``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import Topology, declare_topology
from tests.support.messages import product_message
from tests.support.processes import ServiceProcess

DEAD_LETTER_REASON_HEADER = "x-rnr-dead-letter-reason"


@dataclass(frozen=True)
class Taken:
    """A message read off a queue, with what the broker says about its past."""

    message_id: str
    redelivered: bool
    headers: dict[str, Any]

    @property
    def dead_letter_reason(self) -> str:
        """The worker's reason header, else the broker's own (delivery limit, TTL)."""
        reason = self.headers.get(DEAD_LETTER_REASON_HEADER)
        if reason is None:
            reason = self.headers.get("x-first-death-reason")
        if isinstance(reason, bytes):
            reason = reason.decode()
        return str(reason) if reason is not None else ""


class ChaosBroker:
    """Publishing to and inspecting one test's topology on the private node.

    Each call opens its own short connection, so it works across broker restarts.
    """

    def __init__(self, url: str, topology: Topology) -> None:
        self.url = url
        self.topology = topology

    @property
    def queue(self) -> str:
        return self.topology.queue

    @property
    def dead_letter_queue(self) -> str:
        return self.topology.dead_letter_queue

    def work_queues(self) -> list[str]:
        """The work queue and every retry tier: empty once everything is settled."""
        return [self.topology.queue, *self.topology.retry_queues()]

    def declare(self) -> None:
        async def declare() -> None:
            connection = await aio_pika.connect(self.url)
            async with connection:
                await declare_topology(await connection.channel(), self.topology)

        asyncio.run(declare())

    def publish(self, product_ids: Iterable[str]) -> None:
        """Publish each product the way the producer does: persistent, confirmed."""

        async def publish() -> None:
            connection = await aio_pika.connect(self.url)
            async with connection:
                channel = await Publisher.open_channel(connection)
                declared = await declare_topology(channel, self.topology)
                publisher = Publisher(declared.exchange, timeout_seconds=10)
                await asyncio.gather(
                    *(
                        publisher.publish(
                            product_message(product_id).to_body(),
                            routing_key=self.topology.routing_key,
                            message_id=product_id,
                            correlation_id=product_id,
                        )
                        for product_id in product_ids
                    )
                )

        asyncio.run(publish())

    def _inspect(self, queues: list[str]) -> dict[str, tuple[int, int]]:
        async def inspect() -> dict[str, tuple[int, int]]:
            connection = await aio_pika.connect(self.url)
            counts = {}
            async with connection:
                for name in queues:
                    channel = await connection.channel()
                    declared = await channel.declare_queue(name, passive=True)
                    result = declared.declaration_result
                    counts[name] = (result.message_count or 0, result.consumer_count or 0)
            return counts

        return asyncio.run(inspect())

    def ready(self, queue: str | None = None) -> int:
        """Messages ready (not held by a consumer) in ``queue`` (the work queue)."""
        name = queue or self.queue
        return self._inspect([name])[name][0]

    def consumers(self, queue: str | None = None) -> int:
        name = queue or self.queue
        return self._inspect([name])[name][1]

    def leftovers(self) -> dict[str, int]:
        """Ready messages in the work queue and retry tiers, by queue (non-zero only)."""
        counts = self._inspect(self.work_queues())
        return {name: ready for name, (ready, _) in counts.items() if ready}

    def take_all(self, queue: str, *, ack: bool) -> list[Taken]:
        """Every message now ready in ``queue``: acked (removed) with ``ack``, else all
        returned to the queue when the channel closes (which marks them redelivered)."""

        async def take() -> list[Taken]:
            connection = await aio_pika.connect(self.url)
            taken: list[Taken] = []
            async with connection:
                channel = await connection.channel()
                declared = await channel.declare_queue(queue, passive=True)
                while (message := await declared.get(fail=False, no_ack=False)) is not None:
                    taken.append(
                        Taken(
                            message_id=message.message_id or "",
                            redelivered=bool(message.redelivered),
                            headers=dict(message.headers or {}),
                        )
                    )
                    if ack:
                        await message.ack()
                await channel.close()
            return taken

        return asyncio.run(take())

    def delete_topology(self) -> None:
        from rnr.messaging.topology import delete_topology

        async def delete() -> None:
            connection = await aio_pika.connect(self.url)
            async with connection:
                await delete_topology(await connection.channel(), self.topology)

        asyncio.run(delete())


def record_versions(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Product id -> versions of its record in S3 (more than one: written again)."""
    versions: Counter[str] = Counter()
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix=f"{prefix}/products/"
    )
    for page in pages:
        for version in page.get("Versions", []):
            versions[Path(version["Key"]).name.removesuffix(".json")] += 1
    return dict(versions)


def log_lines(path: Path | None) -> list[dict[str, Any]]:
    """The JSON lines of a service log (anything else, e.g. a traceback, is skipped)."""
    if path is None or not path.exists():
        return []
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def count_messages(
    paths: Iterable[Path | None], message: str, key: str, *, exact: bool = True
) -> Counter[str]:
    """How often log lines saying ``message`` (or, not ``exact``, containing it) name
    each value of ``key``."""
    counts: Counter[str] = Counter()
    for path in paths:
        for line in log_lines(path):
            text = str(line.get("message", ""))
            said = text == message if exact else message in text.lower()
            if said and line.get(key):
                counts[str(line[key])] += 1
    return counts


def metric(service: ServiceProcess, name: str) -> float | None:
    """A metric's value from the service's /metrics, or None when it does not answer."""
    try:
        return service.metric(name)
    except httpx.HTTPError:
        return None


@dataclass
class Audit:
    published: set[str]
    records: dict[str, int]
    dead_letters: list[Taken]
    leftovers: dict[str, int]
    processed: Counter[str] = field(default_factory=Counter)
    duplicate_acks: Counter[str] = field(default_factory=Counter)
    publishes: Counter[str] = field(default_factory=Counter)

    @property
    def dead_lettered(self) -> set[str]:
        return {taken.message_id for taken in self.dead_letters}

    @property
    def lost(self) -> set[str]:
        return self.published - set(self.records) - self.dead_lettered

    @property
    def unknown(self) -> set[str]:
        """Outputs of products nobody published: a bookkeeping error of the test."""
        return (set(self.records) | self.dead_lettered) - self.published

    @property
    def reprocessed(self) -> int:
        """Extra ``product processed`` lines: products processed more than once."""
        return sum(count - 1 for count in self.processed.values() if count > 1)

    @property
    def record_rewrites(self) -> int:
        return sum(count - 1 for count in self.records.values() if count > 1)

    @property
    def republished(self) -> int:
        return sum(count - 1 for count in self.publishes.values() if count > 1)

    def check(self) -> None:
        """in = out + DLQ: nothing lost, nothing left behind, nothing unaccounted for."""
        assert not self.leftovers, (
            f"messages left in the work queue or retry tiers: {self.leftovers}"
        )
        assert not self.lost, f"{len(self.lost)} products lost: {sorted(self.lost)[:10]}"
        assert not self.unknown, f"outputs of products never published: {sorted(self.unknown)}"

    def figures(self) -> dict[str, Any]:
        return {
            "published": len(self.published),
            "recorded": len(set(self.records) & self.published),
            "dead_lettered": len(self.dead_lettered),
            "lost": len(self.lost),
            "left_in_queues": sum(self.leftovers.values()),
            "processed_lines": sum(self.processed.values()),
            "reprocessed": self.reprocessed,
            "duplicate_acks": sum(self.duplicate_acks.values()),
            "record_rewrites": self.record_rewrites,
            "republished": self.republished,
        }


def wait_settled(
    broker: ChaosBroker,
    recorded: Callable[[], set[str]],
    published: Callable[[], set[str]],
    workers: list[ServiceProcess],
    *,
    timeout: float,
) -> None:
    """Until every published product is recorded or dead-lettered, the work queue and
    its retry tiers are empty and no live worker holds a message (twice in a row)."""
    deadline = time.monotonic() + timeout
    calm = 0
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        missing = published() - recorded()
        if missing:
            # Peek into the dead-letter queue only when the records do not cover all.
            dead = {t.message_id for t in broker.take_all(broker.dead_letter_queue, ack=False)}
            missing -= dead
        leftovers = broker.leftovers()
        in_flight = [metric(w, "rnr_worker_in_flight_messages") for w in workers]
        last = {"missing": len(missing), "leftovers": leftovers, "in_flight": in_flight}
        if not missing and not leftovers and all(n == 0 for n in in_flight):
            calm += 1
            if calm >= 2:
                return
        else:
            calm = 0
        time.sleep(0.5)
    raise TimeoutError(f"not settled after {timeout}s: {last}")


class ChaosReport:
    """One summary per scenario: printed at the end of the run, and written as JSON to
    the path in ``RNR_CHAOS_REPORT`` when it is set."""

    def __init__(self) -> None:
        self.scenarios: list[dict[str, Any]] = []

    def add(self, scenario: str, **figures: Any) -> None:
        self.scenarios.append({"scenario": scenario, **figures})

    def lines(self) -> list[str]:
        return [
            f"{entry['scenario']}: "
            + " ".join(f"{k}={v}" for k, v in entry.items() if k != "scenario")
            for entry in self.scenarios
        ]

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({"scenarios": self.scenarios}, indent=2, default=str) + "\n")
