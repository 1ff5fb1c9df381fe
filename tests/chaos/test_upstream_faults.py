"""weather.gov and NWPS misbehaving: 5xx answers, timeouts, garbage bodies, a 404.

Faults are registered on the replay server for a limited number of uses, on the NWS
product text path and on the NWPS gauge and stage-flow paths. ``HTTP_RETRIES=1``: each
attempt of a message makes up to two requests per resource.

* ``5xx``, ``timeout``: one product's text fails 4 times, so its first two attempts
  fail and go through the retry tiers and the third succeeds; HPDT2's forecast fails 4
  times and any gauge's metadata 6 times, spread over whichever products ask first.
  Temporary faults, so every product is recorded and nothing is dead-lettered.
* ``garbage``: a 200 whose body is HTML, not JSON, as a proxy's or CDN's error page
  is: temporary too (retried), so with a limited number of them every product is
  recorded. Stage-flow JSON with flows no river carries skips that gauge as
  ``invalid_data``; the product is still recorded. One product's text answers 404:
  permanent, dead-lettered at once with reason ``permanent``.

Every product ends recorded or in the dead-letter queue with a reason header.
"""

from __future__ import annotations

import json

import pytest

from tests.support.chaos_audit import metric
from tests.support.chaos_scenario import Scenario

PRODUCTS = 18
GARBAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"
# JSON in the stage-flow shape, whose flow no river carries.
IMPOSSIBLE_SERIES = json.dumps(
    {
        "issuedTime": "2025-05-05T18:00:00Z",
        "secondaryName": "Flow",
        "secondaryUnits": "kcfs",
        "data": [
            {"validTime": "2025-05-05T18:00:00Z", "primary": 20.0, "secondary": 1.0e12},
            {"validTime": "2025-05-05T21:00:00Z", "primary": 21.0, "secondary": 1.0e12},
        ],
    }
)
GAUGE_PATH = r"^/nwps/v1/gauges/[A-Z0-9]+$"
INVALID_DATA = 'rnr_worker_gauges_total{outcome="skipped",reason="invalid_data"}'


def _text_path(product_id: str) -> str:
    return f"^/products/{product_id}$"


def _forecast_path(lid: str) -> str:
    return f"^/nwps/v1/gauges/{lid}/stageflow/forecast$"


def _register(scenario: Scenario, kind: str, products: list[str]) -> set[str]:
    """Add the faults of ``kind``; returns the products expected in the dead-letter queue."""
    if kind in ("5xx", "timeout"):
        fault = {"status": 503} if kind == "5xx" else {"delay_seconds": 1.5}
        scenario.replay.fault(_text_path(products[0]), times=4, **fault)
        scenario.replay.fault(_forecast_path("HPDT2"), times=4, **fault)
        scenario.replay.fault(GAUGE_PATH, times=6, **fault)
        return set()
    # Both requests of product 1's first attempt are garbage (a retry through the
    # tiers); product 2 gets one (the HTTP client's retry is enough).
    scenario.replay.fault(_text_path(products[1]), status=200, body=GARBAGE, times=2)
    scenario.replay.fault(_text_path(products[2]), status=200, body=GARBAGE, times=1)
    scenario.replay.fault("^/nwps/v1/gauges/TRKT2$", status=200, body=GARBAGE, times=2)
    scenario.replay.fault(_forecast_path("HPDT2"), status=200, body=GARBAGE, times=2)
    scenario.replay.fault(_forecast_path("PRLL1"), status=200, body=IMPOSSIBLE_SERIES, times=1)
    scenario.replay.fault(_text_path(products[3]), status=404)
    return {products[3]}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["5xx", "timeout", "garbage"])
def test_upstream_faults(scenario: Scenario, kind: str) -> None:
    scenario.name = f"upstream_{kind}"
    products = scenario.add_products(PRODUCTS)
    expected_dead = _register(scenario, kind, products)
    scenario.broker.publish(products)
    worker = scenario.fleet.worker(HTTP_TIMEOUT_SECONDS="1", MAX_ATTEMPTS="8")
    worker.wait_ready(timeout=60)
    scenario.settle(set(products), [worker], timeout=90)
    retried = metric(worker, 'rnr_worker_messages_total{outcome="retried"}') or 0
    # Counted as they happen: a product retried later rewrites its record, and the
    # second answer (the fault used up) may then be routable.
    invalid = metric(worker, INVALID_DATA) or 0
    unused = [f for f in scenario.faults() if f["remaining"]]  # None: unlimited
    audit = scenario.audit(set(products))
    reasons = sorted({taken.dead_letter_reason for taken in audit.dead_letters})
    scenario.record(
        audit,
        faults_applied=sum(f["applied"] for f in scenario.faults()),
        retried=retried,
        invalid_data_gauges=invalid,
        dead_letter_reasons=reasons,
    )
    audit.check()
    problems = []
    if unused:
        problems.append(f"faults never fully used: {[(f['path'], f['remaining']) for f in unused]}")
    unexplained = [t.message_id for t in audit.dead_letters if not t.dead_letter_reason]
    if unexplained:
        problems.append(f"dead letters without a reason header: {unexplained}")
    if audit.dead_lettered != expected_dead:
        problems.append(
            f"dead-lettered {sorted(audit.dead_lettered)}, expected {sorted(expected_dead)}"
        )
    if kind == "garbage":
        if reasons != ["permanent"]:
            problems.append(f"the product whose text is 404 was dead-lettered as {reasons}")
        if invalid < 1:
            problems.append("the impossible stage-flow series was not skipped as invalid_data")
    if retried < (1 if kind == "garbage" else 2):
        problems.append(f"only {retried} retries through the delay tiers")
    assert not problems, "\n".join(problems)
