"""Which output objects the post-processor has taken in: a JSON object in S3.

The checkpoint maps each output key to the ETag it had when it was processed (or
quarantined). An object is pending when its key is missing or its ETag differs, so a
worker overwriting a forecast (a redelivered message) gets it processed again. It is
written last in a run, after the tables: a run that dies before that is simply done
again, and since merging keeps the same winner for the same rows, the rerun publishes
the same table. Entries for objects no longer listed (expired by a lifecycle rule) are
dropped, so the checkpoint stays as large as the output prefix, not its history.

It also keeps the withdrawals: per gauge, the issuance time of its newest forecast
that no longer floods (from the worker's product records). They outlive the run that
read them, so a forecast file of an older issuance taken in later is withdrawn too.
A version-1 checkpoint predates the post-processor's contributions state; it is read
as empty, so every output is taken in again once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rnr.storage.s3 import ObjectInfo

Outcome = Literal["processed", "quarantined"]
FORMAT_VERSION = 2


class CheckpointInvalid(ValueError):
    """The checkpoint object is not one this code wrote."""


@dataclass(frozen=True)
class Entry:
    etag: str
    outcome: Outcome


@dataclass
class Checkpoint:
    entries: dict[str, Entry] = field(default_factory=dict)
    withdrawals: dict[str, dt.datetime] = field(default_factory=dict)

    def withdraw(self, lid: str, issuance_time: dt.datetime) -> bool:
        """Note that ``lid`` stopped flooding as of ``issuance_time``; True if that is
        newer than what was known."""
        known = self.withdrawals.get(lid)
        if known is not None and known >= issuance_time:
            return False
        self.withdrawals[lid] = issuance_time
        return True

    def forget_withdrawals_before(self, oldest: dt.datetime) -> None:
        """Withdrawals older than any forecast the table still keeps have no effect."""
        self.withdrawals = {lid: when for lid, when in self.withdrawals.items() if when >= oldest}

    def pending(self, listing: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        """Objects new or changed since they were seen, oldest first (then by key)."""
        changed = [
            info
            for info in listing
            if (entry := self.entries.get(info.key)) is None or entry.etag != info.etag
        ]
        return sorted(changed, key=lambda info: (info.last_modified, info.key))

    def record(self, info: ObjectInfo, outcome: Outcome) -> None:
        self.entries[info.key] = Entry(info.etag, outcome)

    def forget_missing(self, listing: Iterable[ObjectInfo]) -> int:
        """Drop entries of objects that are gone; returns how many."""
        present = {info.key for info in listing}
        gone = [key for key in self.entries if key not in present]
        for key in gone:
            del self.entries[key]
        return len(gone)

    def to_json(self, *, updated: dt.datetime) -> bytes:
        document = {
            "format_version": FORMAT_VERSION,
            "updated": updated.astimezone(dt.UTC).isoformat(),
            "objects": {
                key: {"etag": entry.etag, "outcome": entry.outcome}
                for key, entry in sorted(self.entries.items())
            },
            "withdrawals": {
                lid: when.astimezone(dt.UTC).isoformat()
                for lid, when in sorted(self.withdrawals.items())
            },
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        try:
            document = json.loads(data)
            if document.get("format_version") == 1:
                return cls()
            if document.get("format_version") != FORMAT_VERSION:
                raise CheckpointInvalid(
                    f"format_version {document.get('format_version')!r}, expected {FORMAT_VERSION}"
                )
            entries = {
                str(key): Entry(str(value["etag"]), _outcome(value["outcome"]))
                for key, value in document["objects"].items()
            }
            withdrawals = {
                str(lid): _aware(dt.datetime.fromisoformat(when))
                for lid, when in document["withdrawals"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if isinstance(error, CheckpointInvalid):
                raise
            raise CheckpointInvalid(f"unreadable checkpoint: {error!r}") from error
        return cls(entries, withdrawals)


def _aware(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise CheckpointInvalid(f"withdrawal time {when.isoformat()} has no time zone")
    return when


def _outcome(value: object) -> Outcome:
    if value == "processed":
        return "processed"
    if value == "quarantined":
        return "quarantined"
    raise CheckpointInvalid(f"unknown outcome {value!r}")
