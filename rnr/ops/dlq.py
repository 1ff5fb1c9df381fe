"""``rnr-ops dlq stats|show|redrive|purge``: the dead-letter queue without the management UI.

Each command is one pass over the DLQ (:mod:`rnr.ops.sweep`): the pass takes every
message once and settles it before the next, so a command killed half-way loses
nothing, and one that only looks leaves the queue as it found it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from typing import Any

from rnr.core.settings import load_settings
from rnr.ops.broker import Broker, ReleaseMode, open_broker
from rnr.ops.cli_options import add_log_level
from rnr.ops.dead_letters import DeadLetter, Filter, Tally, describe
from rnr.ops.errors import OperatorError, UsageError
from rnr.ops.progress import Progress
from rnr.ops.settings import OpsSettings
from rnr.ops.sweep import Sweep, SweepResult, Verdict

logger = logging.getLogger(__name__)

_IDS_SHOWN = 20

_DLQ_HELP = """\
The dead-letter queue (RABBITMQ_QUEUE + ".dlq", e.g. rnr.products.dlq) holds messages
the worker gave up on: reason "permanent" (bad message, product not found, a bug),
"attempts_exhausted" (an outage that outlasted MAX_ATTEMPTS) or "invalid_header"; and
messages the broker dead-lettered itself ("delivery_limit": they kept killing workers).

Reading is safe: every command takes each message once and puts back what it keeps.
On a quorum queue of a broker before RabbitMQ 4.3 it puts back a fresh copy at the
tail (the whole queue is read, so the order comes out the same), because there every
requeue counts as a delivery and the broker drops a dead letter at its delivery limit.
Elsewhere it requeues in place. --release overrides the choice.
"""

_REDRIVE_HELP = """\
Send dead letters back to the work exchange (RABBITMQ_EXCHANGE, routing key
RABBITMQ_QUEUE), to be processed again once their cause is fixed. Each copy is
published with a confirm before its dead letter is acked; it starts again at attempt 1
(x-rnr-attempt removed), loses x-rnr-error, x-rnr-error-type, x-rnr-failed-at and
x-rnr-dead-letter-reason, and keeps the old error in x-rnr-previous-error.
Messages the filters do not pick stay in the DLQ, in order. Filters combine with AND;
a filter given twice matches either value. Reprocessing is safe: output keys depend only
on the product, so a product processed twice overwrites its outputs.
Interrupted or disconnected, it loses nothing: run it again to carry on.
"""

_PURGE_HELP = """\
Delete the dead letters for good (to process them again, redrive instead). Asks you to
type what it will delete; --yes skips the question, for scripts. Without a terminal and
without --yes it refuses. It deletes exactly the messages it counted when it asked.
"""


def _common(json_help: str) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help=json_help)
    common.add_argument(
        "--release",
        choices=["auto", "requeue", "republish"],
        default="auto",
        help="how kept messages go back (default auto: republish on a quorum DLQ before "
        "RabbitMQ 4.3, requeue elsewhere; see `dlq --help`)",
    )
    common.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_log_level(common)
    return common


def _add_filters(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--reason",
        action="append",
        metavar="REASON",
        help=f"{verb} only dead letters with this reason (permanent, attempts_exhausted, "
        "invalid_header, delivery_limit, ...: see `dlq stats`); repeatable",
    )
    parser.add_argument(
        "--error-type",
        action="append",
        metavar="TYPE",
        help=f"{verb} only those whose x-rnr-error-type is TYPE (e.g. UpstreamUnavailable); "
        "repeatable",
    )
    parser.add_argument(
        "--product-id",
        action="append",
        metavar="ID",
        help=f"{verb} only this product's dead letters (its message_id); repeatable",
    )


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser(
        "dlq",
        help="inspect, redrive or purge the dead-letter queue",
        description=_DLQ_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    stats = commands.add_parser(
        "stats",
        parents=[_common("print the figures as one JSON object")],
        help="count dead letters by reason and error type; oldest and newest",
        description="Count the dead letters by reason, by error type and by who "
        "dead-lettered them (worker or broker); the oldest and newest failure "
        "(x-rnr-failed-at, else the broker's x-death time, else the message timestamp).",
    )
    stats.set_defaults(handler=run_stats)
    show = commands.add_parser(
        "show",
        parents=[_common("print the messages as a JSON list")],
        help="print the headers and body of the first N dead letters",
        description="Print the first N dead letters (those the filters pick): "
        "properties, headers and body. The queue is left as it was.",
    )
    show.add_argument("-n", type=int, default=10, metavar="N", help="how many (default 10)")
    _add_filters(show, "show")
    show.set_defaults(handler=run_show)
    _register_redrive(commands)
    _register_purge(commands)


def _register_redrive(commands: Any) -> None:
    redrive = commands.add_parser(
        "redrive",
        parents=[_common("print the outcome as one JSON object")],
        help="send dead letters back to the work queue",
        description=_REDRIVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(redrive, "redrive")
    redrive.add_argument("--limit", type=int, metavar="N", help="redrive at most N")
    redrive.add_argument(
        "--dry-run", action="store_true", help="list what would be redriven; send nothing"
    )
    redrive.add_argument(
        "--rate",
        type=float,
        metavar="PER_SECOND",
        help="redrive at most this many messages a second, so a large redrive does not "
        "flood the workers at once (default: as fast as the broker confirms)",
    )
    redrive.set_defaults(handler=run_redrive)


def _register_purge(commands: Any) -> None:
    purge = commands.add_parser(
        "purge",
        parents=[_common("print the outcome as one JSON object")],
        help="delete every dead letter (asks first)",
        description=_PURGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    purge.add_argument("--yes", action="store_true", help="do not ask; for scripts")
    purge.set_defaults(handler=run_purge)


def _release(args: argparse.Namespace, broker: Broker) -> ReleaseMode:
    if args.release == "requeue":
        return "requeue"
    if args.release == "republish":
        return "republish"
    return broker.release_mode()


def _sweep(
    args: argparse.Namespace, broker: Broker, label: str, rate: float | None = None
) -> Sweep:
    def progress(total: int) -> Progress:
        return Progress(
            f"{label} {broker.topology.dead_letter_queue}", total, enabled=not args.no_progress
        )

    return Sweep(
        broker,
        broker.topology.dead_letter_queue,
        release=_release(args, broker),
        progress=progress,
        rate_per_second=rate,
    )


def _filter(args: argparse.Namespace) -> Filter:
    return Filter.of(args.reason, args.error_type, args.product_id)


def _emit(args: argparse.Namespace, payload: dict[str, Any] | list[Any], text: str) -> None:
    if args.json:
        json.dump(payload, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text + "\n")


def _mode_note(result: SweepResult) -> str:
    if result.release == "republish":
        return "kept messages were put back as fresh copies, in their order"
    return "kept messages were requeued in place"


async def run_stats(args: argparse.Namespace) -> int:
    settings = load_settings(OpsSettings)
    tally = Tally()

    def decide(letter: DeadLetter) -> Verdict:
        tally.add(letter)
        return Verdict.KEEP

    async with open_broker(settings, name="rnr-ops dlq stats") as broker:
        result = await _sweep(args, broker, "reading").run(decide)
    payload = {"queue": result.queue, "broker": broker.shown_url, **tally.as_dict()}
    payload["read"] = result.as_dict()
    _emit(args, payload, _stats_text(broker.shown_url, tally, result))
    return 0


# A dead letter's headers and body are whatever its publisher sent: on a terminal, an
# escape sequence in them could rewrite what the operator sees (or the title bar), and
# one header can hold megabytes. Text output shows control characters escaped and each
# value cut at this length; --json has every character (JSON-escaped).
SHOWN_CHARACTERS = 2000
# A one-line field escapes line breaks too, so no header can fake the lines after it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _terminal_safe(value: object, limit: int = SHOWN_CHARACTERS, *, lines: bool = False) -> str:
    pattern = _CONTROL_BUT_LINE_BREAKS if lines else _CONTROL
    text = pattern.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value))
    if len(text) > limit:
        return f"{text[:limit]}… ({len(text) - limit:,} more characters; --json shows all)"
    return text


def _counts(title: str, counts: dict[str, int]) -> list[str]:
    shown = {_terminal_safe(name, 80): count for name, count in counts.items()}
    width = max((len(name) for name in shown), default=0)
    return [title, *(f"  {name:<{width}}  {count:>7,}" for name, count in shown.items())]


def _stats_text(shown_url: str, tally: Tally, result: SweepResult) -> str:
    if not tally.messages:
        return f"{result.queue} on {shown_url} is empty"
    figures = tally.as_dict()
    lines = [
        f"{result.queue} on {shown_url}: {tally.messages:,} dead letters",
        f"oldest  {figures['oldest'] or '-'}",
        f"newest  {figures['newest'] or '-'}"
        + (f"  ({tally.undated:,} carry no time)" if tally.undated else ""),
        *_counts("by reason", figures["by_reason"]),
        *_counts("by error type", figures["by_error_type"]),
        *_counts("dead-lettered by", figures["dead_lettered_by"]),
        f"({_mode_note(result)})",
    ]
    return "\n".join(lines)


async def run_show(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError("-n must be at least 1")
    settings = load_settings(OpsSettings)
    wanted = _filter(args)
    shown: list[dict[str, Any]] = []

    def decide(letter: DeadLetter) -> Verdict:
        if wanted.matches(letter):
            shown.append(describe(letter))
        return Verdict.KEEP

    async with open_broker(settings, name="rnr-ops dlq show") as broker:
        result = await _sweep(args, broker, "reading").run(
            decide, done=lambda: len(shown) >= args.n
        )
    text = "\n".join(_shown_text(i, len(shown), entry) for i, entry in enumerate(shown, 1))
    _emit(args, shown, text or f"no dead letter in {result.queue} matches {wanted.describe()}")
    return 0


def _shown_text(index: int, count: int, entry: dict[str, Any]) -> str:
    safe = _terminal_safe
    lines = [
        f"--- {index} of {count}: product {safe(entry['product_id'], 200)} · "
        f"{safe(entry['reason'], 200)} · {safe(entry['error_type'] or '-', 200)} · "
        f"failed {safe(entry['failed_at'] or '-', 200)}",
        *(
            f"{name}: {safe(entry[name])}"
            for name in ("message_id", "correlation_id", "content_type")
        ),
        "headers:",
        *(f"  {safe(name, 200)}: {safe(value)}" for name, value in entry["headers"].items()),
        "body:",
    ]
    body = entry["body"]
    rendered = body if isinstance(body, str) else json.dumps(body, indent=2)
    lines.extend(
        f"  {line}" for line in safe(rendered, 20 * SHOWN_CHARACTERS, lines=True).splitlines()
    )
    return "\n".join(lines)


class _Picker:
    """The redrive's choice: what the filter picks, up to the limit."""

    def __init__(self, wanted: Filter, limit: int | None, dry_run: bool) -> None:
        self.wanted = wanted
        self.limit = limit
        self.dry_run = dry_run
        self.picked: list[str] = []

    def done(self) -> bool:
        return self.limit is not None and len(self.picked) >= self.limit

    def __call__(self, letter: DeadLetter) -> Verdict:
        if not self.wanted.matches(letter):
            return Verdict.KEEP
        self.picked.append(letter.product_id or "(no id)")
        return Verdict.KEEP if self.dry_run else Verdict.REDRIVE


async def run_redrive(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be a positive number of messages per second")
    settings = load_settings(OpsSettings)
    picker = _Picker(_filter(args), args.limit, args.dry_run)
    async with open_broker(settings, name="rnr-ops dlq redrive") as broker:
        label = "checking" if args.dry_run else "redriving"
        sweep = _sweep(args, broker, label, rate=args.rate)
        try:
            result = await sweep.run(picker, done=picker.done, redrives=not args.dry_run)
        except OperatorError:
            _log_redrive(broker, picker, sweep.result, failed=True)
            raise
    _log_redrive(broker, picker, result, failed=False)
    payload = {
        "dry_run": args.dry_run,
        "filter": picker.wanted.describe(),
        "matched": len(picker.picked),
        "redriven": result.redriven,
        "product_ids": picker.picked,
        "to": {"exchange": broker.topology.exchange, "routing_key": broker.topology.routing_key},
        "sweep": result.as_dict(),
    }
    _emit(args, payload, _redrive_text(broker, picker, result))
    return 0


def _log_redrive(broker: Broker, picker: _Picker, result: SweepResult, *, failed: bool) -> None:
    if picker.dry_run:
        return
    logger.info(
        "dead letters redriven" if not failed else "redrive stopped part-way",
        extra={
            "dead_letter_queue": result.queue,
            "exchange": broker.topology.exchange,
            "routing_key": broker.topology.routing_key,
            "filter": picker.wanted.describe(),
            "redriven": result.redriven,
            "taken": result.taken,
            "depth": result.depth,
        },
    )


def _ids(ids: list[str]) -> str:
    listed = ", ".join(_terminal_safe(one, 200) for one in ids[:_IDS_SHOWN])
    return listed + (
        f", … ({len(ids) - _IDS_SHOWN:,} more; --json lists all)" if len(ids) > _IDS_SHOWN else ""
    )


def _redrive_text(broker: Broker, picker: _Picker, result: SweepResult) -> str:
    target = f"exchange {broker.topology.exchange!r}, routing key {broker.topology.routing_key!r}"
    if not picker.picked:
        return f"no dead letter in {result.queue} matches {picker.wanted.describe()}"
    if picker.dry_run:
        return (
            f"would redrive {len(picker.picked):,} of {result.depth:,} dead letters "
            f"({picker.wanted.describe()}) to {target}: {_ids(picker.picked)}"
        )
    kept = f" ({_mode_note(result)})" if result.kept else ""
    return (
        f"redrove {result.redriven:,} dead letters ({picker.wanted.describe()}) to {target}; "
        f"{result.depth - result.redriven:,} left in {result.queue}{kept}: {_ids(picker.picked)}"
    )


async def _confirmed(queue: str, count: int) -> bool:
    answer = f"purge {count} from {queue}"
    sys.stderr.write(
        f"{count:,} dead letters in {queue} will be deleted for good "
        "(to process them again, use `dlq redrive` instead).\n"
        f'Type "{answer}" to delete them, anything else cancels: '
    )
    sys.stderr.flush()
    # In a thread: the connection's heartbeats go on while the operator thinks.
    typed = await asyncio.to_thread(sys.stdin.readline)
    return typed.strip() == answer


async def run_purge(args: argparse.Namespace) -> int:
    if not args.yes and not sys.stdin.isatty():
        raise UsageError(
            "refusing to purge: there is no terminal to confirm on; pass --yes to purge "
            "from a script"
        )
    settings = load_settings(OpsSettings)
    async with open_broker(settings, name="rnr-ops dlq purge") as broker:
        queue = broker.topology.dead_letter_queue
        count = await broker.depth(queue)
        if count == 0:
            _emit(args, {"queue": queue, "deleted": 0}, f"{queue} is empty; nothing to purge")
            return 0
        if not args.yes and not await _confirmed(queue, count):
            sys.stderr.write("cancelled; nothing was deleted\n")
            return 1
        deleted = _Deleter(count)
        result = await _sweep(args, broker, "purging").run(deleted, done=deleted.done)
    logger.info(
        "dead letters purged", extra={"dead_letter_queue": queue, "deleted": result.deleted}
    )
    _emit(
        args,
        {"queue": queue, "deleted": result.deleted, "sweep": result.as_dict()},
        f"deleted {result.deleted:,} dead letters from {queue}",
    )
    return 0


class _Deleter:
    """Deletes the first ``count`` messages: those the operator confirmed, not any that
    arrived since."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.deleted = 0

    def done(self) -> bool:
        return self.deleted >= self.count

    def __call__(self, letter: DeadLetter) -> Verdict:
        self.deleted += 1
        return Verdict.DELETE
