"""Muskingum-Cunge routing as T-Route's "V02-structured" kernel computes it.

Pure numerics: arrays in, arrays out; no files, no clock, no settings. The kernel
reproduces the reference in IEEE float32 (RNR_SPEC section 4), so every operation
keeps the reference's order and single precision, and powers are computed the way a
correctly rounded ``powf`` is: in double precision, rounded once to float32 (numpy's
own float32 power is off by one unit in the last place about one call in five).

With ``assume_short_ts`` a segment's upstream inflow at step t is the sum of its
upstream segments' outflow at t-1, so all segments of one step are independent and
are solved together; each segment's secant iteration runs until it converges, the
others waiting behind a mask.

Shapes: ``n`` segments ordered upstream to downstream, ``t`` time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = np.float32
Array = npt.NDArray[np.float32]

DT_S = 300.0
MIN_DEPTH_M = F32(0.01)
MAX_ITERATIONS = 100
WIDENINGS = 4

_TWO_THIRDS = F32(2.0 / 3.0)
_FIVE_THIRDS = F32(5.0 / 3.0)
_HALF = F32(0.5)


def _pow(base: Array, exponent: np.float32) -> Array:
    """float32 ``base ** exponent`` rounded as the C library's ``powf`` rounds it."""
    return np.power(base.astype(np.float64), np.float64(exponent)).astype(np.float32)


@dataclass(frozen=True)
class ChannelParameters:
    """Per-segment channel geometry and roughness, each an array of shape (n,)."""

    length_m: Array  # dx
    bottom_width_m: Array  # bw
    top_width_m: Array  # tw
    floodplain_top_width_m: Array  # twcc
    manning_n: Array  # n
    floodplain_manning_n: Array  # ncc
    side_slope: Array  # cs (horizontal run per unit rise is 1/cs)
    bed_slope: Array  # s0

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

    flow_m3_s: Array
    velocity_m_s: Array
    depth_m: Array


@dataclass(frozen=True)
class _Segments:
    """Parameters and derived geometry of a set of segments, all arrays of one length."""

    dx: Array
    bw: Array
    twcc: Array
    n: Array
    ncc: Array
    s0: Array
    z: Array
    bfd: Array
    sqrt_1_z2: Array
    sqrt_s0: Array

    @classmethod
    def of(cls, params: ChannelParameters) -> _Segments:
        cs, bw, tw = params.side_slope, params.bottom_width_m, params.top_width_m
        with np.errstate(divide="ignore"):
            z = np.where(cs == 0, F32(1.0), F32(1.0) / cs).astype(np.float32)
        bfd = np.where(
            bw > tw,
            bw / F32(0.00001),
            np.where(bw == tw, bw / (F32(2.0) * z), (tw - bw) / (F32(2.0) * z)),
        ).astype(np.float32)
        return cls(
            dx=params.length_m,
            bw=bw,
            twcc=params.floodplain_top_width_m,
            n=params.manning_n,
            ncc=params.floodplain_manning_n,
            s0=params.bed_slope,
            z=z,
            bfd=bfd,
            sqrt_1_z2=np.sqrt(F32(1.0) + z * z),
            sqrt_s0=np.sqrt(params.bed_slope),
        )

    def take(self, positions: npt.NDArray[np.intp]) -> _Segments:
        return _Segments(**{name: values[positions] for name, values in vars(self).items()})


def _geometry(seg: _Segments, h: Array) -> tuple[Array, ...]:
    """Area, wetted perimeter and hydraulic radius (channel and floodplain) at depth h."""
    above = (h > seg.bfd) & (seg.twcc > 0)
    depth = np.where(above, seg.bfd, h)
    area = (seg.bw + depth * seg.z) * depth
    wp = seg.bw + F32(2.0) * depth * seg.sqrt_1_z2
    area_c = np.where(above, seg.twcc * (h - seg.bfd), F32(0.0))
    wp_c = np.where(above, seg.twcc + F32(2.0) * (h - seg.bfd), F32(0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.where(wp + wp_c > 0, (area + area_c) / (wp + wp_c), F32(0.0))
    return above, area, wp, area_c, wp_c, radius.astype(np.float32)


def _celerity(
    seg: _Segments, h: Array, above: Array, area: Array, area_c: Array, radius: Array, r23: Array
) -> Array:
    """Kinematic celerity; ``r23`` is radius ** (2/3), shared with the Manning term."""
    r53 = _pow(radius, _FIVE_THIRDS)
    floodplain = above & (seg.ncc > 0)
    width_depth = np.where(floodplain, seg.bfd, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        channel_term = (seg.sqrt_s0 / seg.n) * (
            _FIVE_THIRDS * r23
            - (_TWO_THIRDS * r53)
            * (F32(2.0) * seg.sqrt_1_z2 / (seg.bw + F32(2.0) * width_depth * seg.z))
        )
    ck = np.where(h > 0, channel_term, F32(0.0))
    if floodplain.any():  # usually few segments are above bankfull: pay the power for those
        on = np.flatnonzero(floodplain)
        over = h[on] - seg.bfd[on]
        with np.errstate(divide="ignore", invalid="ignore"):
            plain_term = ((seg.sqrt_s0[on] / seg.ncc[on]) * _FIVE_THIRDS) * _pow(over, _TWO_THIRDS)
            ck[on] = (channel_term[on] * area[on] + plain_term * area_c[on]) / (
                area[on] + area_c[on]
            )
    return np.maximum(F32(0.0), ck).astype(np.float32)


def _coefficients(
    seg: _Segments,
    dt: np.float32,
    h: Array,
    residual: Array,
    flows: tuple[Array, Array, Array, Array],
    upper: bool,
) -> tuple[Array, Array, Array, Array, Array]:
    """Muskingum coefficients at depth h and the residual f(h) there.

    ``residual`` is what X is computed from: Qj0 for the lower secant point, Qmc of
    the lower point's coefficients for the upper one (whose X is clipped to >= 0.25).
    """
    qup, quc, qdp, ql = flows
    above, area, wp, area_c, wp_c, radius = _geometry(seg, h)
    r23 = _pow(radius, _TWO_THIRDS)
    ck = _celerity(seg, h, above, area, area_c, radius, r23)
    with np.errstate(divide="ignore", invalid="ignore"):
        km = np.where(ck > 0, np.maximum(dt, seg.dx / ck), dt).astype(np.float32)
        width = np.where(above, seg.twcc, seg.bw + F32(2.0) * seg.z * h)
        x_raw = _HALF * (F32(1.0) - residual / (F32(2.0) * width * seg.s0 * ck * seg.dx))
    x = np.where(ck > 0, np.clip(x_raw, F32(0.25) if upper else F32(0.0), _HALF), _HALF).astype(
        np.float32
    )
    half_dt = dt / F32(2.0)
    d = km * (F32(1.0) - x) + half_dt
    c1 = (km * x + half_dt) / d
    c2 = (half_dt - km * x) / d
    c3 = (km * (F32(1.0) - x) - half_dt) / d
    c4 = (ql * dt) / d
    routed = c1 * qup + c2 * quc + c3 * qdp + c4
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = (wp * seg.n + wp_c * seg.ncc) / (wp + wp_c)
        manning = (F32(1.0) / n_eff) * (area + area_c) * r23 * seg.sqrt_s0
    f = np.where(wp + wp_c > 0, routed - manning, residual).astype(np.float32)
    return c1, c2, c3, c4, f


class _DepthSolve:
    """The secant solve of one time step for a set of segments.

    Iterations run over whole arrays with finished segments masked out, which costs
    far less than gathering the unfinished ones every iteration; only when fewer than
    half are still iterating is the set compacted.
    """

    def __init__(self, seg: _Segments, dt: np.float32, flows: tuple[Array, ...], h_prev: Array):
        size = h_prev.size
        self.seg, self.dt, self.flows = seg, dt, flows
        self.h = h_prev * F32(1.33) + MIN_DEPTH_M
        self.h0 = h_prev * F32(0.67)
        self.coefficients = [np.zeros(size, np.float32) for _ in range(4)]
        self.rerror = np.full(size, F32(1.0), np.float32)
        self.aerror = np.full(size, MIN_DEPTH_M, np.float32)
        self.max_iter = np.full(size, MAX_ITERATIONS)
        self.iteration = np.zeros(size, np.int64)

    def solve(self) -> None:
        """Iterate every segment to a stop, widening the bracket of those that ran out."""
        pending = np.arange(self.h.size)
        tries = np.zeros(self.h.size, np.int64)
        while pending.size:
            self.iteration[pending] = 0
            self._iterate(pending, np.zeros(pending.size, np.float32))
            exhausted = (self.iteration[pending] >= self.max_iter[pending]) & (
                self.h[pending] >= MIN_DEPTH_M
            )
            pending = pending[exhausted & (tries[pending] < WIDENINGS)]
            tries[pending] += 1
            self.max_iter[pending] += 25
            self.h[pending] *= F32(1.33)
            self.h0[pending] *= F32(0.67)

    def _iterate(self, positions: npt.NDArray[np.intp], qj0: Array) -> None:
        seg = self.seg.take(positions)
        flows = tuple(values[positions] for values in self.flows)
        h, h0 = self.h[positions], self.h0[positions]
        rerror, aerror = self.rerror[positions], self.aerror[positions]
        iteration, max_iter = self.iteration[positions], self.max_iter[positions]
        coefficients = [values[positions] for values in self.coefficients]
        running = np.ones(positions.size, bool)
        while running.any():
            if positions.size > 64 and running.mean() < 0.5:
                break
            c1, c2, c3, c4, f0 = _coefficients(seg, self.dt, h0, qj0, flows, upper=False)
            qmc_lower = c1 * flows[0] + c2 * flows[1] + c3 * flows[2] + c4
            c1, c2, c3, c4, f1 = _coefficients(seg, self.dt, h, qmc_lower, flows, upper=True)
            denominator = f0 - f1
            with np.errstate(divide="ignore", invalid="ignore"):
                h1 = np.where(denominator != 0, h - (f1 * (h0 - h)) / denominator, h)
                h1 = np.where((h1 < 0) | ~np.isfinite(h1), h, h1).astype(np.float32)
                positive = h > 0
                new_rerror = np.where(positive, np.abs((h1 - h) / h), F32(0.0))
            new_aerror = np.where(positive, np.abs(h1 - h), F32(0.9))
            np.copyto(qj0, f0, where=running)
            for store, value in zip(coefficients, (c1, c2, c3, c4), strict=True):
                np.copyto(store, value, where=running)
            np.copyto(rerror, new_rerror, where=running, casting="same_kind")
            np.copyto(aerror, new_aerror, where=running, casting="same_kind")
            np.copyto(h0, np.maximum(F32(0.0), h), where=running)
            np.copyto(h, np.maximum(F32(0.0), h1), where=running)
            iteration += running
            running &= (
                (rerror > F32(0.01))
                & (aerror >= MIN_DEPTH_M)
                & (iteration <= max_iter)
                & (h >= MIN_DEPTH_M)
            )
        self.h[positions], self.h0[positions] = h, h0
        self.rerror[positions], self.aerror[positions] = rerror, aerror
        self.iteration[positions] = iteration
        for store, value in zip(self.coefficients, coefficients, strict=True):
            store[positions] = value
        if running.any():  # compact: carry on with the few still iterating
            self._iterate(positions[running], qj0[running])


def _solve_step(
    segments: _Segments,
    dt: np.float32,
    qup: Array,
    quc: Array,
    qdp: Array,
    ql: Array,
    depth_prev: Array,
) -> tuple[Array, Array, Array]:
    """One time step for every segment: outflow, velocity, depth."""
    size = qup.size
    flow = np.zeros(size, np.float32)
    velocity = np.zeros(size, np.float32)
    depth = np.zeros(size, np.float32)
    wet = (ql > 0) | (qup > 0) | (quc > 0) | (qdp > 0)
    idx = np.flatnonzero(wet)
    if idx.size == 0:
        return flow, velocity, depth
    seg = segments.take(idx) if idx.size < size else segments
    flows = (qup[idx], quc[idx], qdp[idx], ql[idx])
    solve = _DepthSolve(seg, dt, flows, np.maximum(depth_prev[idx], F32(0.0)))
    solve.solve()

    c1, c2, c3, c4 = solve.coefficients
    q_up, q_uc, q_dp = flows[0], flows[1], flows[2]
    routed = c1 * q_up + c2 * q_uc + c3 * q_dp + c4
    water = c1 * q_up + c2 * q_uc + c3 * q_dp
    fallback = np.maximum(c1 * q_up + c2 * q_uc + c4, c1 * q_up + c3 * q_dp + c4)
    lost = (c4 < 0) & (np.abs(c4) > water)
    out = np.where(routed < 0, np.where(lost, F32(0.0), fallback), routed)

    h = solve.h
    top = seg.bw + F32(2.0) * seg.z * h
    half_spread = (top - seg.bw) / F32(2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = (h * (seg.bw + top) / F32(2.0)) / (
            seg.bw + F32(2.0) * np.sqrt(half_spread * half_spread + h * h)
        )
    vel = (F32(1.0) / seg.n) * _pow(radius.astype(np.float32), _TWO_THIRDS) * seg.sqrt_s0
    flow[idx] = out
    velocity[idx] = vel
    depth[idx] = h
    return flow, velocity, depth


def route(
    params: ChannelParameters,
    downstream: npt.NDArray[np.intp],
    lateral_inflow_m3_s: npt.ArrayLike,
    initial_flow_m3_s: npt.ArrayLike,
    initial_depth_m: npt.ArrayLike | None = None,
    *,
    dt_s: float = DT_S,
) -> RoutingResult:
    """Route lateral inflows through a network for ``t`` steps of ``dt_s`` seconds.

    ``downstream[i]`` is the index of the segment segment i drains into, or -1 at an
    outlet. ``lateral_inflow_m3_s`` has shape (t, n). Initial flow and depth have shape
    (n,). Step k of the result is valid at t0 + k * dt_s (k = 1..t).
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
    flow = np.broadcast_to(np.asarray(initial_flow_m3_s, dtype=np.float32), (size,)).copy()
    depth = (
        np.zeros(size, np.float32)
        if initial_depth_m is None
        else np.broadcast_to(np.asarray(initial_depth_m, dtype=np.float32), (size,)).copy()
    )
    segments = _Segments.of(params)
    dt = F32(dt_s)
    has_downstream = downstream >= 0
    targets = downstream[has_downstream]
    steps = lateral.shape[0]
    out_flow = np.empty((steps, size), np.float32)
    out_velocity = np.empty((steps, size), np.float32)
    out_depth = np.empty((steps, size), np.float32)
    for step in range(steps):
        upstream = np.zeros(size, np.float32)
        np.add.at(upstream, targets, flow[has_downstream])
        flow, velocity, depth = _solve_step(
            segments, dt, upstream, upstream, flow, lateral[step], depth
        )
        out_flow[step], out_velocity[step], out_depth[step] = flow, velocity, depth
    return RoutingResult(out_flow, out_velocity, out_depth)
