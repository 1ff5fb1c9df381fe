"""The span of dates the pipeline accepts from outside, and the check that enforces it.

Products and forecasts arrive with ISO 8601 times that pydantic reads faithfully, even
``0001-01-01T00:00:00+05:00``, which cannot be shifted to UTC (OverflowError), or
``9999-12-31T23:00:00-05:00``. A time outside this span is an error in the input,
reported as a ``ValueError`` so the model that holds it rejects it where it enters.
"""

from __future__ import annotations

import datetime as dt

EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def within_span(value: dt.datetime) -> dt.datetime:
    """``value`` unchanged if, in UTC, it lies in [EARLIEST, LATEST); else ValueError."""
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(
            f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} UTC, "
            f"got {value.isoformat()}"
        )
    return value
