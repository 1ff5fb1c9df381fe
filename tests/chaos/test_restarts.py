"""The broker and Redis restarted under a running producer and worker.

New products keep arriving at the replay server; ``producer once`` runs back to back
(publishing them, with its Redis dedupe) while a worker consumes. Mid-run, the private
RabbitMQ node's app is stopped and started again (``rabbitmqctl stop_app``/
``start_app``), or the private Redis is shut down without saving and started empty.

In = every product the replay server lists (each must be published by some run); the
audit is the usual one. Runs that fail during the outage are expected (they leave their
products unseen, and a later run publishes them). A Redis that lost its keys makes the
next run publish every listed product again: duplicates, allowed and counted
(``republished``), absorbed by the worker (``reprocessed``, ``record_rewrites``, or its
``duplicate`` outcome once it recognises a product it has already written).
"""

from __future__ import annotations

import time

import pytest

from devstack.brokers import RabbitMQNode, RedisServer
from tests.support.chaos_audit import metric
from tests.support.chaos_fleet import ProducerLoop
from tests.support.chaos_scenario import PRODUCT_TEXT_PATH, Scenario
from tests.support.servers import wait_until

ACKED = 'rnr_worker_messages_total{outcome="acked"}'
BATCH = 6
TOTAL = 36


def _run_until_outage(scenario: Scenario) -> tuple[ProducerLoop, object]:
    """Worker ready, producer loop going, and both seen working."""
    scenario.replay.fault(PRODUCT_TEXT_PATH, delay_seconds=0.3)
    worker = scenario.fleet.worker()
    worker.wait_ready(timeout=60)
    loop = ProducerLoop(scenario.fleet, scenario.add_products, batch=BATCH, total=TOTAL).start()
    wait_until(
        lambda: loop.good_runs() >= 2 and (metric(worker, ACKED) or 0) >= 3,
        timeout=60,
        what="two good producer runs and three acked products",
    )
    return loop, worker


def _finish(scenario: Scenario, loop: ProducerLoop, worker, **figures: object) -> None:
    loop.join(timeout=120)
    published = scenario.listed()
    scenario.settle(published, [worker], timeout=90)
    audit = scenario.audit(published)
    runs = loop.runs
    scenario.record(
        audit,
        producer_runs=len(runs),
        producer_runs_failed=sum(not run.ok for run in runs),
        **figures,
    )
    audit.check()
    missing = published - set(audit.publishes)
    assert not missing, f"{len(missing)} listed products never published by a producer run"


@pytest.mark.timeout(240)
def test_broker_stop_app_start_app_during_producer_and_worker_run(
    scenario: Scenario, private_rabbitmq: RabbitMQNode
) -> None:
    loop, worker = _run_until_outage(scenario)
    down_seconds = 4.0
    down = time.monotonic()
    private_rabbitmq.stop_app()
    try:
        wait_until(
            lambda: worker.status("/readyz") == 503,
            timeout=down_seconds,
            what="the worker's /readyz 503 while the broker is down",
        )
        time.sleep(max(0.0, down_seconds - (time.monotonic() - down)))
    finally:
        private_rabbitmq.start_app()
    outage = round(time.monotonic() - down, 1)
    wait_until(lambda: worker.status("/readyz") == 200, timeout=60, what="readyz 200 again")
    _finish(
        scenario,
        loop,
        worker,
        broker_restarts=1,
        broker_down_seconds=outage,
        readyz_back_after=round(time.monotonic() - down, 1),
    )


@pytest.mark.timeout(240)
def test_redis_restart_during_producer_and_worker_run(
    scenario: Scenario, private_redis: RedisServer
) -> None:
    loop, worker = _run_until_outage(scenario)
    down = time.monotonic()
    private_redis.restart(down_seconds=2.0)  # SHUTDOWN NOSAVE: every dedupe key is gone
    _finish(
        scenario,
        loop,
        worker,
        redis_restarts=1,
        redis_down_seconds=round(time.monotonic() - down, 1),
    )
