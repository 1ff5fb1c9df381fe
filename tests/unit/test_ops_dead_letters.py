"""The operators' tool without a broker: parsing, what a dead letter says, the redrive copy."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from rnr.messaging.consumer import attempt_of
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    PREVIOUS_ERROR_HEADER,
)
from rnr.messaging.topology import Topology
from rnr.ops.broker import Broker
from rnr.ops.cli import build_parser, main
from rnr.ops.dead_letters import DeadLetter, Filter, Tally, describe, kept_headers, redrive_headers
from rnr.ops.progress import Progress
from tests.support.messages import product_message

FAILED = dt.datetime(2025, 5, 5, 19, 30, tzinfo=dt.UTC)


def worker_dead_letter(product_id: str = "p-1", **headers: object) -> DeadLetter:
    return DeadLetter(
        body=product_message(product_id).to_body(),
        headers={
            ATTEMPT_HEADER: 5,
            ERROR_HEADER: "GET https://api.weather.gov/products/p-1 failed 4 times, last: HTTP 503",
            ERROR_TYPE_HEADER: "UpstreamUnavailable",
            FAILED_AT_HEADER: FAILED.isoformat(),
            DEAD_LETTER_REASON_HEADER: "attempts_exhausted",
            "x-trace": "kept",
            **headers,
        },
        message_id=product_id,
        correlation_id=product_id,
        content_type="application/json",
    )


def broker_dead_letter() -> DeadLetter:
    """What RabbitMQ delivers after the work queue's delivery limit: a message that was
    retried once (a tier's TTL expired) and then kept killing workers."""
    died = dt.datetime(2025, 5, 6, 8, 0, 0)
    return DeadLetter(
        body=product_message("p-2").to_body(),
        headers={
            ATTEMPT_HEADER: 2,
            ERROR_HEADER: "an earlier transient failure",
            "x-death": [
                {"queue": "rnr.products", "reason": "delivery_limit", "count": 1, "time": died},
                {"queue": "rnr.products.retry.5000ms", "reason": "expired", "count": 1},
            ],
            "x-first-death-reason": "expired",
            "x-first-death-queue": "rnr.products.retry.5000ms",
            "x-delivery-count": 3,
        },
        message_id="p-2",
    )


def test_a_worker_dead_letter_says_why_what_and_when() -> None:
    letter = worker_dead_letter()
    assert letter.reason == "attempts_exhausted"
    assert letter.dead_lettered_by == "worker"
    assert letter.error_type == "UpstreamUnavailable"
    assert letter.failed_at == FAILED
    assert letter.product_id == "p-1"


def test_a_broker_dead_letter_is_read_from_its_newest_death_not_its_first() -> None:
    letter = broker_dead_letter()
    assert letter.reason == "delivery_limit"
    assert letter.dead_lettered_by == "broker"
    assert letter.failed_at == dt.datetime(2025, 5, 6, 8, tzinfo=dt.UTC)
    assert letter.error_type is None
    # RabbitMQ 3.13+ names the newest death in a header of its own: it comes first.
    newer = DeadLetter(body=b"{}", headers={**letter.headers, "x-last-death-reason": "rejected"})
    assert newer.reason == "rejected"


def test_the_time_falls_back_to_the_message_timestamp_and_the_id_to_the_body() -> None:
    stamped = dt.datetime(2025, 1, 2, 3, 4, 5)
    letter = DeadLetter(body=product_message("p-body").to_body(), timestamp=stamped)
    assert letter.failed_at == stamped.replace(tzinfo=dt.UTC)
    assert letter.product_id == "p-body"
    assert letter.reason == "unknown"
    assert DeadLetter(body=b"\xff not json").product_id is None


def test_a_redriven_copy_starts_at_attempt_one_and_keeps_only_the_old_error() -> None:
    letter = worker_dead_letter(**{ATTEMPT_HEADER: "not a number"})
    headers = redrive_headers(letter)
    for dropped in (
        ATTEMPT_HEADER,
        ERROR_HEADER,
        ERROR_TYPE_HEADER,
        FAILED_AT_HEADER,
        DEAD_LETTER_REASON_HEADER,
    ):
        assert dropped not in headers
    assert headers[PREVIOUS_ERROR_HEADER] == letter.headers[ERROR_HEADER]
    assert headers["x-trace"] == "kept"
    # The worker reads no attempt header as attempt 1: the copy gets every retry again,
    # and one that was dead-lettered for an unusable header is usable now.
    assert attempt_of(headers) == 1


def test_a_broker_dead_letter_redriven_names_the_broker_reason_and_sheds_its_history() -> None:
    headers = redrive_headers(broker_dead_letter())
    assert headers[PREVIOUS_ERROR_HEADER] == "an earlier transient failure"
    assert not {"x-death", "x-first-death-reason", "x-first-death-queue", "x-delivery-count"} & set(
        headers
    )
    bare = DeadLetter(body=b"{}", headers={"x-death": [{"reason": "delivery_limit", "queue": "q"}]})
    assert redrive_headers(bare)[PREVIOUS_ERROR_HEADER] == (
        "dead-lettered by the broker: delivery_limit in queue q"
    )


def test_a_copy_kept_in_the_dlq_loses_only_its_delivery_count() -> None:
    letter = broker_dead_letter()
    kept = kept_headers(letter.headers)
    assert "x-delivery-count" not in kept
    assert kept["x-death"][0]["reason"] == "delivery_limit"
    assert kept[ATTEMPT_HEADER] == 2


def test_filters_combine_with_and_and_repeat_with_or() -> None:
    permanent = worker_dead_letter("p-a", **{DEAD_LETTER_REASON_HEADER: "permanent"})
    exhausted = worker_dead_letter("p-b")
    limit = broker_dead_letter()
    letters = [permanent, exhausted, limit]

    def picked(wanted: Filter) -> list[str | None]:
        return [letter.product_id for letter in letters if wanted.matches(letter)]

    assert picked(Filter.of()) == ["p-a", "p-b", "p-2"]
    assert picked(Filter.of(reasons=["permanent", "delivery_limit"])) == ["p-a", "p-2"]
    assert picked(Filter.of(error_types=["UpstreamUnavailable"])) == ["p-a", "p-b"]
    assert picked(Filter.of(["attempts_exhausted"], ["UpstreamUnavailable"], ["p-a"])) == []
    assert picked(Filter.of(product_ids=["p-b", "p-2"])) == ["p-b", "p-2"]


def test_the_tally_counts_and_spans_the_failures() -> None:
    tally = Tally()
    for letter in (worker_dead_letter(), broker_dead_letter(), DeadLetter(body=b"x")):
        tally.add(letter)
    figures = tally.as_dict()
    assert figures["messages"] == 3
    assert figures["by_reason"] == {"attempts_exhausted": 1, "delivery_limit": 1, "unknown": 1}
    assert figures["by_error_type"] == {"UpstreamUnavailable": 1, "(none)": 2}
    assert figures["dead_lettered_by"] == {"worker": 1, "broker": 1, "unknown": 1}
    assert figures["oldest"] == FAILED.isoformat()
    assert figures["newest"] == "2025-05-06T08:00:00+00:00"
    assert figures["undated"] == 1


def test_describe_is_json_ready_whatever_the_headers_hold() -> None:
    entry = describe(broker_dead_letter())
    text = json.dumps(entry)
    assert entry["body"]["id"] == "p-2"
    assert entry["headers"]["x-death"][0]["time"] == "2025-05-06T08:00:00+00:00"
    assert "delivery_limit" in text


def test_the_parser_takes_every_command_and_its_filters() -> None:
    parser = build_parser()
    command = (
        "dlq redrive --reason permanent --reason invalid_header --error-type KeyError "
        "--product-id p-1 --limit 5 --dry-run --rate 50 --json --log-level ERROR"
    )
    args = parser.parse_args(command.split(" "))
    assert args.reason == ["permanent", "invalid_header"]
    assert args.error_type == ["KeyError"]
    assert (args.product_id, args.limit, args.dry_run, args.rate) == (["p-1"], 5, True, 50.0)
    assert (args.json, args.release, args.log_level) == (True, "auto", "ERROR")
    # A level given before the subcommand is not overwritten by the subcommand's parser.
    assert parser.parse_args(["--log-level", "DEBUG", "dlq", "stats"]).log_level == "DEBUG"
    assert parser.parse_args(["dlq", "show"]).n == 10
    assert parser.parse_args(["dlq", "purge", "--yes"]).yes
    assert parser.parse_args(["replay", "abc-123"]).product_id == "abc-123"
    with pytest.raises(SystemExit):
        parser.parse_args(["dlq", "redrive", "--release", "sideways"])


@pytest.mark.parametrize(
    "argv",
    [
        ["dlq", "redrive", "--limit", "0"],
        ["dlq", "redrive", "--rate", "-1"],
        ["dlq", "show", "-n", "0"],
        ["replay", "../../etc/passwd"],
    ],
)
def test_bad_values_end_as_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnr-ops: ")


def test_purge_refuses_without_a_terminal_or_yes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("purge 3 from rnr.products.dlq\n"))
    assert main(["dlq", "purge"]) == 2
    assert "pass --yes" in capsys.readouterr().err


def test_release_mode_follows_queue_type_and_broker_version() -> None:
    def mode(queue_type: str, version: str) -> str:
        topology = Topology("rnr", "rnr.products", queue_type, (5.0,))  # type: ignore[arg-type]
        return Broker(None, topology, "amqp://x", version, 5.0).release_mode()  # type: ignore[arg-type]

    assert mode("quorum", "3.10.8") == "republish"
    assert mode("quorum", "4.2.1") == "republish"
    assert mode("quorum", "4.3.0") == "requeue"
    assert mode("classic", "3.10.8") == "requeue"


def test_progress_writes_plain_lines_off_a_terminal_at_most_once_a_second() -> None:
    stream = io.StringIO()
    progress = Progress("redriving q", 100, stream=stream)
    for _ in range(100):
        progress.advance()
    progress.finish()
    assert stream.getvalue() == ""  # a pass under a second shows nothing
    assert progress.render().startswith("redriving q [" + "#" * 30 + "] 100/100 100%")


def test_text_output_escapes_what_a_terminal_would_obey_and_cuts_huge_values() -> None:
    """A dead letter's headers and body come from whoever published it: printed as they
    are, an escape sequence would recolour or rewrite the operator's terminal."""
    from rnr.ops.dlq import SHOWN_CHARACTERS, _shown_text

    entry = {
        "product_id": "p\x1b]0;pwned\x07",
        "reason": "permanent\r\nx-rnr-error: forged",
        "error_type": "E",
        "failed_at": None,
        "message_id": "m",
        "correlation_id": "c",
        "content_type": None,
        "headers": {"x-rnr-error": "E" * (SHOWN_CHARACTERS + 10), "x\x1b[2J": 1},
        "body": "line one\n\x1b[31mline two",
    }
    text = _shown_text(1, 1, entry)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "p\\x1b]0;pwned\\x07" in text
    assert "permanent\\x0d\\x0ax-rnr-error: forged" in text  # no forged header line
    assert "10 more characters; --json shows all" in text
    assert "  line one\n  \\x1b[31mline two" in text  # the body keeps its lines
