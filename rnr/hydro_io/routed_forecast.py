"""Route one gauge's forecast down its segment and encode the T-Route-schema file.

The worker and the analysts' tool do exactly this, and must agree on it: the same
routing step, the same file, the same attributes. The HML product that triggered the
run names the issuance and product id (the analysts' tool, with no product, passes the
forecast's own issuance).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from rnr.hydro.forecast import RfcForecast
from rnr.hydro.forecast_file import ForecastAttributes
from rnr.hydro.muskingum_cunge import DT_S, RoutingResult
from rnr.hydro.replace_and_route import route_forecast
from rnr.hydro.segments import Segment
from rnr.hydro_io.netcdf import write_forecast_netcdf


class RoutedForecast(NamedTuple):
    result: RoutingResult
    netcdf: bytes


def route_to_netcdf(
    forecast: RfcForecast, segment: Segment, *, issuance_time: dt.datetime, product_id: str
) -> RoutedForecast:
    """The routing result and the file's bytes. CPU-bound; releases the GIL in numba.

    Raises:
        ValueError: routing or the writer refused the forecast's values.
    """
    result = route_forecast(
        segment.parameters,
        segment.downstream,
        forecast.valid_times,
        forecast.flow_m3_s,
        forecast.initial_flow_m3_s,
        dt_s=DT_S,
    )
    netcdf = write_forecast_netcdf(
        result,
        feature_ids=segment.feature_ids,
        t0=forecast.t0,
        dt_s=DT_S,
        attributes=ForecastAttributes.of(
            forecast, segment, issuance_time=issuance_time, product_id=product_id
        ),
    )
    return RoutedForecast(result, netcdf)
