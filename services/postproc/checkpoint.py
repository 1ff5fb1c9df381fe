"""Which output objects the post-processor has taken in: a JSON object in S3.

The checkpoint maps each output key to the ETag it had when it was processed (or
quarantined). An object is pending when its key is missing or its ETag differs, so a
worker overwriting a forecast (a redelivered message) gets it processed again. It is
written last in a run, after the tables: a run that dies before that is simply done
again, and since merging keeps the same winner for the same rows, the rerun publishes
the same table. Entries for objects no longer listed (expired by a lifecycle rule) are
dropped, so the checkpoint stays as large as the output prefix, not its history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rnr.storage.s3 import ObjectInfo

Outcome = Literal["processed", "quarantined"]
FORMAT_VERSION = 1


class CheckpointInvalid(ValueError):
    """The checkpoint object is not one this code wrote."""


@dataclass(frozen=True)
class Entry:
    etag: str
    outcome: Outcome


@dataclass
class Checkpoint:
    entries: dict[str, Entry] = field(default_factory=dict)

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
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        try:
            document = json.loads(data)
            if document.get("format_version") != FORMAT_VERSION:
                raise CheckpointInvalid(
                    f"format_version {document.get('format_version')!r}, expected {FORMAT_VERSION}"
                )
            entries = {
                str(key): Entry(str(value["etag"]), _outcome(value["outcome"]))
                for key, value in document["objects"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if isinstance(error, CheckpointInvalid):
                raise
            raise CheckpointInvalid(f"unreadable checkpoint: {error!r}") from error
        return cls(entries)


def _outcome(value: object) -> Outcome:
    if value == "processed":
        return "processed"
    if value == "quarantined":
        return "quarantined"
    raise CheckpointInvalid(f"unknown outcome {value!r}")
