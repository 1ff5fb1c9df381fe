"""The Muskingum-Cunge step solved for a block of segments at once, secant round by round.

With ``assume_short_ts`` every segment of a step depends only on the previous step, so
the segments of a step are independent. Solved one after another (``_mc_compiled``),
each secant iteration waits on the one before it: a ``powf`` takes about 16 ns from
argument to result but a new one can start every 3.5 ns, the iteration's branches are
unpredictable, and nothing runs in SIMD lanes. Here the watered segments of a block
(the lanes) advance together, one secant iteration per round, in loops over the lanes:
the hydraulic radii, then all the powers in a loop of independent calls, then the
celerity, coefficients and secant update. The loops without calls have no branches the
compiler cannot turn into masks, so LLVM vectorises them across lanes (AVX-512 on this
machine class). The lanes' channel parameters and state are packed side by side
(structure of arrays); once half of them have stopped, the rest are packed together
again so that the vector loops do not carry idle lanes.

Each lane does exactly the arithmetic of ``_mc_compiled._segment_step``, in the same
order and with the same helpers; only the schedule differs, so the results are the
same to the bit (a unit test holds the two kernels to that, widening restarts
included).
"""

from __future__ import annotations

import llvmlite.binding
import numba
import numpy as np

from rnr.hydro._mc_compiled import (
    FIVE_THIRDS,
    LOWER_START,
    MIN_DEPTH,
    NO_FLOW_ERROR,
    ONE,
    REL_TOL,
    TWO,
    TWO_THIRDS,
    UPPER_START,
    ZERO,
    _celerity,
    _coefficients,
    _powf,
    _section,
    _sqrtf,
    channel_invariants,
)

# A round's loops read and write some forty rows; LLVM vectorises such a loop only
# after checking at run time that the rows do not overlap, and by default gives up
# beyond 8 checks. The checks cost a few hundred cycles per loop over a block, the
# vector loop saves far more. Vectorising never changes a float result here (no
# reassociation without fast-math flags), so raising the limit keeps every bit.
llvmlite.binding.set_option("rnr", "-runtime-memory-check-threshold=4096")
llvmlite.binding.set_option("rnr", "-vectorize-memory-check-threshold=4096")

# Segments per block: the lanes' rows (about 45 values each) stay in the L1/L2 caches.
BLOCK = 512

# The lanes' float values, one row of BLOCK each, in one flat array: the compiler then
# sees that two rows are BLOCK elements apart and vectorises without run-time overlap
# checks. Channel parameters of the lane's segment:
DX, BW, TWCC, N, NCC, Z, BFD, SQRT_1_Z2, SQRT_S0, S0 = (row * BLOCK for row in range(10))
# the geometry at the lower guess, as _mc_compiled._geometry returns it, then the one
# just computed (at ``DEPTH``):
AREA0, AREA_C0, WP0, WP_C0, R23_0, CK0, KM0, WIDTH0 = (row * BLOCK for row in range(10, 18))
AREA, AREA_C, WP, WP_C, R23, CK, KM, WIDTH = (row * BLOCK for row in range(18, 26))
GEOMETRY = 8  # rows in each
# the secant's state and scratch.
QUP, QDP, QL, H, H0, QJ0, C1, C2, C3, C4, RADIUS, PLAIN, DEPTH = (
    row * BLOCK for row in range(26, 39)
)
FLOAT_ROWS = 39
# What moves when the lanes still going are packed: parameters, lower geometry, state.
MOVING_FLOAT_ROWS = 18
MOVING_STATE = (QUP, QDP, QL, H, H0, QJ0)
# The lanes' integer values, likewise, and which of them move.
ITERATION, MAX_ITER, TRIES, ABOVE, ACTIVE, FRESH = (row * BLOCK for row in range(6))
INT_ROWS = 6
MOVING_INT_ROWS = 3
# ACTIVE: iterating, stopped this round (to be finished), finished.
GOING, STOPPED, FINISHED = 1, 0, -1


@numba.njit(cache=True, error_model="numpy")
def _geometries(m, f, c, select_row, dt):
    """The geometry at depth ``f[DEPTH + k]`` into the rows AREA..WIDTH, for the lanes
    ``k < m`` whose ``c[select_row + k]`` is 1 (the other lanes get values that are
    not used: computing them in the vector loop costs less than branching)."""
    for k in range(m):
        above, area, area_c, wp, wp_c, radius = _section(
            f[DEPTH + k], f[BW + k], f[TWCC + k], f[Z + k], f[BFD + k], f[SQRT_1_Z2 + k]
        )
        f[AREA + k] = area
        f[AREA_C + k] = area_c
        f[WP + k] = wp
        f[WP_C + k] = wp_c
        f[RADIUS + k] = radius
        c[ABOVE + k] = 1 if above else 0
    # The powers, in loops with nothing else: independent calls overlap.
    for k in range(m):
        if c[select_row + k] == 1:
            f[R23 + k] = _powf(f[RADIUS + k], TWO_THIRDS)
            f[CK + k] = _powf(f[RADIUS + k], FIVE_THIRDS)  # R^(5/3) until the celerity
    for k in range(m):
        if c[select_row + k] == 1 and c[ABOVE + k] == 1 and f[NCC + k] > ZERO:
            f[PLAIN + k] = _powf(f[DEPTH + k] - f[BFD + k], TWO_THIRDS)
    for k in range(m):
        h = f[DEPTH + k]
        above = c[ABOVE + k] == 1
        ck, km = _celerity(
            h,
            above,
            f[AREA + k],
            f[AREA_C + k],
            f[R23 + k],
            f[CK + k],
            f[PLAIN + k],
            dt,
            f[DX + k],
            f[BW + k],
            f[N + k],
            f[NCC + k],
            f[Z + k],
            f[BFD + k],
            f[SQRT_1_Z2 + k],
            f[SQRT_S0 + k],
        )
        f[CK + k] = ck
        f[KM + k] = km
        f[WIDTH + k] = f[TWCC + k] if above else f[BW + k] + TWO * f[Z + k] * h


@numba.njit(cache=True, error_model="numpy")
def _lower_geometries(m, f, c, select_row, dt):
    """The geometry at each selected lane's lower guess H0, into rows AREA0..WIDTH0."""
    for k in range(m):
        f[DEPTH + k] = f[H0 + k]
    _geometries(m, f, c, select_row, dt)
    for k in range(m):
        if c[select_row + k] == 1:
            for row in range(GEOMETRY):
                f[AREA0 + row * BLOCK + k] = f[AREA + row * BLOCK + k]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _secant_point(h, h0, f0, f1):
    """The secant's next depth and its relative and absolute change."""
    h1 = h - (f1 * (h0 - h)) / (f0 - f1)
    if f0 - f1 == ZERO or h1 < ZERO or not np.isfinite(h1):
        h1 = h
    positive = h > ZERO
    rerror = abs((h1 - h) / h) if positive else ZERO
    aerror = abs(h1 - h) if positive else NO_FLOW_ERROR
    return h1, rerror, aerror


@numba.njit(cache=True, error_model="numpy", inline="always")
def _both_points(lower, upper, qj0, qup, qdp, ql, dt, dx, n, ncc, s0, sqrt_s0):
    """Coefficients and residual at the lower guess, then at the upper one (whose X
    uses the routed flow of the lower's coefficients): C1..C4 of the upper, f0, f1."""
    a1, a2, a3, a4, f0 = _coefficients(
        lower, qj0, False, qup, qup, qdp, ql, dt, dx, n, ncc, s0, sqrt_s0
    )
    qmc_lower = a1 * qup + a2 * qup + a3 * qdp + a4
    c1, c2, c3, c4, f1 = _coefficients(
        upper, qmc_lower, True, qup, qup, qdp, ql, dt, dx, n, ncc, s0, sqrt_s0
    )
    return c1, c2, c3, c4, f0, f1


@numba.njit(cache=True, error_model="numpy")
def _secant_round(m, f, c, dt):
    """One secant iteration for every lane still going (the scalar kernel's inner-loop
    body), then its stopping and widening rules. The upper guess's geometry becomes
    the next lower one's."""
    for k in range(m):
        if c[ACTIVE + k] != GOING:
            continue
        qup, qdp, ql = f[QUP + k], f[QDP + k], f[QL + k]
        lower = (
            f[AREA0 + k],
            f[AREA_C0 + k],
            f[WP0 + k],
            f[WP_C0 + k],
            f[R23_0 + k],
            f[CK0 + k],
            f[KM0 + k],
            f[WIDTH0 + k],
        )
        upper = (
            f[AREA + k],
            f[AREA_C + k],
            f[WP + k],
            f[WP_C + k],
            f[R23 + k],
            f[CK + k],
            f[KM + k],
            f[WIDTH + k],
        )
        c1, c2, c3, c4, f0, f1 = _both_points(
            lower, upper, f[QJ0 + k], qup, qdp, ql, dt, f[DX + k], f[N + k], f[NCC + k],
            f[S0 + k], f[SQRT_S0 + k],
        )  # fmt: skip
        # The upper guess's geometry is the next iteration's lower one.
        f[AREA0 + k], f[AREA_C0 + k], f[WP0 + k], f[WP_C0 + k] = upper[:4]
        f[R23_0 + k], f[CK0 + k], f[KM0 + k], f[WIDTH0 + k] = upper[4:]
        f[C1 + k], f[C2 + k], f[C3 + k], f[C4 + k] = c1, c2, c3, c4
        h = f[H + k]
        h1, rerror, aerror = _secant_point(h, f[H0 + k], f0, f1)
        h0 = max(ZERO, h)
        h = max(ZERO, h1)
        iteration = c[ITERATION + k] + 1
        max_iter = c[MAX_ITER + k]
        tries = c[TRIES + k]
        settled = (h < MIN_DEPTH) | (rerror <= REL_TOL) | (aerror < MIN_DEPTH)
        going = (not settled) & (iteration <= max_iter)
        # Not converged within max_iter: widen the bracket, count again (RNR_SPEC section 4).
        widen = (h >= MIN_DEPTH) & (not going) & (iteration >= max_iter) & (tries < 4)
        restart = widen & (not settled)
        c[ITERATION + k] = 0 if widen else iteration
        c[MAX_ITER + k] = max_iter + 25 if widen else max_iter
        c[TRIES + k] = tries + 1 if widen else tries
        c[ACTIVE + k] = GOING if going | restart else STOPPED
        c[FRESH + k] = 1 if restart else 0
        f[QJ0 + k] = ZERO if widen else f0
        f[H + k] = h * UPPER_START if widen else h
        f[H0 + k] = h0 * LOWER_START if widen else h0


@numba.njit(cache=True, error_model="numpy")
def _finish_stopped(m, f, c, seg, out_flow, out_velocity, out_depth):
    """Outputs of the lanes that stopped this round (the scalar kernel's rule for a
    negative outflow; velocity from the trapezoid at the full depth). Returns how
    many lanes are still going and how many times the finished ones widened."""
    going = 0
    widened = 0
    for k in range(m):
        if c[ACTIVE + k] == GOING:
            going += 1
        if c[ACTIVE + k] != STOPPED:
            continue
        c[ACTIVE + k] = FINISHED
        widened += c[TRIES + k]
        qup, qdp = f[QUP + k], f[QDP + k]
        c1, c2, c3, c4 = f[C1 + k], f[C2 + k], f[C3 + k], f[C4 + k]
        routed = c1 * qup + c2 * qup + c3 * qdp + c4
        if routed < ZERO:
            if c4 < ZERO and abs(c4) > c1 * qup + c2 * qup + c3 * qdp:
                routed = ZERO
            else:
                routed = max(c1 * qup + c2 * qup + c4, c1 * qup + c3 * qdp + c4)
        h, bw, z = f[H + k], f[BW + k], f[Z + k]
        top = bw + TWO * z * h
        half_spread = (top - bw) / TWO
        radius = (h * (bw + top) / TWO) / (bw + TWO * _sqrtf(half_spread * half_spread + h * h))
        i = seg[k]
        out_flow[i] = routed
        out_velocity[i] = (ONE / f[N + k]) * _powf(radius, TWO_THIRDS) * f[SQRT_S0 + k]
        out_depth[i] = h
    return going, widened


@numba.njit(cache=True, error_model="numpy")
def _pack(m, f, c, seg):
    """Move the lanes still going to the front; returns their number."""
    w = 0
    for k in range(m):
        if c[ACTIVE + k] != GOING:
            continue
        if w != k:
            for row in range(MOVING_FLOAT_ROWS):
                f[row * BLOCK + w] = f[row * BLOCK + k]
            for row in MOVING_STATE:
                f[row + w] = f[row + k]
            for row in range(MOVING_INT_ROWS):
                c[row * BLOCK + w] = c[row * BLOCK + k]
            c[ACTIVE + w] = GOING
            seg[w] = seg[k]
        w += 1
    return w


@numba.njit(cache=True, error_model="numpy")
def _iterate(m, lanes, outputs, dt):
    """Secant rounds until no lane is going; packs the lanes once half have stopped.
    Returns how many times lanes widened their bracket."""
    f, c, seg = lanes
    widened = 0
    out_flow, out_velocity, out_depth = outputs
    _lower_geometries(m, f, c, ACTIVE, dt)
    while m > 0:
        for k in range(m):
            f[DEPTH + k] = f[H + k]
        _geometries(m, f, c, ACTIVE, dt)
        _secant_round(m, f, c, dt)
        fresh = 0
        for k in range(m):
            fresh += c[FRESH + k]
        if fresh > 0:
            # A widened lane's lower guess moved: its geometry anew (rare).
            _lower_geometries(m, f, c, FRESH, dt)
            c[FRESH : FRESH + m] = 0
        going, finished_widened = _finish_stopped(m, f, c, seg, out_flow, out_velocity, out_depth)
        widened += finished_widened
        if going == 0:
            break
        if 2 * going <= m:
            m = _pack(m, f, c, seg)
    return widened


@numba.njit(cache=True, error_model="numpy")
def _start_lanes(start, stop, inputs, ch, lanes, outputs):
    """The watered segments of ``start .. stop - 1`` become lanes (inputs, parameters,
    first secant points); a segment with no water anywhere gets outputs 0. Returns the
    number of lanes."""
    upstream, flow_prev, depth_prev, lateral_row = inputs
    f, c, seg = lanes
    out_flow, out_velocity, out_depth = outputs
    m = 0
    for i in range(start, stop):
        qup, qdp, ql = upstream[i], flow_prev[i], lateral_row[i]
        if not (ql > ZERO or qup > ZERO or qdp > ZERO):
            out_flow[i] = ZERO
            out_velocity[i] = ZERO
            out_depth[i] = ZERO
            continue
        for row in range(ch.shape[0]):
            f[row * BLOCK + m] = ch[row, i]
        h_prev = max(depth_prev[i], ZERO)
        f[QUP + m], f[QDP + m], f[QL + m] = qup, qdp, ql
        f[H + m] = h_prev * UPPER_START + MIN_DEPTH
        f[H0 + m] = h_prev * LOWER_START
        f[QJ0 + m] = ZERO
        f[PLAIN + m] = ZERO
        c[ITERATION + m], c[MAX_ITER + m], c[TRIES + m] = 0, 100, 0
        c[ACTIVE + m], c[FRESH + m] = GOING, 0
        seg[m] = i
        m += 1
    return m


@numba.njit(cache=True, error_model="numpy")
def _channel_rows(dx, bw, tw, twcc, n, ncc, cs, s0):
    """The channel parameters and their invariants, one row each, in the order of the
    lanes' parameter rows (DX .. S0)."""
    z, bfd, sqrt_1_z2, sqrt_s0 = channel_invariants(bw, tw, cs, s0)
    ch = np.empty((10, dx.size), np.float32)
    for row, values in enumerate((dx, bw, twcc, n, ncc, z, bfd, sqrt_1_z2, sqrt_s0, s0)):
        ch[row] = values
    return ch


# nogil: the worker routes several gauges in threads, and route() may split a network.
@numba.njit(cache=True, error_model="numpy", nogil=True)
def route_lanes(
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
    lo,
    hi,
):
    """All steps for segments ``lo .. hi - 1``, which no downstream link leaves.

    A step reads the previous step's output row (or ``flow``/``depth`` before the first)
    and writes its own: no state copies between steps. Returns how many times a
    segment-step widened its secant bracket (RNR_SPEC section 4), for the tests.
    """
    ch = _channel_rows(dx, bw, tw, twcc, n, ncc, cs, s0)
    lanes = (
        np.zeros(FLOAT_ROWS * BLOCK, np.float32),
        np.zeros(INT_ROWS * BLOCK, np.int32),
        np.zeros(BLOCK, np.int64),
    )
    upstream = np.zeros(dx.size, np.float32)
    widened = 0
    for step in range(lateral.shape[0]):
        flow_prev = flow if step == 0 else out_flow[step - 1]
        depth_prev = depth if step == 0 else out_depth[step - 1]
        upstream[lo:hi] = ZERO
        for i in range(lo, hi):
            if downstream[i] >= 0:
                upstream[downstream[i]] += flow_prev[i]
        inputs = (upstream, flow_prev, depth_prev, lateral[step])
        outputs = (out_flow[step], out_velocity[step], out_depth[step])
        for start in range(lo, hi, BLOCK):
            m = _start_lanes(start, min(start + BLOCK, hi), inputs, ch, lanes, outputs)
            widened += _iterate(m, lanes, outputs, dt)
    return widened
