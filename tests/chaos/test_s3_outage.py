"""S3 unreachable for a while, under load: nothing is acked before its output is durable.

The worker reaches S3 (moto) through a proxy. While it works through a backlog, S3
goes away twice: first refusing connections, then black-holing them (accepted, never
answered: only the end of the outage, which cuts them, ends those requests). Throughout
the run the worker's ``acked`` counter never exceeds the number of product records in
S3 (read directly from moto, not through the proxy); during each outage it does not
rise at all, and no record appears. Once S3 is back, every product gets its record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.chaos_audit import metric
from tests.support.chaos_proxy import FlakyTcpProxy
from tests.support.chaos_scenario import PRODUCT_TEXT_PATH, Scenario
from tests.support.servers import MotoProcess, wait_until

ACKED = 'rnr_worker_messages_total{outcome="acked"}'
IN_FLIGHT = "rnr_worker_in_flight_messages"
PRODUCTS = 24
OUTAGE_SECONDS = 6.0
# A put that completed just before the outage began may still be acked after it.
SETTLE_SECONDS = 0.5
OUTAGES = (("refuse", 4), ("blackhole", 12))  # mode, records present when it starts


@pytest.fixture
def s3_proxy(moto_server: MotoProcess) -> Iterator[FlakyTcpProxy]:
    proxy = FlakyTcpProxy("127.0.0.1", moto_server.port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def s3_endpoint(s3_proxy: FlakyTcpProxy) -> str:
    return s3_proxy.endpoint


@pytest.mark.timeout(180)
def test_s3_unavailable_for_a_while(scenario: Scenario, s3_proxy: FlakyTcpProxy) -> None:
    scenario.replay.fault(PRODUCT_TEXT_PATH, delay_seconds=0.8)
    products = scenario.add_products(PRODUCTS)
    scenario.broker.publish(products)
    worker = scenario.fleet.worker()
    worker.wait_ready(timeout=60)  # the hydrofabric came through the proxy

    samples: list[tuple[float, int]] = []

    def sample() -> tuple[float, int]:
        acked = metric(worker, ACKED)  # first: an ack seen implies a record seen after
        point = (acked if acked is not None else -1.0, len(scenario.recorded()))
        samples.append(point)
        return point

    phases = []
    for mode, start_at in OUTAGES:
        wait_until(lambda n=start_at: sample()[1] >= n, timeout=60, what=f"{start_at} records")
        with s3_proxy.outage(mode):
            began = time.monotonic()
            time.sleep(SETTLE_SECONDS)
            acked_at_start, records_at_start = sample()
            during, in_flight = [], []
            while time.monotonic() - began < OUTAGE_SECONDS:
                during.append(sample())
                in_flight.append(metric(worker, IN_FLIGHT) or 0)
                time.sleep(0.25)
        phases.append(
            {
                "mode": mode,
                "acked_rise": max(a for a, _ in during) - acked_at_start,
                "records_rise": max(r for _, r in during) - records_at_start,
                "max_in_flight": max(in_flight),
            }
        )
    scenario.settle(set(products), [worker], timeout=120)
    sample()
    retried = metric(worker, 'rnr_worker_messages_total{outcome="retried"}')
    audit = scenario.audit(set(products))
    scenario.record(
        audit,
        outages=[f"{o['mode']}:{o['seconds']}s" for o in s3_proxy.outages],
        acked_rise_during_outages=[p["acked_rise"] for p in phases],
        in_flight_during_outages=[p["max_in_flight"] for p in phases],
        retried=retried,
        blackholed_connections=s3_proxy.stats["blackholed"],
    )
    problems = []
    early = [(acked, records) for acked, records in samples if acked > records]
    if early:
        problems.append(f"acked before the record was in S3 (acked, records): {early[:5]}")
    for phase in phases:
        if phase["acked_rise"] > 0:
            problems.append(f"{phase['acked_rise']} messages acked during the {phase['mode']}")
        if phase["records_rise"] > 0:
            problems.append(f"records appeared during the {phase['mode']}: the proxy leaks")
        if phase["max_in_flight"] == 0:
            problems.append(f"no message was in flight during the {phase['mode']}")
    if audit.dead_lettered or len(audit.records) != PRODUCTS:
        problems.append(
            f"after S3 came back: {len(audit.records)} of {PRODUCTS} recorded, "
            f"{len(audit.dead_lettered)} dead-lettered"
        )
    assert not problems, "\n".join(problems)
    audit.check()
