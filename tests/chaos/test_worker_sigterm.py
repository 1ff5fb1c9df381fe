"""SIGTERM, as ECS sends it before a task stops (SIGKILL follows after 30 s).

What a stop must look like, whenever it comes:

* exit status 0, within the stop budget (Fargate's 30 s, and the drain time plus a
  little when that is shorter);
* ``/readyz`` never answers 200 again after the signal, and answers 503 while the
  worker drains;
* no message taken after the signal: the consumer is cancelled at once (the queue
  shows no consumer), and messages still in the queue were never delivered (the broker
  marks a message it delivered and got back as ``redelivered``);
* nothing acked without its output: a message that does not finish within the drain
  time is returned to the queue and written by the next worker, not acked.

Each test lists every violated property in one failure message.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from services.worker.stop_budget import StopBudget
from tests.support.chaos_audit import log_lines, metric
from tests.support.chaos_scenario import PRODUCT_TEXT_PATH, Scenario
from tests.support.servers import wait_until

ACKED = 'rnr_worker_messages_total{outcome="acked"}'
IN_FLIGHT = "rnr_worker_in_flight_messages"
FARGATE_STOP_TIMEOUT_SECONDS = 30.0


def _exit_code(worker, timeout: float) -> int | None:
    try:
        return worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.stop()
        return None


# Python itself takes about 40 ms to start here, before any of the worker's code runs;
# no program can handle a signal earlier than that, so the earliest case is 100 ms.
# "http-up": the signal comes as soon as /healthz answers, while /readyz is still 503
# (the hydrofabric is loading): the consumer must then never start.
@pytest.mark.timeout(60)
@pytest.mark.parametrize("when", ["100ms", "200ms", "300ms", "http-up"])
def test_sigterm_at_start_up(scenario: Scenario, when: str) -> None:
    scenario.name = f"sigterm_at_start_up[{when}]"
    products = scenario.add_products(3)
    scenario.broker.publish(products)
    worker = scenario.fleet.worker()
    spawned = time.monotonic()
    if when == "http-up":
        wait_until(lambda: worker.status("/healthz") == 200, timeout=30, interval=0.02)
    else:
        time.sleep(int(when.removesuffix("ms")) / 1000)
    ready_at_signal = when == "http-up" and worker.status("/readyz") == 200
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = _exit_code(worker, timeout=20)
    stop_seconds = round(time.monotonic() - signalled, 2)

    records = scenario.recorded()
    queued = scenario.broker.take_all(scenario.broker.queue, ack=False)
    taken = [message.message_id for message in queued if message.redelivered]
    consuming = [line for line in log_lines(worker.log_path) if line.get("message") == "consuming"]
    scenario.record(
        published=len(products),
        signal_after_spawn=round(signalled - spawned, 2),
        exit_code=code,
        stop_seconds=stop_seconds,
        still_queued=len(queued),
        taken_after_signal=len(taken) + len(records),
        lost=len(set(products) - {m.message_id for m in queued} - records),
    )
    problems = []
    if ready_at_signal:
        problems.append("the worker was ready before the signal: not a start-up case")
    if code != 0:
        problems.append(f"exit status {code}, not 0, for a SIGTERM at {when}")
    if records:
        problems.append(f"{len(records)} products processed after the signal")
    if taken:
        problems.append(f"{len(taken)} messages delivered after the signal and returned")
    if consuming:
        problems.append("the consumer started after the signal (a 'consuming' log line)")
    if sorted(m.message_id for m in queued) != sorted(products):
        problems.append(f"queue holds {len(queued)} of the {len(products)} messages")
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(120)
def test_sigterm_while_busy(scenario: Scenario) -> None:
    """Long drain (the default 25 s): every message in flight finishes and is acked."""
    prefetch = 4
    scenario.replay.fault(PRODUCT_TEXT_PATH, delay_seconds=3.0)
    products = scenario.add_products(12)
    scenario.broker.publish(products)
    worker = scenario.fleet.worker(WORKER_PREFETCH=str(prefetch))
    worker.wait_ready(timeout=60)
    # The first batch is acked and the second one is in flight.
    wait_until(
        lambda: (metric(worker, ACKED) or 0) >= prefetch and metric(worker, IN_FLIGHT) == prefetch,
        timeout=30,
        what="a second batch in flight",
    )
    acked_before = int(metric(worker, ACKED) or 0)
    in_flight = int(metric(worker, IN_FLIGHT) or 0)
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    statuses: list[int | None] = []
    # Reported, not asserted: a quorum queue lists a cancelled consumer until the
    # messages it holds are settled, so this is about the drain's length. What proves
    # that nothing was taken is below: no message left in the queue was ever delivered.
    consumer_gone_after: float | None = None
    while worker.process is not None and worker.process.poll() is None:
        if time.monotonic() - signalled > FARGATE_STOP_TIMEOUT_SECONDS + 5:
            break
        statuses.append(worker.status("/readyz"))
        if consumer_gone_after is None and scenario.broker.consumers() == 0:
            consumer_gone_after = round(time.monotonic() - signalled, 2)
        time.sleep(0.1)
    code = _exit_code(worker, timeout=5)
    stop_seconds = round(time.monotonic() - signalled, 2)

    written = scenario.recorded()
    queued = scenario.broker.take_all(scenario.broker.queue, ack=False)
    taken_back = [message.message_id for message in queued if message.redelivered]
    # A second worker finishes the rest.
    scenario.clear_faults()
    second = scenario.fleet.worker()
    second.wait_ready(timeout=60)
    scenario.settle(set(products), [second])
    audit = scenario.audit(set(products))
    scenario.record(
        audit,
        exit_code=code,
        stop_seconds=stop_seconds,
        in_flight_at_signal=in_flight,
        finished_by_first=len(written) - acked_before,
        readyz_after_signal=sorted({str(s) for s in statuses}),
        consumer_gone_after=consumer_gone_after,
        taken_after_signal=len(taken_back),
    )
    problems = []
    if code != 0:
        problems.append(f"exit status {code}, not 0")
    if stop_seconds >= FARGATE_STOP_TIMEOUT_SECONDS:
        problems.append(f"stopped after {stop_seconds}s, beyond Fargate's 30 s")
    if 200 in statuses:
        problems.append("/readyz answered 200 after the signal")
    if 503 not in statuses:
        problems.append(f"/readyz never answered 503 while draining (saw {set(statuses)})")
    if len(written) > acked_before + prefetch:
        problems.append(
            f"{len(written)} products written: more than the {acked_before} acked before "
            f"the signal plus the {prefetch} a worker can hold"
        )
    if len(written) < acked_before + in_flight:
        problems.append(
            f"only {len(written) - acked_before} of the {in_flight} messages in flight finished"
        )
    if taken_back:
        problems.append(f"{len(taken_back)} messages delivered after the signal and returned")
    if len(queued) != len(products) - len(written):
        problems.append(f"{len(queued)} messages queued, not {len(products) - len(written)}")
    assert not problems, "\n".join(problems)
    audit.check()


@pytest.mark.timeout(120)
def test_sigterm_with_a_drain_shorter_than_a_message(scenario: Scenario) -> None:
    """A one-second drain while each message needs 8 s: the two messages in flight go
    back to the queue unacked, no record is written for them, the next worker does.

    The drain comes from ``WORKER_STOP_TIMEOUT_SECONDS`` (the stop budget: drain =
    timeout - 7 s for the requeue, the scale-in protection's release, the HTTP close and
    a margin); the stop must fit in that budget.
    """
    stop_timeout_seconds, prefetch = 8.0, 2
    drain_seconds = StopBudget.within(stop_timeout_seconds).drain_seconds
    scenario.replay.fault(PRODUCT_TEXT_PATH, delay_seconds=8.0)
    products = scenario.add_products(3)
    scenario.broker.publish(products)
    worker = scenario.fleet.worker(
        WORKER_STOP_TIMEOUT_SECONDS=str(stop_timeout_seconds),
        WORKER_PREFETCH=str(prefetch),
        HTTP_TIMEOUT_SECONDS="30",  # the slow answer is slow, not a timeout
    )
    worker.wait_ready(timeout=60)
    wait_until(lambda: metric(worker, IN_FLIGHT) == prefetch, timeout=20, what="both in flight")
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = _exit_code(worker, timeout=30)
    stop_seconds = round(time.monotonic() - signalled, 2)

    written = scenario.recorded()
    processed_by_first = scenario.fleet.processed()
    queued = scenario.broker.take_all(scenario.broker.queue, ack=False)
    requeued = [message.message_id for message in queued if message.redelivered]
    scenario.clear_faults()
    second = scenario.fleet.worker()
    second.wait_ready(timeout=60)
    scenario.settle(set(products), [second])
    acked_by_second = metric(second, ACKED)
    audit = scenario.audit(set(products))
    scenario.record(
        audit,
        exit_code=code,
        stop_seconds=stop_seconds,
        drain_seconds=drain_seconds,
        requeued=len(requeued),
        acked_by_second=acked_by_second,
    )
    problems = []
    if code != 0:
        problems.append(f"exit status {code}, not 0")
    if stop_seconds > stop_timeout_seconds:
        problems.append(
            f"stopped after {stop_seconds}s: beyond the {stop_timeout_seconds}s stop budget "
            f"of a {drain_seconds}s drain"
        )
    if written or processed_by_first:
        problems.append(f"the stopped worker wrote records: {sorted(written)}")
    if len(queued) != len(products):
        problems.append(f"{len(queued)} of {len(products)} messages back in the queue")
    if len(requeued) != prefetch:
        problems.append(f"{len(requeued)} messages came back from the worker, not {prefetch}")
    if acked_by_second != len(products):
        problems.append(f"the second worker acked {acked_by_second}, not {len(products)}")
    assert not problems, "\n".join(problems)
    audit.check()


@pytest.mark.timeout(90)
def test_sigterm_within_fargates_stop_timeout_at_the_default_settings(scenario: Scenario) -> None:
    """Nothing about the stop configured: messages that outlast the default drain must
    still leave the process exited, and their messages back in the queue, before the
    SIGKILL Fargate sends 30 s after SIGTERM."""
    prefetch = 2
    scenario.replay.fault(PRODUCT_TEXT_PATH, delay_seconds=28.0)
    products = scenario.add_products(prefetch)
    scenario.broker.publish(products)
    worker = scenario.fleet.worker(HTTP_TIMEOUT_SECONDS="60", WORKER_PREFETCH=str(prefetch))
    worker.wait_ready(timeout=60)
    wait_until(lambda: metric(worker, IN_FLIGHT) == prefetch, timeout=20, what="both in flight")
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = _exit_code(worker, timeout=FARGATE_STOP_TIMEOUT_SECONDS + 10)
    stop_seconds = round(time.monotonic() - signalled, 2)
    written = scenario.recorded()
    queued = scenario.broker.take_all(scenario.broker.queue, ack=True)
    scenario.record(
        published=len(products),
        exit_code=code,
        stop_seconds=stop_seconds,
        requeued=sum(message.redelivered for message in queued),
        lost=len(set(products) - {m.message_id for m in queued} - written),
    )
    problems = []
    if code != 0:
        problems.append(f"exit status {code}, not 0")
    if stop_seconds >= FARGATE_STOP_TIMEOUT_SECONDS:
        problems.append(f"stopped after {stop_seconds}s: Fargate would have sent SIGKILL")
    if written:
        problems.append(f"records written for unfinished messages: {sorted(written)}")
    if sorted(m.message_id for m in queued if m.redelivered) != sorted(products):
        problems.append(f"{len(queued)} messages back in the queue, not the {prefetch} held")
    assert not problems, "\n".join(problems)
