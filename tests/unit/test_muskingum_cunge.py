"""The routing kernel's physics and its input checks, on small synthetic channels."""

from __future__ import annotations

import numpy as np
import pytest

from rnr.hydro._mc_compiled import _coefficients, _geometry
from rnr.hydro.muskingum_cunge import ChannelParameters, route

DT = 300.0


def channel(size: int = 10, **overrides: float) -> ChannelParameters:
    values = {
        "length_m": 2000.0,
        "bottom_width_m": 20.0,
        "top_width_m": 40.0,
        "floodplain_top_width_m": 120.0,
        "manning_n": 0.04,
        "floodplain_manning_n": 0.08,
        "side_slope": 0.5,
        "bed_slope": 0.001,
    }
    values.update(overrides)
    return ChannelParameters(**{k: np.full(size, v) for k, v in values.items()})


def chain(size: int) -> np.ndarray:
    downstream = np.arange(1, size + 1)
    downstream[-1] = -1
    return downstream


def lateral(steps: int, size: int, origin_flow: np.ndarray | float) -> np.ndarray:
    inflow = np.zeros((steps, size), np.float32)
    inflow[:, 0] = origin_flow
    return inflow


def test_steady_inflow_gives_equal_outflow_everywhere() -> None:
    size, steps, q = 10, 400, 150.0
    result = route(channel(size), chain(size), lateral(steps, size, q), q)
    np.testing.assert_allclose(result.flow_m3_s[-1], q, rtol=1e-4)


def test_mass_is_conserved_over_a_long_run() -> None:
    size, steps = 8, 3000
    hydrograph = np.full(steps, 50.0)
    hydrograph[100:400] = np.linspace(50, 400, 300)
    hydrograph[400:700] = np.linspace(400, 50, 300)
    result = route(channel(size), chain(size), lateral(steps, size, hydrograph), 50.0)
    volume_in = hydrograph.sum() * DT
    volume_out = result.flow_m3_s[:, -1].astype(np.float64).sum() * DT
    # What is still stored in the reach at the end is back at its base state.
    assert volume_out == pytest.approx(volume_in, rel=2e-3)


def test_depth_increases_with_flow() -> None:
    size = 5
    depths = [
        route(channel(size), chain(size), lateral(300, size, q), q).depth_m[-1, 2]
        for q in (10.0, 50.0, 200.0, 800.0, 3000.0)
    ]
    assert depths == sorted(depths)
    assert len(set(depths)) == len(depths)


def test_flood_peak_attenuates_and_lags_downstream() -> None:
    size, steps = 20, 1200
    hydrograph = np.full(steps, 20.0)
    hydrograph[50:80] = 600.0
    result = route(
        channel(size, bed_slope=0.0005), chain(size), lateral(steps, size, hydrograph), 20
    )
    peaks = result.flow_m3_s.max(axis=0)
    peak_steps = result.flow_m3_s.argmax(axis=0)
    assert np.all(np.diff(peaks) <= 0)
    assert peaks[-1] < peaks[0]
    assert np.all(np.diff(peak_steps) >= 0)
    assert peak_steps[-1] > peak_steps[0]


@pytest.mark.parametrize("depth_m", [0.0, 0.5, 3.0, 30.0])
@pytest.mark.parametrize("upper", [False, True])
def test_coefficients_respect_the_muskingum_bounds(depth_m: float, upper: bool) -> None:
    f32 = np.float32
    geometry = _geometry(
        f32(depth_m), f32(DT), f32(500.0), f32(20.0), f32(120.0), f32(0.04), f32(0.08),
        f32(2.0), f32(10.0), f32(np.sqrt(5.0)), f32(np.sqrt(0.001)),
    )  # fmt: skip
    c1, c2, c3, _, _ = _coefficients(
        geometry, f32(0.0), upper, f32(100.0), f32(100.0), f32(90.0), f32(5.0),
        f32(DT), f32(500.0), f32(0.04), f32(0.08), f32(0.001), f32(np.sqrt(0.001)),
    )  # fmt: skip
    # C1 + C2 + C3 == 1 is the Muskingum identity; K >= dt with X <= 0.5 keeps C3 >= 0.
    assert c1 + c2 + c3 == pytest.approx(1.0, rel=1e-5)
    assert c3 >= -1e-6


def test_above_bankfull_branch_uses_the_floodplain() -> None:
    size = 4
    narrow = channel(size, top_width_m=25.0, bottom_width_m=20.0)
    bankfull_m = (25.0 - 20.0) / (2 * (1 / 0.5))
    result = route(narrow, chain(size), lateral(400, size, 2000.0), 2000.0)
    assert np.all(result.depth_m[-1] > bankfull_m)
    assert np.all(np.isfinite(result.velocity_m_s[-1]))
    np.testing.assert_allclose(result.flow_m3_s[-1], 2000.0, rtol=1e-3)


def test_no_water_anywhere_gives_zero_flow_depth_and_velocity() -> None:
    size = 3
    result = route(channel(size), chain(size), lateral(5, size, 0.0), 0.0)
    assert not result.flow_m3_s.any()
    assert not result.depth_m.any()
    assert not result.velocity_m_s.any()


def test_no_nan_and_no_negative_flow_through_a_drying_reach() -> None:
    size, steps = 6, 600
    hydrograph = np.zeros(steps)
    hydrograph[:50] = 300.0
    result = route(channel(size), chain(size), lateral(steps, size, hydrograph), 300.0)
    for values in (result.flow_m3_s, result.velocity_m_s, result.depth_m):
        assert np.all(np.isfinite(values))
        assert np.all(values >= 0)


def test_tributaries_add_up_at_a_confluence() -> None:
    # 0 -> 2, 1 -> 2, 2 -> 3 (outlet)
    params = channel(4)
    downstream = np.array([2, 2, 3, -1])
    inflow = np.zeros((500, 4), np.float32)
    inflow[:, 0], inflow[:, 1] = 40.0, 60.0
    result = route(params, downstream, inflow, np.array([40.0, 60.0, 100.0, 100.0]))
    np.testing.assert_allclose(result.flow_m3_s[-1, 3], 100.0, rtol=1e-4)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("manning_n", 0.0, "manning_n must be > 0"),
        ("bed_slope", -0.001, "bed_slope must be > 0"),
        ("bottom_width_m", 0.0, "bottom_width_m must be > 0"),
        ("manning_n", float("nan"), "manning_n is not finite"),
        ("top_width_m", float("inf"), "top_width_m is not finite"),
    ],
)
def test_invalid_channel_parameters_are_rejected_naming_field_and_segment(
    field: str, value: float, fragment: str
) -> None:
    values = {name: np.array(array) for name, array in vars(channel(5)).items()}
    values[field][3] = value
    with pytest.raises(ValueError, match=fragment) as caught:
        ChannelParameters(**values)
    assert "segment index 3" in str(caught.value)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="lateral inflow must have shape"):
        route(channel(3), chain(3), np.zeros((10, 4)), 1.0)
    with pytest.raises(ValueError, match="outside the network"):
        route(channel(3), np.array([1, 7, -1]), np.zeros((10, 3)), 1.0)
