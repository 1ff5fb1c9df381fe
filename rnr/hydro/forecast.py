"""From NWPS answers to the RFC forecast that Replace and Route routes (RNR_SPEC section 2).

Pure: pydantic models of the gauge and stage-flow answers, unit conversion, the
flood-category gate and the skip reasons. Fetching them is ``rnr.upstream.nwps``'s job.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CUBIC_FEET_TO_M3 = 0.028316846592
FLOW_UNITS_TO_M3_S = {"kcfs": 1000.0 * CUBIC_FEET_TO_M3, "cfs": CUBIC_FEET_TO_M3}
MISSING = -999.0
FLOODING_CATEGORIES = frozenset({"action", "minor", "moderate", "major"})
# Forecast offices outside the contiguous US, which the CONUS hydrofabric does not cover.
OUTSIDE_CONUS_WFOS = frozenset({"AFC", "AFG", "AJK", "GUM", "HFO", "SJU"})


class SkipReason(enum.StrEnum):
    """Why a gauge of a product is not routed; recorded per gauge in logs and metrics."""

    UNKNOWN_GAUGE = "unknown_gauge"
    OUTSIDE_CONUS = "outside_conus"
    NOT_FLOODING = "not_flooding"
    NO_REACH_ID = "no_reach_id"
    REACH_NOT_IN_HYDROFABRIC = "reach_not_in_hydrofabric"
    UNKNOWN_FLOW_UNITS = "unknown_flow_units"
    NO_VALID_FLOW = "no_valid_flow"


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

    @property
    def forecast_flood_category(self) -> str:
        return self.status.forecast.flood_category or "not_defined"


class StageFlowPoint(_Model):
    valid_time: AwareDatetime = Field(alias="validTime")
    primary: float | None = None
    secondary: float | None = None


class StageFlowSeries(_Model):
    """``GET /gauges/{lid}/stageflow/forecast`` (or ``/observation``)."""

    issued_time: AwareDatetime | None = Field(None, alias="issuedTime")
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


def gauge_gate(gauge: Gauge) -> Skipped | None:
    """The checks a gauge's metadata decides, before any series is fetched."""
    lid = gauge.lid.upper()
    if gauge.wfo.abbreviation.upper() in OUTSIDE_CONUS_WFOS:
        return Skipped(lid, SkipReason.OUTSIDE_CONUS, f"WFO {gauge.wfo.abbreviation}")
    category = gauge.forecast_flood_category
    if category not in FLOODING_CATEGORIES:
        return Skipped(lid, SkipReason.NOT_FLOODING, f"forecast flood category {category}")
    if not gauge.reach_id.strip():
        return Skipped(lid, SkipReason.NO_REACH_ID, "gauge has an empty reachId")
    return None


def prepare_forecast(
    gauge: Gauge, forecast: StageFlowSeries, observation: StageFlowSeries | None
) -> RfcForecast | Skipped:
    """Apply the gate of RNR_SPEC section 2, in an order that names the decisive reason."""
    skipped = gauge_gate(gauge)
    if skipped is not None:
        return skipped
    lid, category = gauge.lid.upper(), gauge.forecast_flood_category
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
    return RfcForecast(
        lid=lid,
        reach_id=gauge.reach_id.strip(),
        flood_category=category,
        name=gauge.name,
        state=gauge.state.abbreviation,
        t0=times[0],
        valid_times=times,
        flow_m3_s=np.array([flow for _, flow in forecast_flows]),
        initial_flow_m3_s=initial,
        issued_time=forecast.issued_time,
    )
