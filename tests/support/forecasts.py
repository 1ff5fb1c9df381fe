"""Forecast files as the worker writes them, on the sample hydrofabric's segments.

A flood wave travels down the segment: segment i peaks i + 2 hours after t0, lower the
further down it is, so a table that took every segment at one time step (the
reference's global-maximum rule) would be visibly wrong.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

import numpy as np

from devstack import SAMPLE_HYDROFABRIC
from rnr.hydro.forecast_file import ForecastAttributes
from rnr.hydro.muskingum_cunge import RoutingResult
from rnr.hydro.segments import NetworkIndex, Segment
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric
from rnr.hydro_io.netcdf import write_forecast_netcdf
from rnr.storage.output_layout import output_key

HOURS = 24
STEPS_PER_HOUR = 12  # dt 300 s

# The HPDT2 conformance case's gauge, as a forecast file describes it.
HPDT2_ATTRIBUTES = ForecastAttributes(
    rfc_location="HPDT2",
    rfc_reach_id="3121538",
    max_status="moderate",
    stream_order=6,
    name="Brazos River near Hempstead",
    state="TX",
    issuance_time=dt.datetime(2025, 5, 5, 20, 31, 15, tzinfo=dt.UTC),
    product_id="a1b2c3d4-HMLFWD",
    flowpath_attributes_layer="flowpath-attributes-ml",
)

# Gauges of the sample hydrofabric: LID -> NWM reach id.
GAUGES = {"HPDT2": "3121538", "TRKT2": "1479611", "PRLL1": "18786543", "ILRO2": "21771164"}


@cache
def sample_segment(reach_id: str) -> Segment:
    with open_hydrofabric(SAMPLE_HYDROFABRIC / "parquet") as reader:
        network = NetworkIndex.from_reader(reader, attributes_layer(reader))
        return network.extract_segment(reach_id)


def wave(segments: int, peak_m3_s: float, first_peak_hour: float = 2.0) -> np.ndarray:
    """Flow (steps, segments): segment i peaks at hour i + ``first_peak_hour`` at
    peak * 0.95**i (beyond the 24 hours, it is still rising when the forecast ends)."""
    hours = np.arange(1, HOURS * STEPS_PER_HOUR + 1) / STEPS_PER_HOUR
    peak_hour = np.arange(segments) + first_peak_hour
    height = peak_m3_s * 0.95 ** np.arange(segments)
    return (10.0 + height * np.exp(-((hours[:, None] - peak_hour) ** 2) / 2.0)).astype(np.float32)


def forecast_file(
    lid: str,
    *,
    t0: dt.datetime,
    peak_m3_s: float = 500.0,
    issued: dt.datetime | None = None,
    max_status: str = "moderate",
    product_id: str = "product-1",
    first_peak_hour: float = 2.0,
) -> tuple[str, bytes]:
    """The (key under ``replace_and_route``, bytes) of a forecast file for ``lid``."""
    segment = sample_segment(GAUGES[lid])
    flow = wave(segment.size, peak_m3_s, first_peak_hour)
    result = RoutingResult(flow, flow / np.float32(100), flow / np.float32(50))
    attributes = dataclasses.replace(
        HPDT2_ATTRIBUTES,
        rfc_location=lid,
        rfc_reach_id=GAUGES[lid],
        max_status=max_status,
        stream_order=segment.stream_order,
        name=f"River at {lid}",
        issuance_time=issued or t0 - dt.timedelta(minutes=30),
        product_id=product_id,
        flowpath_attributes_layer=segment.attributes_layer,
    )
    data = write_forecast_netcdf(
        result, feature_ids=segment.flowpath_ids, t0=t0, dt_s=300.0, attributes=attributes
    )
    return output_key("replace_and_route", lid, t0), data
