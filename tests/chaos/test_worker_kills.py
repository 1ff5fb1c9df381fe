"""Workers killed with SIGKILL again and again while they work: nothing is lost.

Two worker slots consume one backlog. Each round waits until a slot's worker is ready,
lets it work a random moment, kills it with SIGKILL (no cleanup: whatever it held goes
back to the queue because its connection dies) and starts a replacement. The other
slot keeps consuming meanwhile. After the kills, the two live workers drain the rest.

Every product text answer is slowed down, so a message takes about half a second and a
kill usually finds messages in flight; ``busy_kills`` counts those. A kill between a
record's write and its ack makes the product processed twice: allowed (the record is
overwritten), counted as ``reprocessed``.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.chaos_audit import metric
from tests.support.chaos_scenario import PRODUCT_TEXT_PATH, Scenario

KILLS = 20
FIRST_PRODUCTS = 40
MORE_PRODUCTS = 12
MAX_PRODUCTS = 240
# Topped up below this, so the queue never runs dry before the last kill.
LOW_BACKLOG = 16


@pytest.mark.timeout(200)
def test_repeated_sigkill_under_load(scenario: Scenario) -> None:
    rng = scenario.rng
    scenario.replay.fault(PRODUCT_TEXT_PATH, delay_seconds=0.4)
    published = scenario.add_products(FIRST_PRODUCTS)
    scenario.broker.publish(published)

    # One hydrofabric cache per slot, as each task has its own storage: two workers
    # starting at once on one cache folder race on its ".partial" files (reported).
    cache = scenario.env["HYDROFABRIC_CACHE_DIR"]
    caches = [{"HYDROFABRIC_CACHE_DIR": f"{cache}-slot{n}"} for n in (1, 2)]
    slots = [scenario.fleet.worker(**caches[0]), scenario.fleet.worker(**caches[1])]
    kills = busy_kills = 0
    backlog_at_kills: list[int] = []
    deadline = time.monotonic() + 150
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills in the time allowed"
        slot = kills % len(slots)
        victim = slots[slot]
        victim.wait_ready(timeout=60)
        time.sleep(rng.uniform(0.2, 1.4))
        in_flight = metric(victim, "rnr_worker_in_flight_messages")
        victim.signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        kills += 1
        busy_kills += bool(in_flight)
        slots[slot] = scenario.fleet.worker(**caches[slot])
        # Keep the workers under load until the last kill.
        backlog = scenario.broker.ready()
        backlog_at_kills.append(backlog)
        if len(published) < MAX_PRODUCTS and backlog < LOW_BACKLOG and kills < KILLS:
            more = scenario.add_products(MORE_PRODUCTS)
            scenario.broker.publish(more)
            published += more

    for worker in slots:
        worker.wait_ready(timeout=60)
    scenario.settle(set(published), slots, timeout=90)
    audit = scenario.audit(set(published))
    scenario.record(
        audit,
        kills=kills,
        busy_kills=busy_kills,
        min_backlog_at_kill=min(backlog_at_kills),
        restarts=kills,
        worker_processes=len(scenario.fleet.workers),
        seed=scenario.seed,
    )
    audit.check()
    assert busy_kills >= KILLS * 3 // 4, f"only {busy_kills} of {kills} kills hit a busy worker"
