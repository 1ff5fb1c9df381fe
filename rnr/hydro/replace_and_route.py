"""Replace and Route for one gauge: the RFC forecast becomes the origin's inflow.

The forecast flow enters the origin segment as lateral inflow, held as a step over each
forecast interval; every segment starts at the initial flow with zero depth; the run
lasts the forecast's whole span. (The reference system truncated the span to whole
days; RNR_SPEC section 4 asks not to repeat that.)
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rnr.hydro.muskingum_cunge import DT_S, ChannelParameters, RoutingResult, route


def lateral_inflow(
    valid_times: Sequence[dt.datetime],
    flow_m3_s: npt.ArrayLike,
    segments: int,
    *,
    dt_s: float = DT_S,
) -> npt.NDArray[np.float32]:
    """Lateral inflow of shape (t, segments): forecast value i held from time i to i+1.

    Intervals need not be regular; each must be a whole number of steps. A single
    forecast value has no span to route and is rejected.
    """
    flows = np.asarray(flow_m3_s, dtype=np.float64)
    if len(valid_times) != flows.size:
        raise ValueError(f"{len(valid_times)} valid times for {flows.size} flow values")
    if flows.size < 2:
        raise ValueError("a forecast needs at least two values to have a span to route")
    steps_per_interval = []
    for start, end in itertools.pairwise(valid_times):
        seconds = (end - start).total_seconds()
        steps, remainder = divmod(seconds, dt_s)
        if seconds <= 0 or remainder:
            raise ValueError(
                f"forecast interval {start.isoformat()} -> {end.isoformat()} is not a positive "
                f"whole number of {dt_s:g} s steps"
            )
        steps_per_interval.append(int(steps))
    origin = np.repeat(flows[:-1], steps_per_interval).astype(np.float32)
    inflow = np.zeros((origin.size, segments), np.float32)
    inflow[:, 0] = origin
    return inflow


def route_forecast(
    params: ChannelParameters,
    downstream: npt.NDArray[np.intp],
    valid_times: Sequence[dt.datetime],
    flow_m3_s: npt.ArrayLike,
    initial_flow_m3_s: float,
    *,
    dt_s: float = DT_S,
) -> RoutingResult:
    """Route an RFC forecast from the origin (segment 0) down the segment."""
    inflow = lateral_inflow(valid_times, flow_m3_s, params.size, dt_s=dt_s)
    return route(params, downstream, inflow, np.float32(initial_flow_m3_s), dt_s=dt_s)
