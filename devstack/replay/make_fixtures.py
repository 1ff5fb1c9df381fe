"""Generate the replay server's fixtures: HML products, NWPS gauges and stage/flow series.

``python -m devstack.replay.make_fixtures [--out DIR]`` rewrites ``devstack/replay/fixtures/``
(or DIR). The output is a pure function of this file: no clock, no randomness, so the
committed fixtures can be checked by regenerating them and comparing bytes.

The data is invented but shaped like the real services (RNR_SPEC sections 1-2), and
each gauge is chosen to exercise one branch of the worker's gate:

======  ==============  =====  =========  ==============================================
LID     forecast cat.   units  reachId    case
======  ==============  =====  =========  ==============================================
HPDT2   moderate        kcfs   3121538    the real gauge of the conformance case
TRKT2   action          kcfs   1479611    smallest category that is routed
PRLL1   minor           cfs    18786543   flows in cfs
ILRO2   major           kcfs   21771164   -999 flows scattered in forecast + observation
GDLT2   no_flooding     kcfs   1620031    skipped: not flooding
MSRM7   not_defined     kcfs   6013072    skipped: no flood categories defined
BLNT2   (absent)        kcfs   5781369    skipped: no forecast at all (empty data)
NCHT2   minor           kcfs   (empty)    skipped: no reach id
KNSA2   minor           cfs    75004213   skipped: Alaska (WFO AFC, outside CONUS)
======  ==============  =====  =========  ==============================================

Stage and flow of a gauge come from one invented rating curve (stage = z0 + a * q**b),
so the flood categories' flows, the series and the status agree with each other.

The HML text helpers (:func:`render_site_document`, :func:`render_product_text`) are
also used by the server to build products added at run time through ``/_admin``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import pathlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "DEFAULT_FIXTURES_DIR",
    "FIXTURE_NAMESPACE",
    "MISSING",
    "build_fixtures",
    "format_hml_time",
    "format_iso_z",
    "main",
    "render_product_text",
    "render_site_document",
    "write_fixtures",
]

DEFAULT_FIXTURES_DIR = pathlib.Path(__file__).resolve().parent / "fixtures"
# Namespace of every uuid5 the replay server hands out, so ids are stable across runs.
FIXTURE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "replay.rnr-pipeline.invalid")
# NWPS marks a missing value with -999 in stage/flow series...
MISSING = -999.0
# ...and an undefined flood threshold with -9999.
UNDEFINED_THRESHOLD = -9999.0

CATEGORIES = ("action", "minor", "moderate", "major")
HML_SCHEMA = "http://www.nws.noaa.gov/oh/hads/xml/schemas/hml/v1/hml.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Invented default namespace, for the product that declares one.
HML_NAMESPACE = "http://www.nws.noaa.gov/hml/v1"
# How many values of each series an HML document repeats (keeps products small).
HML_OBSERVED_VALUES = 4
HML_FORECAST_VALUES = 8

_UTC = dt.UTC
_DAY = dt.datetime(2025, 5, 5, tzinfo=_UTC)
_LAST_OBSERVATION = _DAY.replace(hour=19)
_OBSERVATION_COUNT = 24


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 5, day, hour, minute, tzinfo=_UTC)


@dataclass(frozen=True)
class _Office:
    abbreviation: str
    name: str


@dataclass(frozen=True)
class _Rating:
    """Invented rating curve: ``stage_ft = z0 + a * q ** b`` with q in the gauge's unit."""

    z0: float
    a: float
    b: float

    def stage(self, q: float) -> float:
        return self.z0 + self.a * q**self.b

    def flow(self, stage_ft: float) -> float:
        return ((stage_ft - self.z0) / self.a) ** (1.0 / self.b)


@dataclass(frozen=True)
class _Hydrograph:
    """A forecast that rises (half cosine) from ``start_q`` to ``peak_q`` then recedes.

    The recession is exponential towards ``end_q`` with an e-folding of ``recession``
    steps. ``missing`` lists the indices whose flow is -999.
    """

    start: dt.datetime
    step_hours: int
    count: int
    start_q: float
    peak_q: float
    peak_index: int
    end_q: float
    recession: float
    issued: dt.datetime
    missing: tuple[int, ...] = ()

    def flows(self) -> list[float]:
        out: list[float] = []
        for i in range(self.count):
            if i <= self.peak_index:
                rise = (1.0 - math.cos(math.pi * i / self.peak_index)) / 2.0
                q = self.start_q + (self.peak_q - self.start_q) * rise
            else:
                decay = math.exp(-(i - self.peak_index) / self.recession)
                q = self.end_q + (self.peak_q - self.end_q) * decay
            out.append(q)
        return out


@dataclass(frozen=True)
class _GaugeSpec:
    lid: str
    name: str
    state: _Office
    rfc: _Office
    wfo: _Office
    reach_id: str
    downstream_lid: str
    latitude: float
    longitude: float
    time_zone: str
    flow_units: str  # "kcfs" | "cfs"
    rating: _Rating
    thresholds_ft: Mapping[str, float] | None  # None: no categories defined
    observed_from_q: float  # first observation's flow; the last is the forecast's start
    forecast: _Hydrograph | None
    # The category the forecast must reach; None: the key is absent from the status.
    expected_category: str | None
    pedts_observed: str
    pedts_forecast: str
    missing_observations: tuple[int, ...] = field(default=())


_TX = _Office("TX", "Texas")
_LA = _Office("LA", "Louisiana")
_OK = _Office("OK", "Oklahoma")
_MO = _Office("MO", "Missouri")
_AK = _Office("AK", "Alaska")
_WGRFC = _Office("WGRFC", "West Gulf River Forecast Center")
_LMRFC = _Office("LMRFC", "Lower Mississippi River Forecast Center")
_ABRFC = _Office("ABRFC", "Arkansas-Red Basin River Forecast Center")
_MBRFC = _Office("MBRFC", "Missouri Basin River Forecast Center")
_APRFC = _Office("APRFC", "Alaska-Pacific River Forecast Center")
_HGX = _Office("HGX", "Houston/Galveston")
_LIX = _Office("LIX", "New Orleans/Baton Rouge")
_TSA = _Office("TSA", "Tulsa")
_EWX = _Office("EWX", "Austin/San Antonio")
_LSX = _Office("LSX", "St. Louis")
_LCH = _Office("LCH", "Lake Charles")
_AFC = _Office("AFC", "Anchorage")

_GAUGES: tuple[_GaugeSpec, ...] = (
    _GaugeSpec(
        lid="HPDT2",
        name="Brazos River near Hempstead",
        state=_TX,
        rfc=_WGRFC,
        wfo=_HGX,
        reach_id="3121538",
        downstream_lid="BAWT2",
        latitude=30.1300,
        longitude=-96.1850,
        time_zone="CST6CDT",
        flow_units="kcfs",
        # 17 kcfs <-> 24.3 ft, as in the conformance case's forecast.
        rating=_Rating(z0=7.61, a=4.047, b=0.5),
        thresholds_ft={"action": 40.0, "minor": 45.0, "moderate": 50.0, "major": 55.0},
        observed_from_q=15.2,
        forecast=_Hydrograph(
            start=_at(5, 21),
            step_hours=3,
            count=40,
            start_q=17.0,
            peak_q=118.0,
            peak_index=16,
            end_q=20.0,
            recession=8.0,
            issued=_at(5, 18, 32),
        ),
        expected_category="moderate",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="TRKT2",
        name="Trinity River near Oakhurst",
        state=_TX,
        rfc=_WGRFC,
        wfo=_HGX,
        reach_id="1479611",
        downstream_lid="",
        latitude=30.7300,
        longitude=-95.3200,
        time_zone="CST6CDT",
        flow_units="kcfs",
        rating=_Rating(z0=4.0, a=2.6, b=0.55),
        thresholds_ft={"action": 28.0, "minor": 32.0, "moderate": 36.0, "major": 40.0},
        observed_from_q=18.0,
        forecast=_Hydrograph(
            start=_at(6, 0),
            step_hours=6,
            count=20,
            start_q=24.0,
            peak_q=62.0,
            peak_index=8,
            end_q=28.0,
            recession=4.0,
            issued=_at(5, 18, 5),
        ),
        expected_category="action",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="PRLL1",
        name="Pearl River near Pine Grove",
        state=_LA,
        rfc=_LMRFC,
        wfo=_LIX,
        reach_id="18786543",
        downstream_lid="",
        latitude=30.7900,
        longitude=-89.8200,
        time_zone="CST6CDT",
        flow_units="cfs",
        rating=_Rating(z0=2.0, a=0.052, b=0.5),
        thresholds_ft={"action": 14.0, "minor": 16.0, "moderate": 18.5, "major": 21.0},
        observed_from_q=38000.0,
        forecast=_Hydrograph(
            start=_at(5, 18),
            step_hours=6,
            count=24,
            start_q=45000.0,
            peak_q=78000.0,
            peak_index=10,
            end_q=50000.0,
            recession=5.0,
            issued=_at(5, 14, 10),
        ),
        expected_category="minor",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="ILRO2",
        name="Illinois River near Eldon Bridge",
        state=_OK,
        rfc=_ABRFC,
        wfo=_TSA,
        reach_id="21771164",
        downstream_lid="",
        latitude=35.9200,
        longitude=-94.8400,
        time_zone="CST6CDT",
        flow_units="kcfs",
        rating=_Rating(z0=1.5, a=2.1, b=0.6),
        thresholds_ft={"action": 12.0, "minor": 14.0, "moderate": 18.0, "major": 21.0},
        observed_from_q=4.0,
        forecast=_Hydrograph(
            start=_at(5, 18),
            step_hours=3,
            count=32,
            start_q=9.0,
            peak_q=48.0,
            peak_index=9,
            end_q=8.0,
            recession=5.0,
            issued=_at(5, 15, 20),
            missing=(5, 13, 14, 27),
        ),
        expected_category="major",
        pedts_observed="HGIRP",
        pedts_forecast="HGIFF",
        # The latest observation's flow is missing: the worker must look further back.
        missing_observations=(11, 23),
    ),
    _GaugeSpec(
        lid="GDLT2",
        name="Guadalupe River near Dietz Crossing",
        state=_TX,
        rfc=_WGRFC,
        wfo=_EWX,
        reach_id="1620031",
        downstream_lid="",
        latitude=29.5500,
        longitude=-97.9500,
        time_zone="CST6CDT",
        flow_units="kcfs",
        rating=_Rating(z0=1.0, a=3.0, b=0.5),
        thresholds_ft={"action": 14.0, "minor": 16.0, "moderate": 20.0, "major": 25.0},
        observed_from_q=2.0,
        forecast=_Hydrograph(
            start=_at(5, 18),
            step_hours=6,
            count=20,
            start_q=2.6,
            peak_q=9.5,
            peak_index=6,
            end_q=3.0,
            recession=3.0,
            issued=_at(5, 13, 0),
        ),
        expected_category="no_flooding",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="MSRM7",
        name="Missouri River at Starling Landing",
        state=_MO,
        rfc=_MBRFC,
        wfo=_LSX,
        reach_id="6013072",
        downstream_lid="",
        latitude=38.7000,
        longitude=-91.4400,
        time_zone="CST6CDT",
        flow_units="kcfs",
        rating=_Rating(z0=-2.0, a=1.1, b=0.6),
        thresholds_ft=None,
        observed_from_q=95.0,
        forecast=_Hydrograph(
            start=_at(6, 0),
            step_hours=6,
            count=28,
            start_q=102.0,
            peak_q=160.0,
            peak_index=12,
            end_q=110.0,
            recession=6.0,
            issued=_at(5, 16, 0),
        ),
        expected_category="not_defined",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="BLNT2",
        name="Blanco River near Cypress Flat",
        state=_TX,
        rfc=_WGRFC,
        wfo=_EWX,
        reach_id="5781369",
        downstream_lid="",
        latitude=29.9900,
        longitude=-98.0900,
        time_zone="CST6CDT",
        flow_units="kcfs",
        rating=_Rating(z0=0.5, a=2.4, b=0.5),
        thresholds_ft={"action": 13.0, "minor": 17.0, "moderate": 22.0, "major": 28.0},
        observed_from_q=0.4,
        forecast=None,
        expected_category=None,
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="NCHT2",
        name="Neches River near Silsbee Bend",
        state=_TX,
        rfc=_WGRFC,
        wfo=_LCH,
        reach_id="",
        downstream_lid="",
        latitude=30.3500,
        longitude=-94.1000,
        time_zone="CST6CDT",
        flow_units="kcfs",
        rating=_Rating(z0=3.0, a=1.9, b=0.55),
        thresholds_ft={"action": 15.5, "minor": 17.5, "moderate": 20.5, "major": 23.5},
        observed_from_q=14.0,
        forecast=_Hydrograph(
            start=_at(6, 0),
            step_hours=6,
            count=24,
            start_q=19.0,
            peak_q=44.0,
            peak_index=9,
            end_q=20.0,
            recession=5.0,
            issued=_at(5, 18, 15),
        ),
        expected_category="minor",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
    _GaugeSpec(
        lid="KNSA2",
        name="Kenai River near Skilak Outlet",
        state=_AK,
        rfc=_APRFC,
        wfo=_AFC,
        reach_id="75004213",
        downstream_lid="",
        latitude=60.4800,
        longitude=-150.7000,
        time_zone="AKST9AKDT",
        flow_units="cfs",
        rating=_Rating(z0=1.0, a=0.11, b=0.5),
        thresholds_ft={"action": 12.0, "minor": 13.0, "moderate": 14.5, "major": 16.0},
        observed_from_q=6000.0,
        forecast=_Hydrograph(
            start=_at(5, 18),
            step_hours=6,
            count=16,
            start_q=8200.0,
            peak_q=12800.0,
            peak_index=6,
            end_q=9000.0,
            recession=3.0,
            issued=_at(5, 17, 45),
        ),
        expected_category="minor",
        pedts_observed="HGIRG",
        pedts_forecast="HGIFF",
    ),
)


@dataclass(frozen=True)
class _ProductSpec:
    """One HML product: header, the gauges it lists, and how the text is laid out."""

    issued: dt.datetime
    wmo_collective_id: str
    issuing_office: str
    awips_id: str
    lids: tuple[str, ...]
    namespace: str | None = None
    separator: str = "\n"
    trailer: str = "\n"


_PRODUCTS: tuple[_ProductSpec, ...] = (
    _ProductSpec(
        issued=_at(5, 14),
        wmo_collective_id="SRUS54",
        issuing_office="KFWR",
        awips_id="HMLFWR",
        lids=("HPDT2", "TRKT2", "GDLT2"),
        trailer="\n$$\n",
    ),
    _ProductSpec(
        issued=_at(5, 15),
        wmo_collective_id="SRUS56",
        issuing_office="KORN",
        awips_id="HMLORN",
        lids=("PRLL1",),
        trailer="\nNNNN\n",
    ),
    _ProductSpec(
        issued=_at(5, 16),
        wmo_collective_id="SRUS53",
        issuing_office="KTUA",
        awips_id="HMLTUA",
        lids=("ILRO2",),
        namespace=HML_NAMESPACE,
        trailer="\n$$\n",
    ),
    _ProductSpec(
        issued=_at(5, 17),
        wmo_collective_id="SRUS53",
        issuing_office="KKRF",
        awips_id="HMLKRF",
        lids=("MSRM7",),
    ),
    _ProductSpec(
        issued=_at(5, 18),
        wmo_collective_id="SRAK58",
        issuing_office="PACR",
        awips_id="HMLACR",
        lids=("KNSA2",),
        trailer="\n$$\n",
    ),
    _ProductSpec(
        issued=_at(5, 19),
        wmo_collective_id="SRUS54",
        issuing_office="KFWR",
        awips_id="HMLFWR",
        lids=("HPDT2", "NCHT2", "BLNT2", "TRKT2"),
        # Junk between the documents and a cut-off line at the end, as seen in the wild.
        separator="\n$$\n\n",
        trailer="\n$$\n\nNNNN\n&&PARTIAL LI",
    ),
)


def format_iso_z(moment: dt.datetime) -> str:
    """``2025-05-05T21:00:00Z``: the NWPS spelling of a UTC time."""
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_hml_time(moment: dt.datetime) -> str:
    """``2025-05-05T21:00:00-00:00``: the HML spelling of a UTC time."""
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def _round_flow(q: float, units: str) -> float:
    """kcfs to 0.01, cfs to 10 (as NWPS reports them)."""
    if units == "cfs":
        return float(round(q / 10.0) * 10)
    return round(q, 2)


def _category(stage_ft: float, thresholds_ft: Mapping[str, float] | None) -> str:
    if not thresholds_ft:
        return "not_defined"
    reached = [name for name in CATEGORIES if stage_ft >= thresholds_ft[name]]
    return reached[-1] if reached else "no_flooding"


def _point(spec: _GaugeSpec, valid: dt.datetime, generated: dt.datetime, q: float) -> dict:
    """One ``data`` entry: the flow rounded as NWPS reports it and the stage it rates to."""
    flow = _round_flow(q, spec.flow_units)
    return {
        "validTime": format_iso_z(valid),
        "generatedTime": format_iso_z(generated),
        "primary": round(spec.rating.stage(flow), 2),
        "secondary": flow,
    }


def _series(spec: _GaugeSpec, issued: dt.datetime | None, data: list[dict]) -> dict:
    return {
        "issuedTime": format_iso_z(issued) if issued else None,
        "wfo": spec.wfo.abbreviation,
        "timeZone": "UTC",
        "primaryName": "Stage",
        "primaryUnits": "ft",
        "secondaryName": "Flow",
        "secondaryUnits": spec.flow_units,
        "data": data,
    }


def _forecast(spec: _GaugeSpec) -> dict:
    hydrograph = spec.forecast
    if hydrograph is None:
        return _series(spec, None, [])
    data = []
    for i, q in enumerate(hydrograph.flows()):
        valid = hydrograph.start + dt.timedelta(hours=hydrograph.step_hours * i)
        point = _point(spec, valid, hydrograph.issued, q)
        if i in hydrograph.missing:
            point["secondary"] = MISSING  # a missing flow; the stage was still forecast
        data.append(point)
    return _series(spec, hydrograph.issued, data)


def _observation(spec: _GaugeSpec) -> dict:
    """24 hourly values ending before the forecast starts, rising to its first flow."""
    last = _LAST_OBSERVATION
    end_q = spec.observed_from_q * 1.1
    if spec.forecast is not None:
        last = min(last, spec.forecast.start - dt.timedelta(hours=1))
        end_q = spec.forecast.start_q
    first = last - dt.timedelta(hours=_OBSERVATION_COUNT - 1)
    data = []
    for j in range(_OBSERVATION_COUNT):
        fraction = (j / (_OBSERVATION_COUNT - 1)) ** 2
        q = spec.observed_from_q + (end_q - spec.observed_from_q) * fraction
        valid = first + dt.timedelta(hours=j)
        point = _point(spec, valid, valid + dt.timedelta(minutes=6), q)
        if j in spec.missing_observations:
            point["secondary"] = MISSING
        data.append(point)
    return _series(spec, last + dt.timedelta(minutes=6), data)


def _status(spec: _GaugeSpec, data: list[dict], *, peak: bool) -> dict:
    """The gauge's ``status.observed`` (latest value) or ``status.forecast`` (crest)."""
    valid = [d for d in data if d["primary"] != MISSING]
    status: dict[str, Any] = {
        "primary": MISSING,
        "primaryUnit": "ft",
        "secondary": MISSING,
        "secondaryUnit": spec.flow_units,
    }
    if not valid:
        status["validTime"] = None
        return status  # no floodCategory key: nothing was issued
    chosen = max(valid, key=lambda d: d["primary"]) if peak else valid[-1]
    status.update(
        primary=chosen["primary"],
        secondary=chosen["secondary"],
        floodCategory=_category(chosen["primary"], spec.thresholds_ft),
        validTime=chosen["validTime"],
    )
    return status


def _flood(spec: _GaugeSpec) -> dict:
    categories = {}
    for name in CATEGORIES:
        if spec.thresholds_ft is None:
            stage = flow = UNDEFINED_THRESHOLD
        else:
            stage = spec.thresholds_ft[name]
            flow = _round_flow(spec.rating.flow(stage), spec.flow_units)
        categories[name] = {"stage": stage, "flow": flow}
    return {"stageUnits": "ft", "flowUnits": spec.flow_units, "categories": categories}


def _office(office: _Office) -> dict:
    return {"abbreviation": office.abbreviation, "name": office.name}


def _gauge(spec: _GaugeSpec, observation: dict, forecast: dict) -> dict:
    forecast_status = _status(spec, forecast["data"], peak=True)
    if forecast_status.get("floodCategory") != spec.expected_category:
        raise AssertionError(
            f"{spec.lid}: forecast category {forecast_status.get('floodCategory')!r}, "
            f"expected {spec.expected_category!r}; adjust the spec"
        )
    return {
        "lid": spec.lid,
        "name": spec.name,
        "reachId": spec.reach_id,
        "state": _office(spec.state),
        "rfc": _office(spec.rfc),
        "wfo": _office(spec.wfo),
        "timeZone": spec.time_zone,
        "latitude": spec.latitude,
        "longitude": spec.longitude,
        "downstreamLid": spec.downstream_lid,
        "status": {
            "observed": _status(spec, observation["data"], peak=False),
            "forecast": forecast_status,
        },
        "flood": _flood(spec),
        "pedts": {"observed": spec.pedts_observed, "forecast": spec.pedts_forecast},
    }


def _hml_datum(point: Mapping[str, Any], units: str, pedts: str) -> str:
    valid = dt.datetime.fromisoformat(point["validTime"])
    return (
        "    <datum>\n"
        f'      <valid timezone="UTC">{format_hml_time(valid)}</valid>\n'
        f'      <primary name="Stage" units="ft">{point["primary"]:.2f}</primary>\n'
        f'      <secondary name="Flow" units={quoteattr(units)}>{point["secondary"]:.2f}'
        "</secondary>\n"
        f"      <pedts>{escape(pedts)}</pedts>\n"
        "    </datum>\n"
    )


def render_site_document(
    gauge: Mapping[str, Any] | None,
    stageflow: Mapping[str, Any] | None,
    *,
    lid: str,
    generation_time: dt.datetime,
    namespace: str | None = None,
) -> str:
    """One HML XML document (declaration + ``<site>`` root) for a gauge.

    ``gauge`` and ``stageflow`` are the fixture JSON (``gauges.json`` entry and
    ``stageflow/<LID>.json``); either may be ``None`` for a gauge the fixtures do not
    know, which gives a site with no data. Only the last observations and the first
    forecast values are repeated, to keep products small.
    """
    attrs = {"xmlns:xsi": XSI, "xsi:noNamespaceSchemaLocation": HML_SCHEMA}
    if namespace:
        attrs = {"xmlns": namespace, **attrs}
    attrs.update(
        timezone="UTC",
        id=lid,
        originator=(gauge or {}).get("rfc", {}).get("abbreviation", "NWS"),
        name=(gauge or {}).get("name", lid),
        generationtime=format_hml_time(generation_time),
    )
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<site']
    parts.extend(f" {key}={quoteattr(value)}" for key, value in attrs.items())
    parts.append(">\n")
    pedts = (gauge or {}).get("pedts", {})
    if stageflow is not None:
        observation = stageflow["observation"]
        parts.append('  <observed timezone="UTC">\n')
        for point in observation["data"][-HML_OBSERVED_VALUES:]:
            parts.append(
                _hml_datum(point, observation["secondaryUnits"], pedts.get("observed", "HGIRG"))
            )
        parts.append("  </observed>\n")
        forecast = stageflow["forecast"]
        if forecast["data"]:
            issued = dt.datetime.fromisoformat(forecast["issuedTime"])
            parts.append(f'  <forecast timezone="UTC" issued="{format_hml_time(issued)}">\n')
            for point in forecast["data"][:HML_FORECAST_VALUES]:
                parts.append(
                    _hml_datum(point, forecast["secondaryUnits"], pedts.get("forecast", "HGIFF"))
                )
            parts.append("  </forecast>\n")
    parts.append("</site>")
    return "".join(parts)


def render_product_text(
    *,
    wmo_collective_id: str,
    issuing_office: str,
    awips_id: str,
    issuance_time: dt.datetime,
    documents: Sequence[str],
    separator: str = "\n",
    trailer: str = "\n",
) -> str:
    """A product text: WMO header, the XML documents back to back, then the trailer."""
    stamp = issuance_time.astimezone(_UTC).strftime("%d%H%M")
    header = f"000 \n{wmo_collective_id} {issuing_office} {stamp}\n{awips_id}\n\n"
    return header + separator.join(documents) + trailer


def _product_id(n: int) -> str:
    return str(uuid.uuid5(FIXTURE_NAMESPACE, f"fixture-product-{n}"))


def build_fixtures() -> dict[str, Any]:
    """Every fixture file as ``relative path -> JSON value``; pure and deterministic."""
    gauges: dict[str, Any] = {}
    stageflow: dict[str, Any] = {}
    for spec in _GAUGES:
        observation = _observation(spec)
        forecast = _forecast(spec)
        gauges[spec.lid] = _gauge(spec, observation, forecast)
        stageflow[spec.lid] = {"forecast": forecast, "observation": observation}

    products = []
    for n, product in enumerate(_PRODUCTS, start=1):
        documents = [
            render_site_document(
                gauges[lid],
                stageflow[lid],
                lid=lid,
                generation_time=product.issued,
                namespace=product.namespace,
            )
            for lid in product.lids
        ]
        text = render_product_text(
            wmo_collective_id=product.wmo_collective_id,
            issuing_office=product.issuing_office,
            awips_id=product.awips_id,
            issuance_time=product.issued,
            documents=documents,
            separator=product.separator,
            trailer=product.trailer,
        )
        products.append(
            {
                "id": _product_id(n),
                "wmoCollectiveId": product.wmo_collective_id,
                "issuingOffice": product.issuing_office,
                "issuanceTime": product.issued.isoformat(),
                "productCode": "HML",
                "productName": "Hydrologic Markup Language",
                "productText": text,
            }
        )

    files: dict[str, Any] = {"products.json": products, "gauges.json": gauges}
    for lid, series in stageflow.items():
        files[f"stageflow/{lid}.json"] = series
    return files


def dump_json(value: Any) -> bytes:
    """The one serialisation every fixture file uses (stable bytes, trailing newline)."""
    return (json.dumps(value, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def write_fixtures(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Write the fixtures under ``out_dir``; stale ``stageflow/*.json`` files are removed."""
    files = build_fixtures()
    written = []
    for relative, value in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dump_json(value))
        written.append(path)
    stageflow_dir = out_dir / "stageflow"
    for stale in sorted(stageflow_dir.glob("*.json")):
        if stale not in written:
            stale.unlink()
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.replay.make_fixtures", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=DEFAULT_FIXTURES_DIR,
        help="folder to (re)write (default: the package's fixtures)",
    )
    args = parser.parse_args(argv)
    for path in write_fixtures(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
