"""The routing kernel against T-Route's own answer on the HPDT2 case (RNR_SPEC section 4).

The case's README gives the bar: flow and depth within 1e-5 relative at every segment
and step, velocity within 1e-4, and the same peak step wherever flow rises.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from rnr.hydro._mc_compiled import route_compiled
from rnr.hydro.muskingum_cunge import RoutingResult, route
from tests.support.hpdt2 import channel as hpdt2_channel
from tests.support.hpdt2 import read_rows

STEPS = 1152
STEPS_PER_FORECAST_INTERVAL = 36  # 3 h of 5-minute steps


@pytest.fixture(scope="module")
def case(shared_dir: Path) -> dict[str, object]:
    folder = shared_dir / "conformance" / "hpdt2"
    hpdt2 = hpdt2_channel(folder)
    keys, channel, downstream = hpdt2.keys, hpdt2.params, hpdt2.downstream
    position = {key: index for index, key in enumerate(keys)}
    initial = read_rows(folder / "kernel_input_q0.csv")
    by_key = {int(float(row["key"])): row for row in initial}
    q0 = np.array([float(by_key[key]["qd0"]) for key in keys])
    h0 = np.array([float(by_key[key]["h0"]) for key in keys])
    with (folder / "kernel_input_qlats.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        qlats = {int(float(row[0])): [float(v) for v in row[1:]] for row in reader}
    columns = np.array([qlats[key] for key in keys]).T  # (intervals, n)
    lateral = np.repeat(columns, STEPS_PER_FORECAST_INTERVAL, axis=0)[:STEPS]

    reference = {name: np.zeros((STEPS, len(keys))) for name in ("flow", "velocity", "depth")}
    for row in read_rows(folder / "HPDT2_flowveldepth_5min.csv"):
        index, step = position[int(row["feature_id"])], int(row["step"]) - 1
        reference["flow"][step, index] = float(row["flow_m3s"])
        reference["velocity"][step, index] = float(row["velocity_ms"])
        reference["depth"][step, index] = float(row["depth_m"])
    result = route(channel, downstream, lateral, q0, h0, dt_s=300.0)
    inputs = (channel, downstream, lateral, q0, h0)
    return {"result": result, "reference": reference, "q0": q0, "keys": keys, "inputs": inputs}


def relative_error(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-6)


@pytest.mark.parametrize(
    ("name", "attribute", "tolerance"),
    [("flow", "flow_m3_s", 1e-5), ("depth", "depth_m", 1e-5), ("velocity", "velocity_m_s", 1e-4)],
)
def test_matches_troute_at_every_segment_and_step(
    case: dict, name: str, attribute: str, tolerance: float
) -> None:
    result: RoutingResult = case["result"]
    error = relative_error(getattr(result, attribute), case["reference"][name])
    worst = np.unravel_index(error.argmax(), error.shape)
    assert error.max() <= tolerance, f"{name}: {error.max():.2e} at step/segment {worst}"


def test_peaks_fall_on_the_same_step(case: dict) -> None:
    flow, expected = case["result"].flow_m3_s, case["reference"]["flow"]
    rises = expected.max(axis=0) > case["q0"] * (1 + 1e-6)
    assert rises.any()
    np.testing.assert_array_equal(flow.argmax(axis=0)[rises], expected.argmax(axis=0)[rises])


def test_hourly_values_equal_troute_output_file_bit_for_bit(case: dict, shared_dir: Path) -> None:
    """T-Route's NetCDF holds exact float32 values (the CSV is rounded to print)."""
    import netCDF4

    result: RoutingResult = case["result"]
    path = shared_dir / "conformance" / "hpdt2" / "troute_output_202505052100.nc"
    with netCDF4.Dataset(path) as reference:
        feature_ids = [int(value) for value in reference["feature_id"][:]]
        position = {key: index for index, key in enumerate(case["keys"])}
        columns = [position[feature_id] for feature_id in feature_ids]
        for variable, values in (
            ("flow", result.flow_m3_s),
            ("velocity", result.velocity_m_s),
            ("depth", result.depth_m),
        ):
            hourly = values[11::12][:, columns].T  # every 12th 5-minute step
            np.testing.assert_array_equal(hourly, np.asarray(reference[variable][:]))


def test_every_step_equals_the_one_segment_at_a_time_kernel(case: dict) -> None:
    """route() solves the segments of a step together in SIMD lanes; the scalar kernel
    that mirrors RNR_SPEC section 4 line by line gives the same bits at every step."""
    channel, downstream, lateral, q0, h0 = case["inputs"]
    outputs = [np.empty(lateral.shape, np.float32) for _ in range(3)]
    route_compiled(
        channel.length_m, channel.bottom_width_m, channel.top_width_m,
        channel.floodplain_top_width_m, channel.manning_n, channel.floodplain_manning_n,
        channel.side_slope, channel.bed_slope, downstream.astype(np.int64),
        lateral.astype(np.float32), q0.astype(np.float32), h0.astype(np.float32),
        np.float32(300.0), *outputs,
    )  # fmt: skip
    result: RoutingResult = case["result"]
    for actual, expected in zip(
        (result.flow_m3_s, result.velocity_m_s, result.depth_m), outputs, strict=True
    ):
        np.testing.assert_array_equal(actual.view(np.int32), expected.view(np.int32))
