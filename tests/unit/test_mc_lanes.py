"""The lane kernel (many segments of a step solved together, in SIMD lanes) against the
one-segment-at-a-time kernel that mirrors RNR_SPEC section 4 line by line: the same
float32 values to the bit, on networks that exercise the floodplain, the widening
restarts, dry segments and several blocks of lanes; and the threaded split."""

from __future__ import annotations

import numpy as np
import pytest

from rnr.hydro._mc_compiled import channel_invariants, route_compiled
from rnr.hydro._mc_lanes import BLOCK, route_lanes
from rnr.hydro._mc_split import independent_ranges
from rnr.hydro.muskingum_cunge import ChannelParameters, route

CHANNEL = ("dx", "bw", "tw", "twcc", "n", "ncc", "cs", "s0")


def floodplain_network(
    seed: int, chains: int = 30, length: int = 40, steps: int = 288
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Narrow, shallow channels (some 0.1 m wide, slopes down to 3e-7) fed floods that
    put most segments above bankfull: the cases where the secant struggles."""
    rng = np.random.default_rng(seed)
    size = chains * length
    bw = rng.uniform(2, 15, size)
    tw = bw * rng.uniform(1.1, 1.6, size)
    channel = {
        "dx": rng.uniform(300, 3000, size),
        "bw": np.where(rng.random(size) < 0.3, 0.1, bw),  # deep, narrow bankfull sections
        "tw": tw,
        "twcc": tw * rng.uniform(2, 6, size),
        "n": rng.uniform(0.03, 0.07, size),
        "ncc": rng.uniform(0.06, 0.15, size),
        "cs": rng.uniform(0.3, 3, size),
        "s0": 10 ** rng.uniform(-6.5, -3, size),
    }
    downstream = np.arange(1, size + 1)
    downstream[length - 1 :: length] = -1
    lateral = np.zeros((steps, size))
    lateral[:, ::length] = np.linspace(50, 1500, steps)[:, None] * rng.uniform(0.5, 2, chains)
    return (
        {name: values.astype(np.float32) for name, values in channel.items()},
        downstream.astype(np.int64),
        lateral.astype(np.float32),
    )


def run(kernel, channel, downstream, lateral, initial_flow: float, *bounds: int):
    size = downstream.size
    outputs = [np.empty(lateral.shape, np.float32) for _ in range(3)]
    returned = kernel(
        *(channel[name] for name in CHANNEL), downstream, lateral,
        np.full(size, initial_flow, np.float32), np.zeros(size, np.float32), np.float32(300.0),
        *outputs, *bounds,
    )  # fmt: skip
    return outputs, returned


def assert_same_bits(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    for name, a, e in zip(("flow", "velocity", "depth"), actual, expected, strict=True):
        differ = a.view(np.int32) != e.view(np.int32)
        assert not differ.any(), f"{name} differs at {int(differ.sum())} segment-steps"


@pytest.mark.parametrize("seed", [3, 10, 11])
def test_floodplain_network_with_restarts_matches_scalar_kernel_bit_for_bit(seed: int) -> None:
    channel, downstream, lateral = floodplain_network(seed)
    expected, _ = run(route_compiled, channel, downstream, lateral, 20.0)
    actual, widened = run(route_lanes, channel, downstream, lateral, 20.0, 0, downstream.size)
    _, bankfull, _, _ = channel_invariants(
        channel["bw"], channel["tw"], channel["cs"], channel["s0"]
    )
    assert (actual[2] > bankfull).mean() > 0.8, "the case must be floodplain-heavy"
    assert widened > 100, f"the case must make the secant widen its bracket, got {widened}"
    assert_same_bits(actual, expected)


def test_dry_segments_and_several_blocks_match_scalar_kernel() -> None:
    """Blocks of lanes with dry segments (no water anywhere: outputs 0) between wet
    ones, over more than two blocks, and a part-full last block."""
    channel, downstream, lateral = floodplain_network(1, chains=2 * BLOCK // 40 + 3, length=40)
    lateral[:, ::80] = 0.0  # every other chain has no inflow ...
    expected, _ = run(route_compiled, channel, downstream, lateral, 0.0)  # ... and starts dry
    actual, _ = run(route_lanes, channel, downstream, lateral, 0.0, 0, downstream.size)
    assert (actual[0] == 0).mean() > 0.3
    assert_same_bits(actual, expected)


def test_a_range_of_the_network_is_routed_alone() -> None:
    channel, downstream, lateral = floodplain_network(0, chains=4, length=40)
    whole, _ = run(route_lanes, channel, downstream, lateral, 20.0, 0, 160)
    part = [np.zeros_like(values) for values in whole]
    route_lanes(
        *(channel[name] for name in CHANNEL), downstream, lateral, np.full(160, 20, np.float32),
        np.zeros(160, np.float32), np.float32(300.0), *part, 40, 120,
    )  # fmt: skip
    assert_same_bits([values[:, 40:120] for values in part], [v[:, 40:120] for v in whole])
    assert not part[0][:, :40].any() and not part[0][:, 120:].any()


def test_two_threads_give_the_same_bits_as_one() -> None:
    channel, downstream, lateral = floodplain_network(2, chains=10, length=40)
    params = ChannelParameters(
        length_m=channel["dx"], bottom_width_m=channel["bw"], top_width_m=channel["tw"],
        floodplain_top_width_m=channel["twcc"], manning_n=channel["n"],
        floodplain_manning_n=channel["ncc"], side_slope=channel["cs"], bed_slope=channel["s0"],
    )  # fmt: skip
    one = route(params, downstream, lateral, 20.0)
    two = route(params, downstream, lateral, 20.0, threads=2)
    assert_same_bits(
        [two.flow_m3_s, two.velocity_m_s, two.depth_m],
        [one.flow_m3_s, one.velocity_m_s, one.depth_m],
    )
    with pytest.raises(ValueError, match="threads"):
        route(params, downstream, lateral, 20.0, threads=0)


def test_independent_ranges_cut_only_where_no_link_crosses() -> None:
    chains = np.arange(1, 101)
    chains[49::50] = -1
    assert independent_ranges(chains, 2) == [(0, 50), (50, 100)]
    assert independent_ranges(chains, 1) == [(0, 100)]
    one_chain = np.append(np.arange(1, 10), -1)
    assert independent_ranges(one_chain, 2) == [(0, 10)]
    # 0 drains into 4: nothing between them can be cut off.
    assert independent_ranges(np.array([4, 2, -1, -1, -1]), 2) == [(0, 5)]
    # Two parts of unequal size: the cut nearest the middle.
    assert independent_ranges(np.array([1, 2, -1, 4, -1]), 2) == [(0, 3), (3, 5)]
