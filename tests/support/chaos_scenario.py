"""One chaos scenario's world: its own queues on the private node, its own bucket in moto
(with the sample hydrofabric), its own dedupe keys, its processes, and its audit."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rnr.messaging.topology import Topology
from tests.conftest import Replay
from tests.support.chaos_audit import Audit, ChaosBroker, ChaosReport, record_versions, wait_settled
from tests.support.chaos_fleet import Fleet
from tests.support.processes import ServiceProcess

OUTPUT_PREFIX = "replace_and_route"
# Delay tiers short enough that a retried message is back within a second.
RETRY_DELAYS = (0.2, 0.4)
# The product text path of the replay server (not the listing, /products?type=HML).
PRODUCT_TEXT_PATH = r"^/products/[0-9a-f-]+$"


def chaos_seed() -> int:
    """``RNR_CHAOS_SEED`` replays a run's random choices; else a new seed, reported."""
    value = os.environ.get("RNR_CHAOS_SEED")
    return int(value) if value else random.SystemRandom().randrange(1, 10**6)


def upload_sample_hydrofabric(s3: Any, bucket: str) -> str:
    """The project's small hydrofabric in ``bucket`` (as the bootstrap puts it); returns
    the HYDROFABRIC_LOCATION naming it."""
    from devstack.local.bootstrap import (
        SAMPLE_HYDROFABRIC,
        SAMPLE_HYDROFABRIC_LOCATION,
        SAMPLE_HYDROFABRIC_PREFIX,
    )

    for path in sorted(p for p in SAMPLE_HYDROFABRIC.rglob("*") if p.is_file()):
        key = f"{SAMPLE_HYDROFABRIC_PREFIX}/{path.relative_to(SAMPLE_HYDROFABRIC).as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return SAMPLE_HYDROFABRIC_LOCATION


@dataclass
class Scenario:
    name: str
    replay: Replay
    broker: ChaosBroker
    fleet: Fleet
    s3: Any
    bucket: str
    env: dict[str, str]
    report: ChaosReport
    seed: int
    prefix: str = OUTPUT_PREFIX
    started: float = field(default_factory=time.monotonic)

    @property
    def rng(self) -> random.Random:
        """A new generator from the scenario's seed (``RNR_CHAOS_SEED`` replays it)."""
        return random.Random(self.seed)

    def records(self) -> dict[str, int]:
        return record_versions(self.s3, self.bucket, self.prefix)

    def recorded(self) -> set[str]:
        return set(self.records())

    def add_products(self, count: int) -> list[str]:
        return [product["id"] for product in self.replay.add_products(count)]

    def clear_faults(self) -> None:
        """Forget the replay server's faults but keep its products (``reset`` drops both)."""
        httpx.delete(f"{self.replay.url}/_admin/faults").raise_for_status()

    def faults(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.replay.url}/_admin/faults").json()["faults"]

    def listed(self) -> set[str]:
        return {product["id"] for product in self.replay.listing()}

    def settle(
        self,
        published: set[str] | Callable[[], set[str]],
        workers: list[ServiceProcess],
        timeout: float = 60,
    ) -> None:
        source = published if callable(published) else (lambda: published)
        wait_settled(self.broker, self.recorded, source, workers, timeout=timeout)

    def audit(self, published: set[str]) -> Audit:
        """Stop every worker (they are idle once settled: SIGKILL returns anything a
        worker still held to the queue, which the leftovers check would then show),
        then count what came out."""
        self.fleet.stop_all()
        return Audit(
            published=published,
            records=self.records(),
            leftovers=self.broker.leftovers(),
            dead_letters=self.broker.take_all(self.broker.dead_letter_queue, ack=True),
            processed=self.fleet.processed(),
            duplicate_acks=self.fleet.duplicate_acks(),
            publishes=self.fleet.publishes(),
        )

    def record(self, audit: Audit | None = None, **figures: Any) -> None:
        self.report.add(
            self.name,
            **(audit.figures() if audit else {}),
            **figures,
            seconds=round(time.monotonic() - self.started, 1),
        )


def scenario_topology(unique: str) -> Topology:
    return Topology(
        exchange=f"chaos-{unique}",
        queue=f"chaos-{unique}.products",
        queue_type="quorum",
        retry_delays_seconds=RETRY_DELAYS,
    )


def service_env(
    *,
    topology: Topology,
    rabbitmq_url: str,
    redis_url: str,
    replay: Replay,
    s3_endpoint: str,
    bucket: str,
    hydrofabric_location: str,
    cache_dir: str,
    unique: str,
) -> dict[str, str]:
    """The environment of every service in a scenario; tests override single values."""
    return {
        "RABBITMQ_URL": rabbitmq_url,
        "RABBITMQ_EXCHANGE": topology.exchange,
        "RABBITMQ_QUEUE": topology.queue,
        "RABBITMQ_QUEUE_TYPE": "quorum",
        "RABBITMQ_PUBLISH_TIMEOUT_SECONDS": "5",
        "RETRY_DELAYS_SECONDS": ",".join(str(delay) for delay in RETRY_DELAYS),
        "MAX_ATTEMPTS": "5",
        "REDIS_URL": redis_url,
        "DEDUPE_KEY_PREFIX": f"rnr:chaos:{unique}:",
        # A producer run killed between claim and publish must not hide a product for
        # the default five minutes: the scenario would end first.
        "DEDUPE_CLAIM_SECONDS": "5",
        "NWS_API_URL": replay.nws_api_url,
        "NWPS_API_URL": replay.nwps_api_url,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "OUTPUT_BUCKET": bucket,
        "OUTPUT_PREFIX": OUTPUT_PREFIX,
        "INPUT_BUCKET": bucket,
        "HYDROFABRIC_LOCATION": hydrofabric_location,
        "HYDROFABRIC_CACHE_DIR": cache_dir,
        "HTTP_TIMEOUT_SECONDS": "5",
        "HTTP_RETRIES": "1",
        "HTTP_BACKOFF_SECONDS": "0.05",
        "WORKER_PREFETCH": "4",
        "LOG_LEVEL": "INFO",
    }
