"""The post-processor's checkpoint: what is pending, what is forgotten, what is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from rnr.storage.s3 import ObjectInfo
from services.postproc.checkpoint import Checkpoint, CheckpointInvalid

T = dt.datetime(2025, 5, 5, 21, tzinfo=dt.UTC)


def info(key: str, etag: str = "e1", minutes: int = 0) -> ObjectInfo:
    return ObjectInfo(key, etag, T + dt.timedelta(minutes=minutes), 100)


def test_new_and_changed_objects_are_pending_oldest_first() -> None:
    checkpoint = Checkpoint()
    checkpoint.record(info("a"), "processed")
    checkpoint.record(info("b"), "quarantined")
    listing = [info("c", minutes=5), info("a"), info("b", etag="e2", minutes=1), info("d")]
    assert [i.key for i in checkpoint.pending(listing)] == ["d", "b", "c"]


def test_round_trip_through_json() -> None:
    checkpoint = Checkpoint()
    checkpoint.record(info("x/troute_output_202505052100.nc"), "processed")
    checkpoint.record(info("y/troute_output_202505052100.nc", "e9"), "quarantined")
    again = Checkpoint.from_json(checkpoint.to_json(updated=T))
    assert again.entries == checkpoint.entries


def test_forget_missing_drops_only_objects_no_longer_listed() -> None:
    checkpoint = Checkpoint()
    checkpoint.record(info("kept"), "processed")
    checkpoint.record(info("gone"), "processed")
    assert checkpoint.forget_missing([info("kept")]) == 1
    assert list(checkpoint.entries) == ["kept"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "unreadable checkpoint"),
        (b'{"format_version": 7, "objects": {}}', "format_version 7"),
        (b'{"format_version": 2}', "unreadable checkpoint"),
        (
            b'{"format_version": 2, "objects": {"k": {"etag": "e"}}, "withdrawals": {}}',
            "unreadable checkpoint",
        ),
        (
            b'{"format_version": 2, "objects": {"k": {"etag": "e", "outcome": "maybe"}},'
            b' "withdrawals": {}}',
            "unknown outcome 'maybe'",
        ),
        (
            b'{"format_version": 2, "objects": {}, "withdrawals": {"HPDT2": "2025-05-05T14:00"}}',
            "has no time zone",
        ),
    ],
)
def test_a_checkpoint_this_code_did_not_write_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(CheckpointInvalid, match=message):
        Checkpoint.from_json(data)


def test_a_version_1_checkpoint_is_read_as_empty_so_everything_is_read_again() -> None:
    data = b'{"format_version": 1, "objects": {"k": {"etag": "e", "outcome": "processed"}}}'
    assert Checkpoint.from_json(data) == Checkpoint()


def test_withdrawals_round_trip_and_only_move_forward() -> None:
    checkpoint = Checkpoint()
    t0 = dt.datetime(2025, 5, 5, 14, tzinfo=dt.UTC)
    assert checkpoint.withdraw("HPDT2", t0)
    assert not checkpoint.withdraw("HPDT2", t0 - dt.timedelta(hours=1))
    assert checkpoint.withdraw("HPDT2", t0 + dt.timedelta(hours=1))
    again = Checkpoint.from_json(checkpoint.to_json(updated=t0))
    assert again.withdrawals == {"HPDT2": t0 + dt.timedelta(hours=1)}
    again.forget_withdrawals_before(t0 + dt.timedelta(hours=2))
    assert again.withdrawals == {}
