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


class _Channel:
    """Derived geometry, computed once per routing run."""

    def __init__(self, params: ChannelParameters) -> None:
        self.p = params
        cs = params.side_slope
        with np.errstate(divide="ignore"):
            self.z = np.where(cs == 0, F32(1.0), F32(1.0) / cs).astype(np.float32)
        bw, tw, z = params.bottom_width_m, params.top_width_m, self.z
        self.bfd = np.where(
            bw > tw,
            bw / F32(0.00001),
            np.where(bw == tw, bw / (F32(2.0) * z), (tw - bw) / (F32(2.0) * z)),
        ).astype(np.float32)
        self.sqrt_1_z2 = np.sqrt(F32(1.0) + z * z)
        self.sqrt_s0 = np.sqrt(params.bed_slope)


def _geometry(ch: _Channel, idx: npt.NDArray[np.intp], h: Array) -> tuple[Array, ...]:
    """Area, wetted perimeter and hydraulic radius (channel and floodplain) at depth h."""
    p = ch.p
    bw, z, bfd, twcc = p.bottom_width_m[idx], ch.z[idx], ch.bfd[idx], p.floodplain_top_width_m[idx]
    sqrt_1_z2 = ch.sqrt_1_z2[idx]
    above = (h > bfd) & (twcc > 0)
    depth = np.where(above, bfd, h)
    area = (bw + depth * z) * depth
    wp = bw + F32(2.0) * depth * sqrt_1_z2
    area_c = np.where(above, twcc * (h - bfd), F32(0.0))
    wp_c = np.where(above, twcc + F32(2.0) * (h - bfd), F32(0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.where(wp + wp_c > 0, (area + area_c) / (wp + wp_c), F32(0.0))
    return above, area, wp, area_c, wp_c, radius.astype(np.float32)


def _celerity(
    ch: _Channel,
    idx: npt.NDArray[np.intp],
    h: Array,
    above: Array,
    area: Array,
    area_c: Array,
    radius: Array,
) -> Array:
    p = ch.p
    bw, z, bfd = p.bottom_width_m[idx], ch.z[idx], ch.bfd[idx]
    n, ncc = p.manning_n[idx], p.floodplain_manning_n[idx]
    sqrt_s0, sqrt_1_z2 = ch.sqrt_s0[idx], ch.sqrt_1_z2[idx]
    r23 = _pow(radius, _TWO_THIRDS)
    r53 = _pow(radius, _FIVE_THIRDS)
    floodplain = above & (ncc > 0)
    width_depth = np.where(floodplain, bfd, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        channel_term = (sqrt_s0 / n) * (
            _FIVE_THIRDS * r23
            - (_TWO_THIRDS * r53) * (F32(2.0) * sqrt_1_z2 / (bw + F32(2.0) * width_depth * z))
        )
        over = np.maximum(h - bfd, F32(0.0))
        plain_term = ((sqrt_s0 / ncc) * _FIVE_THIRDS) * _pow(over, _TWO_THIRDS)
        mixed = (channel_term * area + plain_term * area_c) / (area + area_c)
    ck = np.where(floodplain, mixed, np.where(h > 0, channel_term, F32(0.0)))
    return np.maximum(F32(0.0), ck).astype(np.float32)


def _coefficients(
    ch: _Channel,
    idx: npt.NDArray[np.intp],
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
    p = ch.p
    qup, quc, qdp, ql = flows
    dx, bw, z, twcc = (
        p.length_m[idx],
        p.bottom_width_m[idx],
        ch.z[idx],
        p.floodplain_top_width_m[idx],
    )
    n, ncc, s0, sqrt_s0 = (
        p.manning_n[idx],
        p.floodplain_manning_n[idx],
        p.bed_slope[idx],
        ch.sqrt_s0[idx],
    )
    above, area, wp, area_c, wp_c, radius = _geometry(ch, idx, h)
    ck = _celerity(ch, idx, h, above, area, area_c, radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        km = np.where(ck > 0, np.maximum(dt, dx / ck), dt).astype(np.float32)
        width = np.where(above, twcc, bw + F32(2.0) * z * h)
        x_raw = _HALF * (F32(1.0) - residual / (F32(2.0) * width * s0 * ck * dx))
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
        n_eff = (wp * n + wp_c * ncc) / (wp + wp_c)
        manning = (F32(1.0) / n_eff) * (area + area_c) * _pow(radius, _TWO_THIRDS) * sqrt_s0
    f = np.where(wp + wp_c > 0, routed - manning, residual).astype(np.float32)
    return c1, c2, c3, c4, f


def _solve_step(
    ch: _Channel, dt: np.float32, qup: Array, quc: Array, qdp: Array, ql: Array, depth_prev: Array
) -> tuple[Array, Array, Array]:
    """One time step for every segment: outflow, velocity, depth."""
    size = ch.p.size
    flow = np.zeros(size, np.float32)
    velocity = np.zeros(size, np.float32)
    depth = np.zeros(size, np.float32)
    wet = (ql > 0) | (qup > 0) | (quc > 0) | (qdp > 0)
    idx = np.flatnonzero(wet)
    if idx.size == 0:
        return flow, velocity, depth

    h_prev = np.maximum(depth_prev[idx], F32(0.0))
    h = h_prev * F32(1.33) + MIN_DEPTH_M
    h0 = h_prev * F32(0.67)
    coeffs = [np.zeros(idx.size, np.float32) for _ in range(4)]
    # Solve each segment's depth; ``pending`` indexes into idx.
    pending = np.arange(idx.size)
    max_iter = np.full(idx.size, MAX_ITERATIONS)
    tries = np.zeros(idx.size, np.int64)
    rerror = np.full(idx.size, F32(1.0), np.float32)
    aerror = np.full(idx.size, F32(0.01), np.float32)
    while pending.size:
        sub = idx[pending]
        flows = (qup[sub], quc[sub], qdp[sub], ql[sub])
        qj0 = np.zeros(pending.size, np.float32)
        iteration = np.zeros(pending.size, np.int64)
        active = np.arange(pending.size)
        hs, h0s = h[pending], h0[pending]
        re, ae = rerror[pending], aerror[pending]
        cs = [c[pending] for c in coeffs]
        while active.size:
            a_sub = sub[active]
            a_flows = tuple(f[active] for f in flows)
            c1, c2, c3, c4, f0 = _coefficients(
                ch, a_sub, dt, h0s[active], qj0[active], a_flows, upper=False
            )
            qmc_lower = c1 * a_flows[0] + c2 * a_flows[1] + c3 * a_flows[2] + c4
            c1, c2, c3, c4, f1 = _coefficients(
                ch, a_sub, dt, hs[active], qmc_lower, a_flows, upper=True
            )
            qj0[active] = f0
            for store, value in zip(cs, (c1, c2, c3, c4), strict=True):
                store[active] = value
            h_a, h0_a = hs[active], h0s[active]
            denominator = f0 - f1
            with np.errstate(divide="ignore", invalid="ignore"):
                h1 = np.where(denominator != 0, h_a - (f1 * (h0_a - h_a)) / denominator, h_a)
            h1 = np.where((h1 < 0) | ~np.isfinite(h1), h_a, h1).astype(np.float32)
            positive = h_a > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                re[active] = np.where(positive, np.abs((h1 - h_a) / h_a), F32(0.0))
            ae[active] = np.where(positive, np.abs(h1 - h_a), F32(0.9))
            h0s[active] = np.maximum(F32(0.0), h_a)
            hs[active] = np.maximum(F32(0.0), h1)
            iteration[active] += 1
            keep = (
                (re[active] > F32(0.01))
                & (ae[active] >= MIN_DEPTH_M)
                & (iteration[active] <= max_iter[pending][active])
                & (hs[active] >= MIN_DEPTH_M)
            )
            active = active[keep]
        h[pending], h0[pending] = hs, h0s
        rerror[pending], aerror[pending] = re, ae
        for store, value in zip(coeffs, cs, strict=True):
            store[pending] = value
        # Widen the bracket of segments that ran out of iterations, up to 4 times.
        widen = (
            (iteration >= max_iter[pending]) & (hs >= MIN_DEPTH_M) & (tries[pending] < WIDENINGS)
        )
        pending = pending[widen]
        tries[pending] += 1
        max_iter[pending] += 25
        h[pending] *= F32(1.33)
        h0[pending] *= F32(0.67)

    c1, c2, c3, c4 = coeffs
    q_up, q_uc, q_dp = qup[idx], quc[idx], qdp[idx]
    routed = c1 * q_up + c2 * q_uc + c3 * q_dp + c4
    water = c1 * q_up + c2 * q_uc + c3 * q_dp
    fallback = np.maximum(c1 * q_up + c2 * q_uc + c4, c1 * q_up + c3 * q_dp + c4)
    lost = (c4 < 0) & (np.abs(c4) > water)
    out = np.where(routed < 0, np.where(lost, F32(0.0), fallback), routed)

    p = ch.p
    bw, z, n = p.bottom_width_m[idx], ch.z[idx], p.manning_n[idx]
    top = bw + F32(2.0) * z * h
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = (h * (bw + top) / F32(2.0)) / (
            bw + F32(2.0) * np.sqrt(((top - bw) / F32(2.0)) * ((top - bw) / F32(2.0)) + h * h)
        )
    vel = (F32(1.0) / n) * _pow(radius.astype(np.float32), _TWO_THIRDS) * ch.sqrt_s0[idx]
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
    channel = _Channel(params)
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
            channel, dt, upstream, upstream, flow, lateral[step], depth
        )
        out_flow[step], out_velocity[step], out_depth[step] = flow, velocity, depth
    return RoutingResult(out_flow, out_velocity, out_depth)
