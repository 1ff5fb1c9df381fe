"""The inherited-forecast table: each routed segment's peak, as the flood maps read it.

RNR_SPEC section 6. Every forecast file the worker writes covers one gauge and the main
stem below it; each segment "inherits" the gauge's forecast. For the flood-mapping
service the post-processor reduces each file to one row per segment, the segment's own
peak flow and the time of that peak, and keeps one row per segment across files: where
forecasts overlap, the latest reference time wins.

The reference system took all segments at the time of the file's single global maximum,
which understates every segment whose peak arrives later (all of those downstream); here
each segment keeps its own peak. Everything in this module is pure: no S3, no files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from rnr.hydro_io.netcdf import ForecastFile

CFS_PER_CMS = 35.3147
MILES_PER_KM = 0.621371


class ForecastFileInvalid(ValueError):
    """A forecast file that cannot yield rows: the post-processor quarantines it."""


@dataclass(frozen=True)
class Flowpath:
    """What the table takes from the hydrofabric's ``flowpaths`` layer for one segment."""

    length_km: float
    geometry_wkt: str


@dataclass(frozen=True)
class InheritedRow:
    """One segment's inherited forecast: the table's row.

    Times are timezone-aware UTC. ``reference_time`` is the routed forecast's t0 (the
    file's ``file_reference_time``); ``issuance_time`` when the RFC issued the forecast;
    ``peak_time`` when this segment's flow peaks; ``update_time`` when the row entered
    the table. ``miles_downstream`` is the distance along the main stem from the gauge's
    own segment to this one, which the text calls "miles upstream" (the gauge lies that
    far upstream of the segment).
    """

    feature_id: int
    strm_order: int
    name: str
    state: str
    streamflow_cfs: float
    peak_time: dt.datetime
    max_status: str
    reference_time: dt.datetime
    issuance_time: dt.datetime
    update_time: dt.datetime
    rfc_location: str
    rfc_reach_id: str
    miles_downstream: float
    geometry_wkt: str
    product_id: str

    @property
    def feature_id_str(self) -> str:
        return f"wb-{self.feature_id}"

    @property
    def inherited_rfc_forecasts(self) -> str:
        issued = self.issuance_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{self.max_status} issued {issued} at {self.rfc_location} "
            f"({self.rfc_reach_id} [order {self.strm_order}]) "
            f"{self.miles_downstream:.1f} miles upstream"
        )

    def precedence(self) -> tuple[dt.datetime, dt.datetime, float, str]:
        """Larger wins: the latest reference time, then the latest issuance, then the
        higher flow, then the alphabetically first gauge (``rfc_location`` is negated by
        :func:`merge_latest`). The order never depends on which file was read first,
        so rerunning over the same files gives the same table."""
        return (self.reference_time, self.issuance_time, self.streamflow_cfs, self.rfc_location)


def forecast_rows(
    forecast: ForecastFile,
    flowpaths: Mapping[int, Flowpath],
    *,
    update_time: dt.datetime,
) -> list[InheritedRow]:
    """The rows of one forecast file, in the file's segment order (upstream first).

    Relies on the worker writing ``feature_id`` in routing order, gauge segment first,
    as :func:`rnr.hydro.replace_and_route.route_forecast` returns it: the miles are
    the running sum of the lengths of the segments above each one.

    Raises :class:`ForecastFileInvalid` for a file without time steps, a segment whose
    flow is missing at every step, or a segment that ``flowpaths`` lacks (the output
    was routed on another hydrofabric than the one the post-processor reads).
    """
    ids = np.asarray(forecast.arrays["feature_id"], dtype=np.int64)
    flow = np.asarray(forecast.arrays["flow"], dtype=np.float64)
    seconds = np.asarray(forecast.arrays["time"], dtype=np.float64)
    if flow.shape != (ids.size, seconds.size) or seconds.size == 0:
        raise ForecastFileInvalid(
            f"flow has shape {flow.shape}, expected ({ids.size} segments, "
            f"{seconds.size} times) with at least one time"
        )
    all_missing = np.isnan(flow).all(axis=1)
    if all_missing.any():
        raise ForecastFileInvalid(
            f"segments with no flow value at any time: wb-{ids[all_missing][0]}"
            + (f" and {int(all_missing.sum()) - 1} more" if all_missing.sum() > 1 else "")
        )
    unknown = [int(feature_id) for feature_id in ids if int(feature_id) not in flowpaths]
    if unknown:
        raise ForecastFileInvalid(
            f"{len(unknown)} of {ids.size} segments are not in the flowpaths layer "
            f"(first: wb-{unknown[0]}); was it routed on another hydrofabric?"
        )

    peak_index = np.nanargmax(flow, axis=1)
    peak_flow = flow[np.arange(ids.size), peak_index]
    lengths = np.array([flowpaths[int(i)].length_km for i in ids], dtype=np.float64)
    miles = np.concatenate(([0.0], np.cumsum(lengths[:-1]))) * MILES_PER_KM
    attributes = forecast.attributes
    rows = []
    for position, feature_id in enumerate(ids):
        offset = dt.timedelta(seconds=float(seconds[peak_index[position]]))
        rows.append(
            InheritedRow(
                feature_id=int(feature_id),
                strm_order=attributes.stream_order,
                name=attributes.name,
                state=attributes.state,
                streamflow_cfs=float(peak_flow[position]) * CFS_PER_CMS,
                peak_time=forecast.t0 + offset,
                max_status=attributes.max_status,
                reference_time=forecast.t0,
                issuance_time=attributes.issuance_time,
                update_time=update_time,
                rfc_location=attributes.rfc_location,
                rfc_reach_id=attributes.rfc_reach_id,
                miles_downstream=float(miles[position]),
                geometry_wkt=flowpaths[int(feature_id)].geometry_wkt,
                product_id=attributes.product_id,
            )
        )
    return rows


def merge_latest(*row_sets: Iterable[InheritedRow]) -> list[InheritedRow]:
    """One row per segment: the row of highest :meth:`InheritedRow.precedence`.

    Pass the table so far first: on an exact tie the earlier row stays, so reading the
    same files twice leaves the table (update times included) unchanged. The result is
    ordered by ``feature_id``.
    """
    kept: dict[int, InheritedRow] = {}
    for rows in row_sets:
        for row in rows:
            current = kept.get(row.feature_id)
            if current is None or _outranks(row, current):
                kept[row.feature_id] = row
    return [kept[feature_id] for feature_id in sorted(kept)]


def _outranks(candidate: InheritedRow, current: InheritedRow) -> bool:
    new, old = candidate.precedence(), current.precedence()
    if new[:3] != old[:3]:
        return new[:3] > old[:3]
    # Same forecast times and flow: the alphabetically first gauge, for determinism.
    return new[3] < old[3]


def drop_expired(
    rows: list[InheritedRow], *, now: dt.datetime, max_age: dt.timedelta
) -> tuple[list[InheritedRow], int]:
    """The rows whose reference time is within ``max_age`` of ``now``, and how many
    were dropped: a forecast nobody renewed stops painting the flood map."""
    if not (isinstance(max_age, dt.timedelta) and max_age.total_seconds() > 0):
        raise ValueError(f"max_age must be a positive timedelta, got {max_age!r}")
    oldest = now - max_age
    kept = [row for row in rows if row.reference_time >= oldest]
    return kept, len(rows) - len(kept)
