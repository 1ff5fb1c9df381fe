"""Unit tests for devstack.local.scheduler: parsing SCHEDULER_TARGETS and the CLI's exit codes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from devstack.local import scheduler
from devstack.local.scheduler import Target, parse_targets


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_one_target() -> None:
    assert parse_targets("producer=http://producer:8080/invoke@60") == [
        Target("producer", "http://producer:8080/invoke", 60.0)
    ]


def test_several_targets_with_spaces_and_empty_entries() -> None:
    spec = (
        " producer = http://producer:8080/invoke @60 ,, postproc=http://postproc:8080/invoke@300,\n"
    )
    assert parse_targets(spec) == [
        Target("producer", "http://producer:8080/invoke", 60.0),
        Target("postproc", "http://postproc:8080/invoke", 300.0),
    ]


def test_fractional_period() -> None:
    [target] = parse_targets("fast=http://127.0.0.1:9/invoke@0.5")
    assert target.period_seconds == 0.5


def test_url_may_hold_at_and_equals() -> None:
    """The name ends at the first '=', the period starts after the last '@'."""
    [target] = parse_targets("p=http://user:pw@host:8080/invoke?a=b@15")
    assert target == Target("p", "http://user:pw@host:8080/invoke?a=b", 15.0)


def test_target_is_frozen() -> None:
    target = Target("p", "http://x", 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.name = "q"  # type: ignore[misc]


@pytest.mark.parametrize("spec", ["", "   ", ",", " , ,, "])
def test_empty_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="SCHEDULER_TARGETS is empty"):
        parse_targets(spec)


@pytest.mark.parametrize(
    "entry",
    [
        "producer",
        "http://producer:8080/invoke@60",
        "producer=http://producer:8080/invoke",
        "producer=http://producer:8080/invoke@soon",
        "producer=http://producer:8080/invoke@",
    ],
)
def test_bad_entry_is_quoted(entry: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_targets(f"ok=http://ok/invoke@5,{entry}")
    assert str(caught.value) == f"SCHEDULER_TARGETS entry {entry!r} is not name=url@seconds"
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    "entry",
    [
        "p=http://x/invoke@0",
        "p=http://x/invoke@-5",
        "p=http://x/invoke@nan",
        "p=http://x/invoke@inf",
        "=http://x/invoke@5",
        "p=@5",
    ],
)
def test_nonsense_values_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_targets(entry)


def test_main_exits_2_on_a_bad_spec(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_root_logging: None,
) -> None:
    monkeypatch.setenv("SCHEDULER_TARGETS", "producer@60")
    assert scheduler.main(["--once"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnr-scheduler: SCHEDULER_TARGETS entry 'producer@60'")


def test_main_exits_2_when_unset(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_root_logging: None,
) -> None:
    monkeypatch.delenv("SCHEDULER_TARGETS", raising=False)
    assert scheduler.main(["--once"]) == 2
    assert "SCHEDULER_TARGETS is empty" in capsys.readouterr().err
