"""A redrive of 1,000 dead letters that is SIGKILLed once and loses its broker once.

The tool runs as the process an operator starts (``python -m rnr.ops dlq redrive``),
against a RabbitMQ node this module starts for itself and restarts (never the
session's, never the machine's). Meanwhile a small consumer drains the work queue,
recording each message under its id (a second delivery overwrites: the worker's
outputs do the same). The tool is run again after each fault until it says it is
done. Then every id must be in exactly one place (DLQ, work queue or processed) and
none missing; duplicates can only be same-key overwrites, and are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from devstack.brokers import MissingServer, RabbitMQNode, private_brokers, tail
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    PREVIOUS_ERROR_HEADER,
)
from rnr.messaging.topology import Topology, declare_topology, delete_topology
from tests.support.chaos_audit import ChaosReport
from tests.support.messages import product_message
from tests.support.servers import wait_until_async

REPO_ROOT = Path(__file__).resolve().parents[2]
DEAD_LETTERS = 1000
# Slow enough that "mid-way" is a window of seconds, fast enough to finish in ~10 s.
RATE_PER_SECOND = 120
KILL_BELOW = 750  # SIGKILL the first run once the DLQ is down to this
RESTART_BELOW = 400  # restart the broker once the second run has it down to this
RUNS_AT_MOST = 10

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def own_rabbitmq() -> Iterator[RabbitMQNode]:
    """A node for this module alone: it is restarted mid-test."""
    try:
        with private_brokers(redis=False) as started:
            assert started.rabbitmq is not None
            yield started.rabbitmq
    except MissingServer as exc:
        message = f"this test starts a RabbitMQ node of its own: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _topology() -> Topology:
    unique = uuid.uuid4().hex[:10]
    return Topology(
        exchange=f"rnr-redrive-{unique}",
        queue=f"rnr-redrive-{unique}.products",
        queue_type="quorum",
        retry_delays_seconds=(0.5,),
    )


async def _seed(url: str, topology: Topology, ids: list[str]) -> None:
    """The DLQ as the worker leaves it: dead letters at their last attempt."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        declared = await declare_topology(channel, topology)
        for start in range(0, len(ids), 100):
            await asyncio.gather(
                *(
                    declared.dead_letter_exchange.publish(
                        aio_pika.Message(
                            product_message(product_id).to_body(),
                            headers={
                                ATTEMPT_HEADER: 5,
                                ERROR_HEADER: "NWPS answered 503 five times",
                                DEAD_LETTER_REASON_HEADER: "attempts_exhausted",
                            },
                            message_id=product_id,
                            correlation_id=product_id,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=topology.routing_key,
                    )
                    for product_id in ids[start : start + 100]
                )
            )


async def _depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def _wait_for_depth(url: str, queue: str, at_most: int, within: float = 30) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        depth = await _depth(url, queue)
        if depth <= at_most:
            return depth
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{queue} stayed above {at_most} messages for {within}s")


@contextlib.asynccontextmanager
async def _recording_consumer(
    url: str, topology: Topology, processed: Counter[str], previous_errors: set[str]
) -> AsyncIterator[None]:
    """Drains the work queue through the broker restart (a robust connection restores
    the consumer); each message is recorded under its id before it is acked."""
    connection = await aio_pika.connect_robust(url, reconnect_interval=0.3)

    async def record(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        processed[message.message_id or "(none)"] += 1
        previous_errors.add(str((message.headers or {}).get(PREVIOUS_ERROR_HEADER)))
        with contextlib.suppress(Exception):  # a lost ack: the broker redelivers
            await message.ack()

    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=20)
        queue = await channel.get_queue(topology.queue)
        await queue.consume(record)
        yield
    finally:
        await connection.close()


async def _start_tool(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    command = [sys.executable, "-m", "rnr.ops", "dlq", "redrive", "--rate", str(RATE_PER_SECOND)]
    with log.open("ab") as out:
        out.write(f"--- run at {time.time():.1f}\n".encode())
        out.flush()
        return await asyncio.create_subprocess_exec(
            *command, env={**os.environ, **env}, cwd=REPO_ROOT, stdout=out, stderr=out
        )


async def _drain(url: str, queue: str) -> list[str]:
    connection = await aio_pika.connect(url)
    ids = []
    async with connection:
        declared = await (await connection.channel()).get_queue(queue)
        while (message := await declared.get(fail=False)) is not None:
            await message.ack()
            ids.append(message.message_id or "(none)")
    return ids


async def _run_with_faults(
    node: RabbitMQNode, topology: Topology, env: dict[str, str], log: Path
) -> list[str]:
    """Kill the first run, restart the broker under the second, then run to the end.
    Returns how each run ended."""
    url, dlq = node.amqp_url, topology.dead_letter_queue
    runs: list[str] = []
    first = await _start_tool(env, log)
    await _wait_for_depth(url, dlq, KILL_BELOW)
    first.send_signal(signal.SIGKILL)
    runs.append(f"killed:{await first.wait()}")
    second = await _start_tool(env, log)
    await _wait_for_depth(url, dlq, RESTART_BELOW)
    await asyncio.to_thread(node.stop_app)
    await asyncio.to_thread(node.start_app)
    runs.append(f"broker-restart:{await second.wait()}")
    while len(runs) < RUNS_AT_MOST:
        rerun = await _start_tool(env, log)
        code = await rerun.wait()
        runs.append(f"rerun:{code}")
        if code == 0:
            return runs
        assert code == 3, f"the tool failed otherwise than with a lost broker: {tail(log)}"
        await asyncio.sleep(0.5)
    raise AssertionError(f"the redrive never finished: {runs}\n{tail(log, 40)}")


async def test_redrive_loses_nothing_through_a_sigkill_and_a_broker_restart(
    own_rabbitmq: RabbitMQNode, tmp_path: Path, chaos_report: ChaosReport
) -> None:
    node, topology = own_rabbitmq, _topology()
    ids = [f"p-{n:04d}" for n in range(DEAD_LETTERS)]
    await _seed(node.amqp_url, topology, ids)
    env = {
        "RABBITMQ_URL": node.amqp_url,
        "RABBITMQ_EXCHANGE": topology.exchange,
        "RABBITMQ_QUEUE": topology.queue,
        "RETRY_DELAYS_SECONDS": "0.5",
        "RABBITMQ_PUBLISH_TIMEOUT_SECONDS": "3",
    }
    log = tmp_path / "rnr-ops.log"
    processed: Counter[str] = Counter()
    previous_errors: set[str] = set()
    started = time.monotonic()
    try:
        async with _recording_consumer(node.amqp_url, topology, processed, previous_errors):
            runs = await _run_with_faults(node, topology, env, log)
            with contextlib.suppress(TimeoutError):  # what is missing, the audit names
                await wait_until_async(lambda: set(processed) >= set(ids), within=30)
        in_dlq = await _drain(node.amqp_url, topology.dead_letter_queue)
        in_work = await _drain(node.amqp_url, topology.queue)
    except BaseException:
        print(tail(log, 60))
        raise
    finally:
        with contextlib.suppress(Exception):
            connection = await aio_pika.connect(node.amqp_url)
            async with connection:
                await delete_topology(await connection.channel(), topology)
    places: dict[str, set[str]] = {product_id: set() for product_id in ids}
    for place, found in (("dlq", in_dlq), ("work", in_work), ("processed", list(processed))):
        for product_id in found:
            places.setdefault(product_id, set()).add(place)
    lost = sorted(p for p, where in places.items() if not where)
    strangers = sorted(set(places) - set(ids))
    in_several = sorted(p for p, where in places.items() if len(where) > 1)
    overwrites = sum(count - 1 for count in processed.values())
    queued_twice = (len(in_dlq) - len(set(in_dlq))) + (len(in_work) - len(set(in_work)))
    figures = {
        "dead_letters": DEAD_LETTERS,
        "processed": len(processed),
        "same_key_overwrites": overwrites,
        "left_in_dlq": len(in_dlq),
        "left_in_work_queue": len(in_work),
        "runs": ",".join(runs),
        "seconds": round(time.monotonic() - started, 1),
    }
    chaos_report.add("redrive_faults", **figures)
    print(f"redrive under faults: {figures}")
    assert not lost, f"{len(lost)} dead letters lost: {lost[:10]}"
    assert not strangers and not in_several and not queued_twice, (strangers, in_several)
    assert not in_dlq and not in_work, "the last run said it was done, and the worker drained"
    assert previous_errors == {"NWPS answered 503 five times"}
    assert runs[0] == f"killed:{-signal.SIGKILL}" and runs[-1] == "rerun:0"
    # Losing the broker is an exit the operator is told to re-run, not a crash.
    assert runs[1] in {"broker-restart:3", "broker-restart:0"}, tail(log, 30)
