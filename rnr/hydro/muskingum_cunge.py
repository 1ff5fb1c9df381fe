"""Muskingum-Cunge routing as T-Route's "V02-structured" kernel computes it.

Pure numerics: arrays in, arrays out; no files, no clock, no settings. This module
checks the inputs and shapes the outputs; the arithmetic lives in
``rnr.hydro._mc_compiled`` (the per-segment physics in IEEE float32 with the C
library's ``powf``, RNR_SPEC section 4; numpy's own float32 power is off by one unit in
the last place about one call in five) and ``rnr.hydro._mc_lanes``, which solves many
segments of a step together in SIMD lanes with the very same arithmetic, so the
results are T-Route's to the bit.

With ``assume_short_ts`` a segment's upstream inflow at step t is the sum of its
upstream segments' outflow at t-1, so the segments of one step are independent of
each other. Parts of a network that no link joins are independent at every step, so
``route(threads=k)`` routes them in k threads (the kernel releases the GIL).

Shapes: ``n`` segments ordered upstream to downstream, ``t`` time steps.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rnr.hydro._mc_lanes import route_lanes
from rnr.hydro._mc_split import independent_ranges
from rnr.hydro.types import F32, Float32Array

DT_S = 300.0
# ChannelParameters fields in the kernel's argument order (dx, bw, tw, twcc, n, ncc, cs, s0).
_KERNEL_ORDER = (
    "length_m", "bottom_width_m", "top_width_m", "floodplain_top_width_m", "manning_n",
    "floodplain_manning_n", "side_slope", "bed_slope",
)  # fmt: skip


@dataclass(frozen=True)
class ChannelParameters:
    """Per-segment channel geometry and roughness, each an array of shape (n,)."""

    length_m: Float32Array  # dx
    bottom_width_m: Float32Array  # bw
    top_width_m: Float32Array  # tw
    floodplain_top_width_m: Float32Array  # twcc
    manning_n: Float32Array  # n
    floodplain_manning_n: Float32Array  # ncc
    side_slope: Float32Array  # cs (horizontal run per unit rise is 1/cs)
    bed_slope: Float32Array  # s0

    def __post_init__(self) -> None:
        sizes = set()
        for name, values in vars(self).items():
            array = np.asarray(values, dtype=np.float32)
            if array.ndim != 1:
                raise ValueError(f"{name} must be one value per segment, got shape {array.shape}")
            object.__setattr__(self, name, array)
            sizes.add(array.size)
        if len(sizes) != 1:
            raise ValueError(f"channel parameters differ in length: {sorted(sizes)}")
        for name, values in vars(self).items():
            bad = ~np.isfinite(values)
            if bad.any():
                raise ValueError(f"{name} is not finite at segment index {int(np.argmax(bad))}")
        for name in ("manning_n", "bed_slope", "bottom_width_m", "length_m"):
            values = getattr(self, name)
            if (values <= 0).any():
                index = int(np.argmax(values <= 0))
                raise ValueError(
                    f"{name} must be > 0, got {float(values[index])} at segment index {index}"
                )

    @property
    def size(self) -> int:
        return int(self.length_m.size)


@dataclass(frozen=True)
class RoutingResult:
    """Per step and segment, shape (t, n): outflow, velocity and depth."""

    flow_m3_s: Float32Array
    velocity_m_s: Float32Array
    depth_m: Float32Array


def route(
    params: ChannelParameters,
    downstream: npt.NDArray[np.intp],
    lateral_inflow_m3_s: npt.ArrayLike,
    initial_flow_m3_s: npt.ArrayLike,
    initial_depth_m: npt.ArrayLike | None = None,
    *,
    dt_s: float = DT_S,
    threads: int = 1,
) -> RoutingResult:
    """Route lateral inflows through a network for ``t`` steps of ``dt_s`` seconds.

    ``downstream[i]`` is the index of the segment segment i drains into, or -1 at an
    outlet. ``lateral_inflow_m3_s`` has shape (t, n). Initial flow and depth have shape
    (n,). Step k of the result is valid at t0 + k * dt_s (k = 1..t).

    ``threads`` > 1 splits the network into that many runs of consecutive segments that
    no link joins (as far as such cuts exist) and routes them at once; the results are
    the same to the bit. Leave it at 1 where the caller already runs routings in
    parallel (the worker routes several gauges at once).
    """
    size = params.size
    downstream = np.asarray(downstream, dtype=np.intp)
    lateral = np.asarray(lateral_inflow_m3_s, dtype=np.float32)
    if downstream.shape != (size,):
        raise ValueError(f"downstream must have shape ({size},), got {downstream.shape}")
    if lateral.ndim != 2 or lateral.shape[1] != size:
        raise ValueError(f"lateral inflow must have shape (t, {size}), got {lateral.shape}")
    if ((downstream < -1) | (downstream >= size)).any():
        raise ValueError("downstream holds an index outside the network")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    flow = np.broadcast_to(np.asarray(initial_flow_m3_s, dtype=np.float32), (size,)).copy()
    depth = (
        np.zeros(size, np.float32)
        if initial_depth_m is None
        else np.broadcast_to(np.asarray(initial_depth_m, dtype=np.float32), (size,)).copy()
    )
    steps = lateral.shape[0]
    out = tuple(np.empty((steps, size), np.float32) for _ in range(3))
    # Contiguous arrays always: one compiled signature, the one warm_up() compiles.
    channel = [np.ascontiguousarray(getattr(params, name)) for name in _KERNEL_ORDER]
    arguments = (
        *channel,
        downstream.astype(np.int64),
        np.ascontiguousarray(lateral),
        flow,
        depth,
        F32(dt_s),
        *out,
    )
    ranges = independent_ranges(downstream, threads)

    def route_range(bounds: tuple[int, int]) -> None:
        route_lanes(*arguments, *bounds)

    if len(ranges) == 1:
        route_range(ranges[0])
    else:
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            list(pool.map(route_range, ranges))  # re-raises a part's error
    return RoutingResult(*out)


def warm_up() -> None:
    """Compile the kernel (or load it from numba's cache) now rather than on the first
    forecast: a worker reports ready only once routing is instant."""
    params = ChannelParameters(
        **{name: np.ones(2, dtype=F32) for name in ChannelParameters.__dataclass_fields__}
    )
    route(params, np.array([1, -1]), np.ones((2, 2)), 1.0)
