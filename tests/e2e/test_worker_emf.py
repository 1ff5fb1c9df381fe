"""The worker as its own process writes its metrics as EMF lines on stdout (what reaches
CloudWatch in AWS): periodically, and once more at SIGTERM after the drain, with deltas
that add up to what /metrics counts."""

# ruff: noqa: F811 -- the fixtures of test_worker_process, imported by name, then requested
from __future__ import annotations

import json
import signal
from typing import Any

from tests.conftest import Replay
from tests.e2e.test_worker_process import (  # noqa: F401 (fixtures)
    outputs,
    publish_product,
    s3,
    service_env,
    services,
    start_worker,
)
from tests.support.broker import BrokerFixture
from tests.support.processes import ServiceProcess
from tests.support.servers import wait_until
from tests.unit.test_emf_export import assert_emf


def log_objects(worker: ServiceProcess) -> list[dict[str, Any]]:
    objects = []
    for line in worker.log().splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            objects.append(parsed)
    return objects


def emf_records(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in objects if "_aws" in item]


def acked(records: list[dict[str, Any]]) -> float:
    return sum(
        record["rnr_worker_messages_total"]
        for record in records
        if record.get("outcome") == "acked" and "rnr_worker_messages_total" in record
    )


def test_the_worker_writes_its_registry_as_emf_and_flushes_once_more_at_sigterm(
    service_env: dict[str, str],
    services: list[ServiceProcess],
    tmp_path,
    replay: Replay,
    s3,
    bucket: str,
    broker: BrokerFixture,
) -> None:
    [product] = replay.add_products(1)
    worker = start_worker(services, service_env, tmp_path, WORKER_EMF_INTERVAL_SECONDS="1")
    publish_product(broker, product["id"])
    wait_until(lambda: len(outputs(s3, bucket)) == 1, timeout=30, what="the product's record")
    wait_until(
        lambda: acked(emf_records(log_objects(worker))) == 1, timeout=10, what="acked in EMF"
    )
    assert worker.metric('rnr_worker_messages_total{outcome="acked"}') == 1

    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0

    objects = log_objects(worker)
    records = emf_records(objects)
    for record in records:
        assert_emf(record)
        assert record["service"] == "worker"
    # Deltas: over all flushes the acked count is the one message, not one per flush.
    assert acked(records) == 1
    routed = [r for r in records if "rnr_worker_routing_seconds_count" in r]
    assert sum(r["rnr_worker_routing_seconds_count"] for r in routed) >= 1
    assert any("rnr_worker_routing_seconds" in r for r in routed)  # the values array
    # The last flush comes after the drain began, and reports the consumer stopped.
    messages = [item.get("message") for item in objects]
    drain = messages.index("stop requested: draining")
    after = emf_records(objects[drain:])
    states = [r["rnr_worker_consumer_active"] for r in after if "rnr_worker_consumer_active" in r]
    assert states, "no EMF flush after SIGTERM"
    assert states[-1] == 0
