"""From NWPS answers to the RFC forecast that Replace and Route routes (RNR_SPEC section 2).

Pure: pydantic models of the gauge and stage-flow answers, unit conversion, the
flood-category gate and the skip reasons. Fetching them is ``rnr.upstream.nwps``'s job.

The answers are input from outside, so what would break routing or a key is checked
here and becomes a ``Skipped`` with reason ``invalid_data`` and a detail naming the
problem: an answer for another gauge than the one asked for, a reach id that is not
digits, a forecast with fewer than two values, times out of order or beyond the
calendar, flows that are not finite or not physical. The forecast's gauge id is the
one the product named (already validated), never the one in the answer.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from rnr.core import identifiers
from rnr.core.identifiers import InvalidIdentifier
from rnr.core.timestamps import within_span

CUBIC_FEET_TO_M3 = 0.028316846592
FLOW_UNITS_TO_M3_S = {"kcfs": 1000.0 * CUBIC_FEET_TO_M3, "cfs": CUBIC_FEET_TO_M3}
MISSING = -999.0
FLOODING_CATEGORIES = frozenset({"action", "minor", "moderate", "major"})
# The flood categories of a gauge's thresholds, least severe first.
FLOOD_CATEGORY_ORDER = ("action", "minor", "moderate", "major")
# Forecast offices outside the contiguous US, which the CONUS hydrofabric does not cover.
OUTSIDE_CONUS_WFOS = frozenset({"AFC", "AFG", "AJK", "GUM", "HFO", "SJU"})
# Bounds of a routable forecast. The largest flow ever measured (the Amazon, about
# 3.4e5 m3/s) times three; RFC forecasts reach 10 days, and routing allocates every
# 5-minute step of the span, so a span of years is refused before it costs memory.
MAX_FLOW_M3_S = 1.0e6
MAX_FORECAST_SPAN = dt.timedelta(days=31)


class SkipReason(enum.StrEnum):
    """Why a gauge of a product is not routed; recorded per gauge in logs and metrics."""

    UNKNOWN_GAUGE = "unknown_gauge"
    OUTSIDE_CONUS = "outside_conus"
    NOT_FLOODING = "not_flooding"
    NO_REACH_ID = "no_reach_id"
    REACH_NOT_IN_HYDROFABRIC = "reach_not_in_hydrofabric"
    UNKNOWN_FLOW_UNITS = "unknown_flow_units"
    NO_VALID_FLOW = "no_valid_flow"
    INVALID_DATA = "invalid_data"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Office(_Model):
    abbreviation: str = ""
    name: str = ""


class GaugeStatusPoint(_Model):
    flood_category: str | None = Field(None, alias="floodCategory")


class GaugeStatus(_Model):
    observed: GaugeStatusPoint = GaugeStatusPoint()
    forecast: GaugeStatusPoint = GaugeStatusPoint()


class FloodLevel(_Model):
    """One category's threshold in ``flood.categories``: stage in ``flood.stageUnits``
    (ft), flow in ``flood.flowUnits`` (kcfs or cfs); NWPS gives -9999 where undefined."""

    stage: float | None = None
    flow: float | None = None


class FloodCategories(_Model):
    action: FloodLevel | None = None
    minor: FloodLevel | None = None
    moderate: FloodLevel | None = None
    major: FloodLevel | None = None


class Flood(_Model):
    """``flood`` of the gauge answer: the units and the thresholds of each category.

    NWPS also gives ``crests``, ``impacts`` and ``lowWaters`` here; nothing uses them.
    """

    stage_units: str = Field("", alias="stageUnits")
    flow_units: str = Field("", alias="flowUnits")
    categories: FloodCategories = FloodCategories()


@dataclass(frozen=True)
class FloodThreshold:
    """A flood category's threshold flow, converted to m3/s, with the stage NWPS gives
    for it (``None`` where undefined) and the stage's units."""

    category: str
    flow_m3_s: float
    stage: float | None
    stage_units: str


class Gauge(_Model):
    """``GET /gauges/{lid}``: the fields Replace and Route uses."""

    lid: str
    name: str = ""
    state: Office = Office()
    rfc: Office = Office()
    wfo: Office = Office()
    reach_id: str = Field("", alias="reachId")
    downstream_lid: str | None = Field(None, alias="downstreamLid")
    status: GaugeStatus = GaugeStatus()
    # Only drawn by the analysts' tool: an answer without it, or with one the model
    # cannot read, has no thresholds, and the worker routes it all the same.
    flood: Flood | None = None

    @field_validator("flood", mode="wrap")
    @classmethod
    def _unreadable_flood_is_none(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return None

    @property
    def forecast_flood_category(self) -> str:
        return self.status.forecast.flood_category or "not_defined"

    def flood_thresholds(self) -> tuple[FloodThreshold, ...]:
        """The categories with a defined threshold flow, least severe first, in m3/s.

        A flow that is missing, not finite, or zero or less (NWPS's -9999) is undefined
        and its category is left out, as are all of them when the flow units are neither
        kcfs nor cfs. A stage that is not finite or at most -999 (NWPS's -9999) is ``None``.
        """
        if self.flood is None:
            return ()
        factor = FLOW_UNITS_TO_M3_S.get(self.flood.flow_units.strip().lower())
        if factor is None:
            return ()
        thresholds = []
        for category in FLOOD_CATEGORY_ORDER:
            level: FloodLevel | None = getattr(self.flood.categories, category)
            if level is None or level.flow is None:
                continue
            if not (np.isfinite(level.flow) and level.flow > 0):
                continue
            stage = level.stage
            if stage is not None and not (np.isfinite(stage) and stage > MISSING):
                stage = None
            thresholds.append(
                FloodThreshold(
                    category=category,
                    flow_m3_s=level.flow * factor,
                    stage=stage,
                    stage_units=self.flood.stage_units.strip(),
                )
            )
        return tuple(thresholds)


class StageFlowPoint(_Model):
    valid_time: Annotated[AwareDatetime, AfterValidator(within_span)] = Field(alias="validTime")
    primary: float | None = None
    secondary: float | None = None


class StageFlowSeries(_Model):
    """``GET /gauges/{lid}/stageflow/forecast`` (or ``/observation``)."""

    issued_time: Annotated[AwareDatetime, AfterValidator(within_span)] | None = Field(
        None, alias="issuedTime"
    )
    secondary_name: str = Field("Flow", alias="secondaryName")
    secondary_units: str = Field("", alias="secondaryUnits")
    data: list[StageFlowPoint] = []


@dataclass(frozen=True)
class RfcForecast:
    """An RFC forecast ready to route: valid flows only, in m3/s, from t0 on."""

    lid: str
    reach_id: str
    flood_category: str
    name: str
    state: str
    t0: dt.datetime
    valid_times: tuple[dt.datetime, ...]
    flow_m3_s: npt.NDArray[np.float64]
    initial_flow_m3_s: float
    issued_time: dt.datetime | None


@dataclass(frozen=True)
class Skipped:
    lid: str
    reason: SkipReason
    detail: str = ""


def flows_m3_s(series: StageFlowSeries) -> list[tuple[dt.datetime, float]]:
    """(valid time, flow) pairs with every missing value dropped, converted to m3/s.

    Raises ``KeyError`` for units other than kcfs and cfs.
    """
    factor = FLOW_UNITS_TO_M3_S[series.secondary_units.strip().lower()]
    return [
        (point.valid_time.astimezone(dt.UTC), point.secondary * factor)
        for point in series.data
        if point.secondary is not None and point.secondary != MISSING and point.secondary >= 0
    ]


def gauge_gate(lid: str, gauge: Gauge) -> Skipped | None:
    """The checks a gauge's metadata decides, before any series is fetched.

    ``lid`` is the validated id the gauge was asked for; the answer must be about it.
    """
    if gauge.lid.strip().upper() != lid:
        return Skipped(lid, SkipReason.INVALID_DATA, f"NWPS answered for gauge {gauge.lid[:40]!r}")
    if gauge.wfo.abbreviation.upper() in OUTSIDE_CONUS_WFOS:
        return Skipped(lid, SkipReason.OUTSIDE_CONUS, f"WFO {gauge.wfo.abbreviation}")
    category = gauge.forecast_flood_category
    if category not in FLOODING_CATEGORIES:
        return Skipped(lid, SkipReason.NOT_FLOODING, f"forecast flood category {category}")
    if not gauge.reach_id.strip():
        return Skipped(lid, SkipReason.NO_REACH_ID, "gauge has an empty reachId")
    try:
        identifiers.reach_id(gauge.reach_id)
    except InvalidIdentifier as exc:
        return Skipped(lid, SkipReason.INVALID_DATA, str(exc))
    return None


def routability_problem(
    times: tuple[dt.datetime, ...], flows_m3_s: npt.NDArray[np.float64]
) -> str | None:
    """Why a forecast's (UTC) times and flows cannot be routed, or ``None``."""
    if len(times) < 2:
        return f"forecast has {len(times)} valid flow value; routing needs at least two"
    for index, (earlier, later) in enumerate(itertools.pairwise(times), start=1):
        if later <= earlier:
            return (
                f"forecast times are not strictly increasing: value {index + 1} at "
                f"{later.isoformat()} follows {earlier.isoformat()}"
            )
    if times[-1] - times[0] > MAX_FORECAST_SPAN:
        return (
            f"forecast spans {times[-1] - times[0]}, over the {MAX_FORECAST_SPAN.days}-day "
            "limit of a routable forecast"
        )
    physical = np.isfinite(flows_m3_s) & (flows_m3_s <= MAX_FLOW_M3_S)
    if not physical.all():
        index = int(np.argmin(physical))
        return (
            f"forecast flow {flows_m3_s[index]:g} m3/s at {times[index].isoformat()} is not "
            f"a finite flow up to {MAX_FLOW_M3_S:g} m3/s"
        )
    return None


def prepare_forecast(
    lid: str, gauge: Gauge, forecast: StageFlowSeries, observation: StageFlowSeries | None
) -> RfcForecast | Skipped:
    """Apply the gate of RNR_SPEC section 2, in an order that names the decisive reason.

    ``lid`` is the validated id the gauge was asked for (see :func:`gauge_gate`).
    """
    skipped = gauge_gate(lid, gauge)
    if skipped is not None:
        return skipped
    category = gauge.forecast_flood_category
    try:
        forecast_flows = flows_m3_s(forecast)
    except KeyError:
        return Skipped(
            lid, SkipReason.UNKNOWN_FLOW_UNITS, f"forecast flow units {forecast.secondary_units!r}"
        )
    if not forecast_flows:
        return Skipped(lid, SkipReason.NO_VALID_FLOW, "forecast has no valid flow value")
    initial = forecast_flows[0][1]
    if observation is not None:
        try:
            observed = flows_m3_s(observation)
        except KeyError:
            observed = []
        if observed:
            initial = max(observed, key=lambda pair: pair[0])[1]
    times = tuple(time for time, _ in forecast_flows)
    flows = np.array([flow for _, flow in forecast_flows])
    problem = routability_problem(times, flows)
    if problem is None and not (np.isfinite(initial) and initial <= MAX_FLOW_M3_S):
        problem = f"initial flow {initial:g} m3/s is not a finite flow up to {MAX_FLOW_M3_S:g}"
    if problem is not None:
        return Skipped(lid, SkipReason.INVALID_DATA, problem)
    return RfcForecast(
        lid=lid,
        reach_id=gauge.reach_id.strip(),
        flood_category=category,
        name=gauge.name,
        state=gauge.state.abbreviation,
        t0=times[0],
        valid_times=times,
        flow_m3_s=flows,
        initial_flow_m3_s=initial,
        issued_time=forecast.issued_time,
    )
