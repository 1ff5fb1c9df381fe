"""The Muskingum-Cunge physics, compiled, and the kernel that solves one segment at a time.

Same arithmetic as RNR_SPEC section 4 in IEEE float32, written as scalar code and
compiled with numba: a numpy formulation pays Python's per-operation overhead on every
secant iteration, which dominates on the tens of segments a gauge forecast routes.
Every literal is a float32, every power is the C library's ``powf``, and a division
by zero gives inf or nan as compiled Fortran does (numba's "numpy" error model) rather
than raising, so the results are the reference's to the bit.

The helpers (``_section``, ``_celerity``, ``_coefficients``) are what ``_mc_lanes``
builds its lane kernel from, which ``route()`` runs. ``route_compiled`` solves the
segments in turn, each with its own secant loop, as T-Route's Fortran does: it is the
spec's algorithm line by line, kept as the oracle the tests hold the lane kernel to
(bit for bit) and as the same-run baseline of ``bench/routing.py``.
"""

from __future__ import annotations

import ctypes.util
import math

import llvmlite.binding
import numba
import numpy as np
from numba import types

from rnr.hydro.types import F32

# The C library's powf, as the reference (T-Route, compiled Fortran) calls it. glibc's
# powf is not correctly rounded (within 0.82 units in the last place), and matching the
# reference bit for bit means making the same roundings; it is also twice as fast as
# a double-precision pow rounded to float32.
llvmlite.binding.load_library_permanently(ctypes.util.find_library("m"))
_c_powf = types.ExternalFunction("powf", types.float32(types.float32, types.float32))

ZERO = F32(0.0)
ONE = F32(1.0)
TWO = F32(2.0)
HALF = F32(0.5)
QUARTER = F32(0.25)
TWO_THIRDS = F32(2.0 / 3.0)
FIVE_THIRDS = F32(5.0 / 3.0)
MIN_DEPTH = F32(0.01)
REL_TOL = F32(0.01)
NO_FLOW_ERROR = F32(0.9)
UPPER_START = F32(1.33)
LOWER_START = F32(0.67)
BW_OVER_TW = F32(0.00001)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _powf(base: float, exponent: float) -> float:
    return _c_powf(base, exponent)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _sqrtf(value: float) -> np.float32:
    return F32(math.sqrt(np.float64(value)))


@numba.njit(cache=True, error_model="numpy", inline="always")
def _section(h, bw, twcc, z, bfd, sqrt_1_z2):
    """Areas, wetted perimeters and hydraulic radius at depth h: everything of the
    geometry that comes before a power, so that a caller solving many segments at once
    can take all their powers in one tight loop."""
    above = h > bfd and twcc > ZERO
    if above:
        area = (bw + bfd * z) * bfd
        wp = bw + TWO * bfd * sqrt_1_z2
        area_c = twcc * (h - bfd)
        wp_c = twcc + TWO * (h - bfd)
    else:
        area = (bw + h * z) * h
        wp = bw + TWO * h * sqrt_1_z2
        area_c = ZERO
        wp_c = ZERO
    radius = (area + area_c) / (wp + wp_c) if wp + wp_c > ZERO else ZERO
    return above, area, area_c, wp, wp_c, radius


@numba.njit(cache=True, error_model="numpy", inline="always")
def _celerity(h, above, area, area_c, r23, r53, plain_r23, dt, dx, bw, n, ncc, z, bfd, sqrt_1_z2,
              sqrt_s0):  # fmt: skip
    """Kinematic celerity, Muskingum K and water-surface width, given the powers:
    ``r23``, ``r53`` of the hydraulic radius and ``plain_r23`` = (h - bfd)^(2/3), which
    only the floodplain (``above and ncc > 0``) uses."""
    if above and ncc > ZERO:
        channel = (sqrt_s0 / n) * (
            FIVE_THIRDS * r23 - (TWO_THIRDS * r53) * (TWO * sqrt_1_z2 / (bw + TWO * bfd * z))
        )
        plain = ((sqrt_s0 / ncc) * FIVE_THIRDS) * plain_r23
        ck = max(ZERO, (channel * area + plain * area_c) / (area + area_c))
    elif h > ZERO:
        ck = max(
            ZERO,
            (sqrt_s0 / n)
            * (FIVE_THIRDS * r23 - (TWO_THIRDS * r53) * (TWO * sqrt_1_z2 / (bw + TWO * h * z))),
        )
    else:
        ck = ZERO
    km = max(dt, dx / ck) if ck > ZERO else dt
    return ck, km


@numba.njit(cache=True, error_model="numpy")
def _geometry(h, dt, dx, bw, twcc, n, ncc, z, bfd, sqrt_1_z2, sqrt_s0):
    """What depends on the depth h alone: areas, wetted perimeters, R^(2/3), celerity,
    the Muskingum K and the water-surface width.

    Split from :func:`_coefficients` because the secant solve evaluates each depth twice
    (as its upper guess, then as the next iteration's lower one): keeping this part
    halves the ``powf`` calls, which dominate the kernel, without changing any value.
    """
    above, area, area_c, wp, wp_c, radius = _section(h, bw, twcc, z, bfd, sqrt_1_z2)
    r23 = _powf(radius, TWO_THIRDS)
    r53 = _powf(radius, FIVE_THIRDS)
    plain_r23 = _powf(h - bfd, TWO_THIRDS) if above and ncc > ZERO else ZERO
    ck, km = _celerity(
        h, above, area, area_c, r23, r53, plain_r23, dt, dx, bw, n, ncc, z, bfd, sqrt_1_z2, sqrt_s0
    )
    width = twcc if above else bw + TWO * z * h
    return area, area_c, wp, wp_c, r23, ck, km, width


@numba.njit(cache=True, error_model="numpy", inline="always")
def _coefficients(geometry, residual, upper, qup, quc, qdp, ql, dt, dx, n, ncc, s0, sqrt_s0):
    """Coefficients C1..C4 at a depth (its :func:`_geometry`) and the residual f(h)
    (RNR_SPEC section 4)."""
    area, area_c, wp, wp_c, r23, ck, km, width = geometry
    if ck > ZERO:
        x = HALF * (ONE - residual / (TWO * width * s0 * ck * dx))
        x = min(HALF, max(QUARTER if upper else ZERO, x))
    else:
        x = HALF
    half_dt = dt / TWO
    d = km * (ONE - x) + half_dt
    c1 = (km * x + half_dt) / d
    c2 = (half_dt - km * x) / d
    c3 = (km * (ONE - x) - half_dt) / d
    c4 = (ql * dt) / d
    f = residual
    if wp + wp_c > ZERO:
        routed = c1 * qup + c2 * quc + c3 * qdp + c4
        n_eff = (wp * n + wp_c * ncc) / (wp + wp_c)
        f = routed - (ONE / n_eff) * (area + area_c) * r23 * sqrt_s0
    return c1, c2, c3, c4, f


@numba.njit(cache=True, error_model="numpy")
def _segment_step(
    qup, quc, qdp, ql, depth_prev, dt, dx, bw, twcc, n, ncc, s0, z, bfd, sqrt_1_z2, sqrt_s0
):
    """Outflow, velocity and depth of one segment for one step."""
    if not (ql > ZERO or qup > ZERO or quc > ZERO or qdp > ZERO):
        return ZERO, ZERO, ZERO
    h_prev = max(depth_prev, ZERO)
    h = h_prev * UPPER_START + MIN_DEPTH
    h0 = h_prev * LOWER_START
    c1 = c2 = c3 = c4 = ZERO
    rerror = ONE
    aerror = MIN_DEPTH
    max_iter = 100
    tries = 0
    while True:
        qj0 = ZERO
        iteration = 0
        # The lower guess of an iteration is the previous upper one (h0 = max(0, h) and
        # h >= 0): reuse its geometry. Fresh at the start and after each widening.
        geometry_h0 = _geometry(h0, dt, dx, bw, twcc, n, ncc, z, bfd, sqrt_1_z2, sqrt_s0)
        while rerror > REL_TOL and aerror >= MIN_DEPTH and iteration <= max_iter:
            geometry_h = _geometry(h, dt, dx, bw, twcc, n, ncc, z, bfd, sqrt_1_z2, sqrt_s0)
            a1, a2, a3, a4, f0 = _coefficients(
                geometry_h0, qj0, False, qup, quc, qdp, ql, dt, dx, n, ncc, s0, sqrt_s0
            )
            qmc_lower = a1 * qup + a2 * quc + a3 * qdp + a4
            c1, c2, c3, c4, f1 = _coefficients(
                geometry_h, qmc_lower, True, qup, quc, qdp, ql, dt, dx, n, ncc, s0, sqrt_s0
            )
            geometry_h0 = geometry_h
            qj0 = f0
            if f0 - f1 != ZERO:
                h1 = h - (f1 * (h0 - h)) / (f0 - f1)
                if h1 < ZERO or not math.isfinite(h1):
                    h1 = h
            else:
                h1 = h
            if h > ZERO:
                rerror = abs((h1 - h) / h)
                aerror = abs(h1 - h)
            else:
                rerror = ZERO
                aerror = NO_FLOW_ERROR
            h0 = max(ZERO, h)
            h = max(ZERO, h1)
            iteration += 1
            if h < MIN_DEPTH:
                break
        if h < MIN_DEPTH or iteration < max_iter or tries >= 4:
            break
        tries += 1
        h = h * UPPER_START
        h0 = h0 * LOWER_START
        max_iter += 25

    routed = c1 * qup + c2 * quc + c3 * qdp + c4
    if routed < ZERO:
        if c4 < ZERO and abs(c4) > c1 * qup + c2 * quc + c3 * qdp:
            outflow = ZERO
        else:
            outflow = max(c1 * qup + c2 * quc + c4, c1 * qup + c3 * qdp + c4)
    else:
        outflow = routed
    top = bw + TWO * z * h
    half_spread = (top - bw) / TWO
    radius = (h * (bw + top) / TWO) / (bw + TWO * _sqrtf(half_spread * half_spread + h * h))
    velocity = (ONE / n) * _powf(radius, TWO_THIRDS) * sqrt_s0
    return outflow, velocity, h


@numba.njit(cache=True, error_model="numpy")
def channel_invariants(bw, tw, cs, s0):
    """What depends on the channel alone, once per run rather than per iteration: side
    slope z, bankfull depth, sqrt(1 + z^2) and sqrt(s0), each of shape (n,)."""
    size = bw.size
    z = np.empty(size, np.float32)
    bfd = np.empty(size, np.float32)
    sqrt_1_z2 = np.empty(size, np.float32)
    sqrt_s0 = np.empty(size, np.float32)
    for i in range(size):
        z[i] = ONE if cs[i] == ZERO else ONE / cs[i]
        if bw[i] > tw[i]:
            bfd[i] = bw[i] / BW_OVER_TW
        elif bw[i] == tw[i]:
            bfd[i] = bw[i] / (TWO * z[i])
        else:
            bfd[i] = (tw[i] - bw[i]) / (TWO * z[i])
        sqrt_1_z2[i] = _sqrtf(ONE + z[i] * z[i])
        sqrt_s0[i] = _sqrtf(s0[i])
    return z, bfd, sqrt_1_z2, sqrt_s0


# nogil: the worker routes several gauges in threads, and they run on all cores.
@numba.njit(cache=True, error_model="numpy", nogil=True)
def route_compiled(
    dx,
    bw,
    tw,
    twcc,
    n,
    ncc,
    cs,
    s0,
    downstream,
    lateral,
    flow,
    depth,
    dt,
    out_flow,
    out_velocity,
    out_depth,
):
    """All steps: upstream inflow is the sum of upstream outflows at t-1 (short ts)."""
    size = dx.size
    z, bfd, sqrt_1_z2, sqrt_s0 = channel_invariants(bw, tw, cs, s0)
    upstream = np.zeros(size, np.float32)
    next_flow = np.zeros(size, np.float32)
    next_depth = np.zeros(size, np.float32)
    for step in range(lateral.shape[0]):
        upstream[:] = ZERO
        for i in range(size):
            if downstream[i] >= 0:
                upstream[downstream[i]] += flow[i]
        for i in range(size):
            q, v, d = _segment_step(
                upstream[i],
                upstream[i],
                flow[i],
                lateral[step, i],
                depth[i],
                dt,
                dx[i],
                bw[i],
                twcc[i],
                n[i],
                ncc[i],
                s0[i],
                z[i],
                bfd[i],
                sqrt_1_z2[i],
                sqrt_s0[i],
            )
            next_flow[i] = q
            out_velocity[step, i] = v
            next_depth[i] = d
        flow[:] = next_flow
        depth[:] = next_depth
        out_flow[step] = flow
        out_depth[step] = depth
