"""``rnr-ops dlq ...`` and ``rnr-ops replay`` against the real broker (and replay server).

Every test fills a DLQ of its own, runs the tool (in-process through its parser and
handlers, or as the command an operator types) and then reads what the queues hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from prometheus_client import CollectorRegistry

from rnr.core.errors import TransientError
from rnr.messaging.consumer import Consumer, ConsumerMetrics, Delivery, Handled
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    PREVIOUS_ERROR_HEADER,
)
from rnr.messaging.models import ProductMessage
from rnr.messaging.topology import DELIVERY_LIMIT, declare_topology
from rnr.ops.cli import build_parser
from rnr.ops.errors import OperatorError
from tests.conftest import Replay
from tests.support.broker import BrokerFixture, broker_secret
from tests.support.messages import product_message
from tests.support.servers import free_port, wait_until_async

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTED = dt.datetime(2025, 5, 5, 12, tzinfo=dt.UTC)
# (product id, reason, error type) of the dead letters most tests start from, in order.
LETTERS = [
    ("p-00", "permanent", "InvalidMessage"),
    ("p-01", "attempts_exhausted", "UpstreamUnavailable"),
    ("p-02", "permanent", "KeyError"),
    ("p-03", "invalid_header", "InvalidHeader"),
    ("p-04", "attempts_exhausted", "UpstreamUnavailable"),
    ("p-05", "permanent", "InvalidMessage"),
]


def failure_headers(index: int, reason: str, error_type: str, attempt: int = 5) -> dict[str, Any]:
    return {
        ATTEMPT_HEADER: attempt,
        ERROR_HEADER: f"failure {index} ({error_type})",
        ERROR_TYPE_HEADER: error_type,
        FAILED_AT_HEADER: (STARTED + dt.timedelta(minutes=index)).isoformat(),
        DEAD_LETTER_REASON_HEADER: reason,
        "x-trace": f"trace-{index}",
    }


async def dead_letter(
    broker: BrokerFixture,
    letters: list[tuple[str, str, str]],
    attempt: int = 5,
    queue_type: str = "quorum",
) -> None:
    """Publish dead letters the way the worker does: to the DLX, confirmed, in order."""
    topology = dataclasses.replace(broker.topology(), queue_type=queue_type)
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        declared = await declare_topology(channel, topology)
        for index, (product_id, reason, error_type) in enumerate(letters):
            await declared.dead_letter_exchange.publish(
                aio_pika.Message(
                    product_message(product_id).to_body(),
                    headers=failure_headers(index, reason, error_type, attempt),
                    message_id=product_id,
                    correlation_id=product_id,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=broker.topology().routing_key,
            )


async def kill_by_delivery_limit(broker: BrokerFixture, product_id: str) -> None:
    """A message the broker itself dead-letters: requeued past the work queue's limit."""
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        declared = await declare_topology(channel, broker.topology())
        await declared.exchange.publish(
            aio_pika.Message(product_message(product_id).to_body(), message_id=product_id),
            routing_key=broker.topology().routing_key,
        )
        for _ in range(DELIVERY_LIMIT + 5):
            message = await declared.queue.get(no_ack=False, fail=False)
            if message is None:
                break
            await message.nack(requeue=True)
        dlq = broker.topology().dead_letter_queue
        for _ in range(100):
            if (await channel.declare_queue(dlq, passive=True)).declaration_result.message_count:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the broker did not dead-letter the message at its delivery limit")


def contents(messages: list[aio_pika.abc.AbstractIncomingMessage]) -> list[tuple[Any, ...]]:
    """What a message is, without the copy's delivery count."""
    return [
        (
            m.message_id,
            m.correlation_id,
            m.content_type,
            m.body,
            {k: v for k, v in (m.headers or {}).items() if k != "x-delivery-count"},
        )
        for m in messages
    ]


async def ops(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *argv: str,
) -> tuple[int, str, str]:
    """Run one command in-process (parser and handler, as ``main`` does); code, out, err."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    args = build_parser().parse_args(list(argv))
    try:
        code = await args.handler(args)
    except OperatorError as exc:
        print(exc, file=sys.stderr)
        code = exc.exit_code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ops_process(env: dict[str, str], *argv: str, stdin: Any = subprocess.DEVNULL) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "rnr.ops", *argv],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def filled(broker: BrokerFixture) -> AsyncIterator[BrokerFixture]:
    await dead_letter(broker, LETTERS)
    yield broker


async def test_stats_counts_by_reason_and_error_type_and_leaves_the_queue_as_it_was(
    filled: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await kill_by_delivery_limit(filled, "p-killer")
    dlq = filled.topology().dead_letter_queue
    code, out, _ = await ops(monkeypatch, capsys, filled.env(), "dlq", "stats", "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["messages"] == 7
    assert figures["by_reason"] == {
        "permanent": 3,
        "attempts_exhausted": 2,
        "invalid_header": 1,
        "delivery_limit": 1,
    }
    assert figures["by_error_type"] == {
        "InvalidMessage": 2,
        "UpstreamUnavailable": 2,
        "KeyError": 1,
        "InvalidHeader": 1,
        "(none)": 1,
    }
    assert figures["dead_lettered_by"] == {"worker": 6, "broker": 1}
    assert figures["oldest"] == STARTED.isoformat()
    # The broker's dead letter is dated by its x-death time: now, the newest by far.
    assert dt.datetime.fromisoformat(figures["newest"]) > dt.datetime.now(dt.UTC) - dt.timedelta(
        minutes=5
    )
    code, text, _ = await ops(monkeypatch, capsys, filled.env(), "dlq", "stats")
    assert "7 dead letters" in text and "delivery_limit" in text
    remaining = await filled.drain(dlq)
    assert [m.message_id for m in remaining] == [*(p for p, _, _ in LETTERS), "p-killer"]
    assert remaining[0].headers[ERROR_HEADER] == "failure 0 (InvalidMessage)"


async def delivery_counts(broker: BrokerFixture) -> list[tuple[str | None, int]]:
    """Each dead letter's id and quorum delivery count, read by taking the whole queue
    and handing it back at once (so that the order stays as it was)."""
    connection = await aio_pika.connect(broker.url)
    async with connection:
        queue = await (await connection.channel()).get_queue(broker.topology().dead_letter_queue)
        taken = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            taken.append(message)
        await taken[-1].nack(multiple=True, requeue=True)
    return [(m.message_id, (m.headers or {}).get("x-delivery-count", 0)) for m in taken]


async def test_looking_never_uses_up_a_quorum_dead_letters_deliveries(
    filled: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Why ``auto`` republishes on this broker (3.x; 4.0-4.2 alike): a requeue counts as a
    delivery there, and at the delivery limit a quorum queue drops the message."""
    ids = [p for p, _, _ in LETTERS]
    for _ in range(3):
        assert (await ops(monkeypatch, capsys, filled.env(), "dlq", "stats"))[0] == 0
    assert await delivery_counts(filled) == [(p, 0) for p in ids]
    # Our own look above handed every message back once: one counted delivery each.
    for _ in range(3):
        code, _, _ = await ops(
            monkeypatch, capsys, filled.env(), "dlq", "stats", "--release", "requeue"
        )
        assert code == 0
    assert await delivery_counts(filled) == [(p, 1 + 3) for p in ids]
    code, _, _ = await ops(monkeypatch, capsys, filled.env(), "dlq", "stats")
    assert await delivery_counts(filled) == [(p, 0) for p in ids]


async def test_show_prints_the_first_n_with_headers_and_body(
    filled: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = filled.env()
    code, out, _ = await ops(monkeypatch, capsys, env, "dlq", "show", "-n", "2", "--json")
    assert code == 0
    shown = json.loads(out)
    assert [entry["message_id"] for entry in shown] == ["p-00", "p-01"]
    assert shown[1]["headers"][ERROR_TYPE_HEADER] == "UpstreamUnavailable"
    assert shown[1]["body"] == json.loads(product_message("p-01").to_body())
    code, text, _ = await ops(
        monkeypatch, capsys, env, "dlq", "show", "-n", "1", "--reason", "invalid_header"
    )
    assert "product p-03" in text and "x-trace: trace-3" in text and '"id": "p-03"' in text
    for release in ("requeue", "republish"):
        await ops(monkeypatch, capsys, env, "dlq", "show", "-n", "1", "--release", release)
    dlq = filled.topology().dead_letter_queue
    assert [m.message_id for m in await filled.drain(dlq)] == [p for p, _, _ in LETTERS]


@pytest.mark.parametrize(
    ("options", "picked"),
    [
        (["--reason", "permanent"], ["p-00", "p-02", "p-05"]),
        (["--error-type", "UpstreamUnavailable"], ["p-01", "p-04"]),
        (["--product-id", "p-03", "--product-id", "p-05"], ["p-03", "p-05"]),
        (["--reason", "permanent", "--error-type", "InvalidMessage", "--limit", "1"], ["p-00"]),
        (["--limit", "2", "--release", "requeue"], ["p-00", "p-01"]),
        ([], [p for p, _, _ in LETTERS]),
    ],
)
async def test_redrive_sends_what_the_filters_pick_and_leaves_the_rest_in_order(
    filled: BrokerFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    picked: list[str],
) -> None:
    topology = filled.topology()
    before = {m[0]: m for m in contents(await filled.drain(topology.dead_letter_queue))}
    await dead_letter(filled, LETTERS)
    code, out, _ = await ops(
        monkeypatch, capsys, filled.env(), "dlq", "redrive", *options, "--json"
    )
    assert code == 0
    outcome = json.loads(out)
    assert outcome["redriven"] == len(picked) and outcome["product_ids"] == picked
    redriven = await filled.drain(topology.queue)
    assert [m.message_id for m in redriven] == picked
    for message in redriven:
        index = next(i for i, (p, _, _) in enumerate(LETTERS) if p == message.message_id)
        assert message.body == before[message.message_id][3]
        assert message.correlation_id == message.message_id
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers[PREVIOUS_ERROR_HEADER] == before[message.message_id][4][ERROR_HEADER]
        assert message.headers["x-trace"] == f"trace-{index}"
        for dropped in (ATTEMPT_HEADER, ERROR_HEADER, ERROR_TYPE_HEADER, FAILED_AT_HEADER):
            assert dropped not in message.headers
        assert DEAD_LETTER_REASON_HEADER not in message.headers
    left = contents(await filled.drain(topology.dead_letter_queue))
    assert left == [before[p] for p, _, _ in LETTERS if p not in picked]


async def test_on_a_classic_dlq_it_requeues_in_place_and_stops_once_it_has_enough(
    broker: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**broker.env(), "RABBITMQ_QUEUE_TYPE": "classic"}
    code, out, _ = await ops(monkeypatch, capsys, env, "dlq", "stats", "--json")
    assert code == 1  # nothing declared yet: the queue is missing
    await dead_letter(broker, [], queue_type="classic")
    code, out, _ = await ops(monkeypatch, capsys, env, "dlq", "stats")
    assert code == 0 and out.strip().endswith("is empty")
    await dead_letter(broker, LETTERS, queue_type="classic")
    code, out, _ = await ops(monkeypatch, capsys, env, "dlq", "show", "-n", "1", "--json")
    assert [entry["message_id"] for entry in json.loads(out)] == ["p-00"]
    code, out, _ = await ops(
        monkeypatch, capsys, env, "dlq", "redrive", "--product-id", "p-01", "--limit", "1", "--json"
    )
    outcome = json.loads(out)
    assert outcome["sweep"]["release"] == "requeue"
    assert outcome["sweep"]["taken"] == 2  # p-00 looked at and handed back, p-01 sent
    assert [m.message_id for m in await broker.drain(broker.topology().queue)] == ["p-01"]
    left = await broker.drain(broker.topology().dead_letter_queue)
    assert [m.message_id for m in left] == [p for p, _, _ in LETTERS if p != "p-01"]


async def test_a_redrive_with_no_work_queue_bound_stops_and_keeps_the_dead_letters(
    filled: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    connection = await aio_pika.connect(filled.url)
    async with connection:
        await (await connection.channel()).queue_delete(filled.topology().queue)
    code, _, err = await ops(monkeypatch, capsys, filled.env(), "dlq", "redrive")
    assert code == 1
    assert "no queue bound" in err and "fix the topology" in err
    left = await filled.drain(filled.topology().dead_letter_queue)
    assert sorted(m.message_id for m in left) == [p for p, _, _ in LETTERS]


async def test_a_dry_run_sends_nothing_and_names_what_it_would(
    filled: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await ops(
        monkeypatch, capsys, filled.env(), "dlq", "redrive", "--reason", "permanent", "--dry-run"
    )
    assert code == 0
    assert "would redrive 3 of 6 dead letters" in out and "p-00, p-02, p-05" in out
    assert await filled.drain(filled.topology().queue) == []
    left = await filled.drain(filled.topology().dead_letter_queue)
    assert [m.message_id for m in left] == [p for p, _, _ in LETTERS]


async def test_a_redriven_message_gets_every_attempt_again_in_the_worker(
    broker: BrokerFixture, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dead-lettered at attempt 3 of 3; redriven, the worker's consumer reads attempt 1,
    so a transient failure is retried instead of dead-lettered at once."""
    await dead_letter(broker, [("p-again", "attempts_exhausted", "UpstreamUnavailable")], attempt=3)
    assert (await ops(monkeypatch, capsys, broker.env(), "dlq", "redrive"))[0] == 0
    attempts: list[int] = []

    async def processor(delivery: Delivery) -> Handled:
        attempts.append(delivery.attempt)
        if len(attempts) == 1:
            raise TransientError("NWPS answered 503 once more")
        return Handled.PROCESSED

    connection = await aio_pika.connect_robust(broker.url)
    consumer = Consumer(
        connection,
        broker.topology(),
        processor,
        prefetch=1,
        max_attempts=3,
        publish_timeout_seconds=5,
        metrics=ConsumerMetrics(CollectorRegistry()),
    )
    await consumer.start()
    try:
        await wait_until_async(lambda: len(attempts) == 2, within=15, what="a retried redrive")
    finally:
        await consumer.stop(drain_seconds=2)
        await connection.close()
    assert attempts == [1, 2]
    assert await broker.drain(broker.topology().dead_letter_queue) == []


def test_purge_refuses_without_a_terminal_and_purges_with_yes(filled: BrokerFixture) -> None:
    refused = ops_process(filled.env(), "dlq", "purge")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("pass --yes to purge from a script")
    done = ops_process(filled.env(), "dlq", "purge", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] == len(LETTERS)
    assert asyncio.run(filled.drain(filled.topology().dead_letter_queue)) == []


def _purge_on_a_terminal(env: dict[str, str], typed: str) -> subprocess.CompletedProcess[str]:
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "rnr.ops", "dlq", "purge", "--no-progress"],
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, typed.encode() + b"\n")  # waits in the terminal until read
        out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_purge_on_a_terminal_deletes_only_after_the_typed_confirmation(
    filled: BrokerFixture,
) -> None:
    dlq = filled.topology().dead_letter_queue
    cancelled = _purge_on_a_terminal(filled.env(), "yes")
    assert cancelled.returncode == 1
    assert f'Type "purge {len(LETTERS)} from {dlq}"' in cancelled.stderr
    assert "nothing was deleted" in cancelled.stderr
    purged = _purge_on_a_terminal(filled.env(), f"purge {len(LETTERS)} from {dlq}")
    assert purged.returncode == 0, purged.stderr
    assert f"deleted {len(LETTERS)} dead letters from {dlq}" in purged.stdout
    assert asyncio.run(filled.drain(dlq)) == []


async def test_replay_enqueues_the_product_weather_gov_describes(
    broker: BrokerFixture,
    replay: Replay,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        await declare_topology(await connection.channel(), broker.topology())
    entry = replay.listing()[0]
    env = {**broker.env(), "NWS_API_URL": replay.nws_api_url, "HTTP_RETRIES": "0"}
    code, out, _ = await ops(monkeypatch, capsys, env, "replay", entry["id"])
    assert code == 0 and entry["id"] in out
    [message] = await broker.drain(broker.topology().queue)
    product = ProductMessage.from_body(message.body)
    assert (message.message_id, message.correlation_id) == (entry["id"], entry["id"])
    assert product.id == entry["id"]
    assert product.issuance_time == dt.datetime.fromisoformat(entry["issuanceTime"])
    assert str(product.url) == entry["@id"]
    assert not {k for k in message.headers or {} if k.startswith("x-rnr-")}
    code, _, err = await ops(monkeypatch, capsys, env, "replay", "no-such-product")
    assert code == 1 and "weather.gov has no product no-such-product" in err
    assert await broker.drain(broker.topology().queue) == []


async def test_it_reaches_an_amazon_mq_style_broker_through_the_secret(
    filled: BrokerFixture,
    moto_endpoint: str,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {k: v for k, v in filled.env().items() if k != "RABBITMQ_URL"}
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    env.update(
        RABBITMQ_ENDPOINT=filled.endpoint,
        RABBITMQ_SECRET_ARN=broker_secret(moto_endpoint, f"rnr-ops-{unique}", filled),
        AWS_ENDPOINT_URL=moto_endpoint,
    )
    code, out, _ = await ops(monkeypatch, capsys, env, "dlq", "stats", "--json")
    assert code == 0 and json.loads(out)["messages"] == len(LETTERS)


def test_an_unreachable_broker_is_one_line_naming_it_and_exit_3(broker: BrokerFixture) -> None:
    port = free_port()
    env = {**broker.env(), "RABBITMQ_URL": f"amqp://guest:s3cret@127.0.0.1:{port}/"}
    failed = ops_process(env, "dlq", "stats")
    assert failed.returncode == 3
    [line] = failed.stderr.strip().splitlines()
    assert f"cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{port}/" in line
    assert "s3cret" not in line and "security group" in line


def test_a_missing_queue_is_named(broker: BrokerFixture) -> None:
    failed = ops_process(broker.env(), "dlq", "stats")  # nothing declared this topology
    assert failed.returncode == 1
    assert f"queue '{broker.topology().dead_letter_queue}' does not exist" in failed.stderr
