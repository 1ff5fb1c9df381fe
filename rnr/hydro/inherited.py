"""The inherited-forecast table: what the flood maps read for each routed segment.

RNR_SPEC section 6. Every forecast file the worker writes covers one gauge and the main
stem below it; each segment "inherits" the gauge's forecast. The post-processor reduces
each file to one :class:`Contribution` per segment (the segment's own peak flow and the
time of that peak) and keeps, for every segment, the contributions of every gauge that
reaches it, following the operational consumer of RnR output (NWS HydroVIS's
"RFC-based max streamflow" and "max downstream streamflow" services):

* per (segment, gauge), the gauge's newest issuance;
* a gauge whose newer issuance no longer floods withdraws its contributions;
* across gauges, the maximum flow governs the segment's row (its gauge, reach, peak
  time); the status is the most severe category among them (no_flooding < action <
  minor < moderate < major, not string order), and ``inherited_rfc_forecasts`` lists
  every influencing forecast as "LID @ issue time (status)", the governing one first,
  then by distance from the segment.

A segment whose maximum falls on the forecast's last step is still rising there: its
``peak_at_horizon`` says so, and its flow is a lower bound, not a peak.

The reference system took all segments at the time of the file's single global maximum,
which understates every segment whose peak arrives later (all of those downstream); here
each segment keeps its own peak. Everything in this module is pure: no S3, no files.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from rnr.hydro.forecast_file import ForecastFile

CFS_PER_CMS = 35.3147
MILES_PER_KM = 0.621371
# Flood categories from least to most severe; anything else ranks below them all.
SEVERITY = ("no_flooding", "action", "minor", "moderate", "major")
_ISSUE_TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def severity(status: str) -> int:
    """The rank of a flood category in :data:`SEVERITY`; -1 for an unknown one."""
    return SEVERITY.index(status) if status in SEVERITY else -1


class ForecastFileInvalid(ValueError):
    """A forecast file that cannot yield rows: the post-processor quarantines it."""


@dataclass(frozen=True)
class Flowpath:
    """What the table takes from the hydrofabric's ``flowpaths`` layer for one segment."""

    length_km: float
    geometry_wkt: str


@dataclass(frozen=True)
class Contribution:
    """One gauge's forecast at one segment.

    Times are timezone-aware UTC. ``reference_time`` is the routed forecast's t0 (the
    file's ``file_reference_time``); ``issuance_time`` when the RFC issued the forecast
    (the HML product); ``peak_time`` when this segment's flow peaks (or the forecast
    ends, when ``peak_at_horizon``); ``update_time`` when it entered the table.
    ``miles_downstream`` is the distance along the main stem from the gauge's own
    segment to this one.
    """

    feature_id: int
    strm_order: int
    name: str
    state: str
    streamflow_cfs: float
    peak_time: dt.datetime
    peak_at_horizon: bool
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
    def label(self) -> str:
        """How ``inherited_rfc_forecasts`` names this forecast: "LID @ issue time (status)"."""
        issued = self.issuance_time.astimezone(dt.UTC).strftime(_ISSUE_TIME_FORMAT)
        return f"{self.rfc_location} @ {issued} ({self.max_status})"

    def issuance_order(self) -> tuple[dt.datetime, dt.datetime, float, int, str]:
        """Larger is newer, for one gauge at one segment: issuance, then reference
        time, then flow, severity and product id, so the choice never depends on the
        order the files were read in."""
        return (
            self.issuance_time,
            self.reference_time,
            self.streamflow_cfs,
            severity(self.max_status),
            self.product_id,
        )


@dataclass(frozen=True)
class InheritedRow:
    """One segment's row of the table: the governing contribution and its company.

    ``governing`` has the maximum flow among ``contributions`` (ties: the first gauge
    alphabetically); ``contributions`` holds every gauge's forecast that reaches the
    segment, the governing one first, then by distance (nearest gauge first), then by
    gauge.
    """

    governing: Contribution
    contributions: tuple[Contribution, ...]

    @property
    def feature_id(self) -> int:
        return self.governing.feature_id

    @property
    def feature_id_str(self) -> str:
        return f"wb-{self.feature_id}"

    @property
    def max_status(self) -> str:
        return max((c.max_status for c in self.contributions), key=severity)

    @property
    def inherited_rfc_forecasts(self) -> str:
        return "; ".join(contribution.label for contribution in self.contributions)

    @property
    def influencing_lids(self) -> str:
        """The gauges whose forecasts reach this segment, comma-separated, in row order."""
        return ",".join(contribution.rfc_location for contribution in self.contributions)

    @property
    def update_time(self) -> dt.datetime:
        """When the row last changed: the newest contribution's entry."""
        return max(contribution.update_time for contribution in self.contributions)


def forecast_rows(
    forecast: ForecastFile,
    flowpaths: Mapping[int, Flowpath],
    *,
    update_time: dt.datetime,
) -> list[Contribution]:
    """The contributions of one forecast file, in the file's segment order (upstream first).

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
    # Still rising at the end: the maximum is on the last step that holds a value.
    last_valid = seconds.size - 1 - np.argmax(~np.isnan(flow[:, ::-1]), axis=1)
    at_horizon = peak_index == last_valid
    lengths = np.array([flowpaths[int(i)].length_km for i in ids], dtype=np.float64)
    miles = np.concatenate(([0.0], np.cumsum(lengths[:-1]))) * MILES_PER_KM
    attributes = forecast.attributes
    rows = []
    for position, feature_id in enumerate(ids):
        offset = dt.timedelta(seconds=float(seconds[peak_index[position]]))
        rows.append(
            Contribution(
                feature_id=int(feature_id),
                strm_order=attributes.stream_order,
                name=attributes.name,
                state=attributes.state,
                streamflow_cfs=float(peak_flow[position]) * CFS_PER_CMS,
                peak_time=forecast.t0 + offset,
                peak_at_horizon=bool(at_horizon[position]),
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


def merge_newest(*contribution_sets: Iterable[Contribution]) -> list[Contribution]:
    """One contribution per (segment, gauge): the gauge's newest issuance.

    Pass the state so far first: on an exact tie the earlier one stays, so reading the
    same files twice leaves the state (update times included) unchanged. The result is
    ordered by segment, then gauge.
    """
    kept: dict[tuple[int, str], Contribution] = {}
    for contributions in contribution_sets:
        for contribution in contributions:
            key = (contribution.feature_id, contribution.rfc_location)
            current = kept.get(key)
            if current is None or contribution.issuance_order() > current.issuance_order():
                kept[key] = contribution
    return [kept[key] for key in sorted(kept)]


def withdraw(
    contributions: Iterable[Contribution], withdrawals: Mapping[str, dt.datetime]
) -> tuple[list[Contribution], list[Contribution]]:
    """The contributions not withdrawn, and those withdrawn.

    ``withdrawals`` maps a gauge to the issuance time of its newest forecast that no
    longer floods: every contribution of that gauge issued no later is withdrawn.
    """
    kept: list[Contribution] = []
    withdrawn: list[Contribution] = []
    for contribution in contributions:
        until = withdrawals.get(contribution.rfc_location)
        is_withdrawn = until is not None and contribution.issuance_time <= until
        (withdrawn if is_withdrawn else kept).append(contribution)
    return kept, withdrawn


def drop_expired(
    contributions: Iterable[Contribution], *, now: dt.datetime, max_age: dt.timedelta
) -> tuple[list[Contribution], int]:
    """The contributions whose reference time is within ``max_age`` of ``now``, and how
    many were dropped: a forecast nobody renewed stops painting the flood map."""
    if not (isinstance(max_age, dt.timedelta) and max_age.total_seconds() > 0):
        raise ValueError(f"max_age must be a positive timedelta, got {max_age!r}")
    oldest = now - max_age
    everything = list(contributions)
    kept = [c for c in everything if c.reference_time >= oldest]
    return kept, len(everything) - len(kept)


def segment_rows(contributions: Iterable[Contribution]) -> list[InheritedRow]:
    """The table: one row per segment, ordered by ``feature_id`` (see the module doc)."""
    by_segment: dict[int, list[Contribution]] = defaultdict(list)
    for contribution in contributions:
        by_segment[contribution.feature_id].append(contribution)
    rows = []
    for feature_id in sorted(by_segment):
        company = by_segment[feature_id]
        governing = min(company, key=lambda c: (-c.streamflow_cfs, c.rfc_location))
        others = sorted(
            (c for c in company if c is not governing),
            key=lambda c: (c.miles_downstream, c.rfc_location),
        )
        rows.append(InheritedRow(governing, (governing, *others)))
    return rows
