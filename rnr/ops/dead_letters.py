"""What a dead letter says about itself, which ones a filter picks, and the copy a redrive sends.

A dead letter arrives in the DLQ by one of two roads, and says why in different places:

* the worker dead-lettered it: ``x-rnr-dead-letter-reason`` (``permanent``,
  ``attempts_exhausted``, ``invalid_header``) with ``x-rnr-error``, ``x-rnr-error-type``
  and ``x-rnr-failed-at``;
* the broker did (the work queue's delivery limit: a message that kept killing
  workers): RabbitMQ's own ``x-last-death-reason`` (3.13+), else the newest entry of
  ``x-death``, else ``x-first-death-reason``; e.g. ``delivery_limit``.

A message retried before it died carries ``x-death`` entries from the retry tiers too
(reason ``expired``), so the worker's header is read first and the broker's newest
death after it. Everything here is pure: it reads mappings and bytes, never a broker.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rnr.messaging.consumer import encodable_headers
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    PREVIOUS_ERROR_HEADER,
)

# RabbitMQ's headers (they belong to the broker): why and where it dead-lettered a
# message, and how often a quorum queue delivered this copy.
DEATH_HEADER = "x-death"
FIRST_DEATH_REASON_HEADER = "x-first-death-reason"
LAST_DEATH_REASON_HEADER = "x-last-death-reason"
DELIVERY_COUNT_HEADER = "x-delivery-count"
BROKER_HEADERS = (
    DEATH_HEADER,
    FIRST_DEATH_REASON_HEADER,
    "x-first-death-queue",
    "x-first-death-exchange",
    LAST_DEATH_REASON_HEADER,
    "x-last-death-queue",
    "x-last-death-exchange",
    DELIVERY_COUNT_HEADER,
)
# The failure the worker recorded: a redriven copy starts clean of it.
FAILURE_HEADERS = (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    DEAD_LETTER_REASON_HEADER,
)
UNKNOWN = "unknown"
# x-rnr-error is cut to this length by the worker; the previous error keeps as much.
_ERROR_CHARACTERS = 1000


class MessageLike(Protocol):
    """The parts of an AMQP delivery this module reads (aio-pika's IncomingMessage)."""

    body: bytes
    headers: Any
    message_id: str | None
    correlation_id: str | None
    content_type: str | None
    timestamp: dt.datetime | None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as read from the queue; its headers exactly as they arrived."""

    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    content_type: str | None = None
    timestamp: dt.datetime | None = None

    @classmethod
    def of(cls, message: MessageLike) -> DeadLetter:
        return cls(
            body=message.body,
            headers=dict(message.headers or {}),
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            timestamp=message.timestamp,
        )

    def _newest_death(self) -> Mapping[str, Any]:
        deaths = self.headers.get(DEATH_HEADER)
        if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
            return deaths[0]
        return {}

    @property
    def dead_lettered_by(self) -> str:
        """``worker``, ``broker`` or ``unknown`` (a message someone published here)."""
        if self.headers.get(DEAD_LETTER_REASON_HEADER) is not None:
            return "worker"
        if self._broker_reason() is not None:
            return "broker"
        return UNKNOWN

    def _broker_reason(self) -> str | None:
        for value in (
            self.headers.get(LAST_DEATH_REASON_HEADER),
            self._newest_death().get("reason"),
            self.headers.get(FIRST_DEATH_REASON_HEADER),
        ):
            if value is not None:
                return _text(value)
        return None

    @property
    def reason(self) -> str:
        """Why it is here: the worker's reason, else the broker's, else ``unknown``."""
        return (
            _text(self.headers.get(DEAD_LETTER_REASON_HEADER)) or self._broker_reason() or UNKNOWN
        )

    @property
    def error_type(self) -> str | None:
        return _text(self.headers.get(ERROR_TYPE_HEADER))

    @property
    def error(self) -> str | None:
        return _text(self.headers.get(ERROR_HEADER))

    @property
    def failed_at(self) -> dt.datetime | None:
        """When it failed: ``x-rnr-failed-at``, else the broker's newest death, else the
        message's timestamp; None when it carries none of them."""
        stamp = _text(self.headers.get(FAILED_AT_HEADER))
        if stamp:
            try:
                return _aware(dt.datetime.fromisoformat(stamp))
            except ValueError:
                pass
        died = self._newest_death().get("time")
        if isinstance(died, dt.datetime):
            return _aware(died)
        return _aware(self.timestamp) if self.timestamp is not None else None

    @property
    def product_id(self) -> str | None:
        """The product: ``message_id`` (the producer sets it to the product id), else
        ``correlation_id``, else the body's ``id``."""
        if self.message_id or self.correlation_id:
            return self.message_id or self.correlation_id
        try:
            payload = json.loads(self.body)
        except (ValueError, RecursionError):
            return None
        value = payload.get("id") if isinstance(payload, dict) else None
        return value if isinstance(value, str) else None

    def previous_error(self) -> str:
        """What ``x-rnr-previous-error`` says on a redriven copy: the worker's error, or
        the broker's reason and queue, or the error an earlier redrive kept."""
        if self.error:
            return self.error[:_ERROR_CHARACTERS]
        broker_reason = self._broker_reason()
        if broker_reason is not None:
            queue = _text(self._newest_death().get("queue"))
            where = f" in queue {queue}" if queue else ""
            return f"dead-lettered by the broker: {broker_reason}{where}"
        earlier = _text(self.headers.get(PREVIOUS_ERROR_HEADER))
        return earlier[:_ERROR_CHARACTERS] if earlier else f"dead-lettered ({UNKNOWN} reason)"


def redrive_headers(letter: DeadLetter) -> dict[str, Any]:
    """The headers of the copy a redrive publishes to the work queue.

    The attempt count starts again (no ``x-rnr-attempt``: attempt 1), the old failure
    and the broker's dead-letter history are dropped, and the error is kept in
    ``x-rnr-previous-error``; every other header travels on, made encodable.
    """
    headers = encodable_headers(letter.headers)
    for name in (*FAILURE_HEADERS, *BROKER_HEADERS):
        headers.pop(name, None)
    headers[PREVIOUS_ERROR_HEADER] = letter.previous_error()
    return headers


def kept_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers of a dead letter put back in the DLQ as a fresh copy: all of them but
    the quorum queue's delivery count, which belongs to the copy taken out."""
    kept = encodable_headers(headers)
    kept.pop(DELIVERY_COUNT_HEADER, None)
    return kept


@dataclass(frozen=True)
class Filter:
    """Which dead letters a redrive takes: each given set must contain the letter's value
    (any of the reasons, any of the error types, any of the product ids); an empty set
    takes every letter."""

    reasons: frozenset[str] = frozenset()
    error_types: frozenset[str] = frozenset()
    product_ids: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        reasons: Iterable[str] | None = None,
        error_types: Iterable[str] | None = None,
        product_ids: Iterable[str] | None = None,
    ) -> Filter:
        return cls(
            frozenset(reasons or ()), frozenset(error_types or ()), frozenset(product_ids or ())
        )

    @property
    def takes_everything(self) -> bool:
        return not (self.reasons or self.error_types or self.product_ids)

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (not self.error_types or (letter.error_type or "") in self.error_types)
            and (not self.product_ids or (letter.product_id or "") in self.product_ids)
        )

    def describe(self) -> str:
        parts = [
            f"{name} in {sorted(values)}"
            for name, values in (
                ("reason", self.reasons),
                ("error type", self.error_types),
                ("product id", self.product_ids),
            )
            if values
        ]
        return " and ".join(parts) or "every dead letter"


@dataclass
class Tally:
    """Counts by reason and error type, and the oldest and newest failure."""

    messages: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_error_type: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None
    undated: int = 0

    def add(self, letter: DeadLetter) -> None:
        self.messages += 1
        self.by_reason[letter.reason] += 1
        self.by_error_type[letter.error_type or "(none)"] += 1
        self.by_source[letter.dead_lettered_by] += 1
        when = letter.failed_at
        if when is None:
            self.undated += 1
            return
        self.oldest = when if self.oldest is None else min(self.oldest, when)
        self.newest = when if self.newest is None else max(self.newest, when)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "by_reason": dict(self.by_reason.most_common()),
            "by_error_type": dict(self.by_error_type.most_common()),
            "dead_lettered_by": dict(self.by_source.most_common()),
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "undated": self.undated,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dt.datetime):
        return _aware(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def describe(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as JSON-ready data: properties, what it says about itself, headers
    and body (parsed when it is JSON, else text)."""
    try:
        body: Any = json.loads(letter.body)
    except (ValueError, RecursionError):
        body = letter.body.decode("utf-8", errors="replace")
    failed_at = letter.failed_at
    return {
        "message_id": letter.message_id,
        "correlation_id": letter.correlation_id,
        "content_type": letter.content_type,
        "timestamp": _jsonable(letter.timestamp),
        "product_id": letter.product_id,
        "reason": letter.reason,
        "dead_lettered_by": letter.dead_lettered_by,
        "error_type": letter.error_type,
        "failed_at": failed_at.isoformat() if failed_at else None,
        "headers": _jsonable(dict(sorted(letter.headers.items()))),
        "body": body,
    }
