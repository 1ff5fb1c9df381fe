"""The forecast NetCDF: T-Route's schema, exact round trips, hourly samples, names, checks.

The HPDT2 case carries T-Route's own output file and its answer at every 5-minute
step, so feeding that answer to the writer must give back the reference file: same
structure, same values bit for bit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnr.core.version import package_version
from rnr.hydro.muskingum_cunge import RoutingResult
from rnr.hydro_io.netcdf import hourly_steps, read_forecast_netcdf, write_forecast_netcdf
from rnr.storage.output_layout import output_file_name
from tests.support.forecasts import HPDT2_ATTRIBUTES

UTC = dt.UTC
T0 = dt.datetime(2025, 5, 5, 21, 0, tzinfo=UTC)
REFERENCE = Path("conformance/hpdt2/troute_output_202505052100.nc")
ANSWER = Path("conformance/hpdt2/HPDT2_flowveldepth_5min.csv")
RNR_GLOBALS = [
    "rfc_location",
    "rfc_reach_id",
    "max_status",
    "stream_order",
    "name",
    "state",
    "issuance_time",
    "product_id",
    "flowpath_attributes_layer",
]
ATTRIBUTES = HPDT2_ATTRIBUTES


def ramp_result(steps: int, segments: int) -> RoutingResult:
    """Distinct values everywhere, so a wrong step or a transposition shows."""
    base = np.arange(steps * segments, dtype=np.float32).reshape(steps, segments)
    return RoutingResult(
        flow_m3_s=base + np.float32(0.25),
        velocity_m_s=base / np.float32(1000),
        depth_m=base / np.float32(7),
    )


def write(result: RoutingResult, **overrides: Any) -> bytes:
    segments = result.flow_m3_s.shape[-1]
    arguments: dict[str, Any] = {
        "feature_ids": [f"wb-{1000 + i}" for i in range(segments)],
        "t0": T0,
        "dt_s": 300.0,
        "attributes": ATTRIBUTES,
    }
    arguments.update(overrides)
    return write_forecast_netcdf(result, **arguments)


def schema(dataset: netCDF4.Dataset) -> dict[str, Any]:
    """Structure without sizes or values: names and order, dtypes, dims, attribute names."""

    def attribute_types(owner: Any) -> list[tuple[str, str]]:
        return [(name, type(owner.getncattr(name)).__name__) for name in owner.ncattrs()]

    return {
        "file_format": dataset.file_format,
        "dimensions": list(dataset.dimensions),
        "variables": [
            (name, str(var.dtype), var.dimensions, attribute_types(var), var.chunking())
            for name, var in dataset.variables.items()
        ],
    }


# --- the file --------------------------------------------------------------------------


def test_xarray_and_netcdf4_read_the_file(tmp_path: Path) -> None:
    result = ramp_result(steps=36, segments=3)
    path = tmp_path / output_file_name(T0)
    path.write_bytes(write(result))

    with xr.open_dataset(path, engine="netcdf4") as dataset:
        assert dict(dataset.sizes) == {"feature_id": 3, "time": 3}
        assert dataset["feature_id"].values.tolist() == [1000, 1001, 1002]
        assert dataset["feature_id"].dtype == np.int64
        expected_times = np.array(
            ["2025-05-05T22:00", "2025-05-05T23:00", "2025-05-06T00:00"], dtype="datetime64[ns]"
        )
        np.testing.assert_array_equal(dataset["time"].values, expected_times)
        for name in ("flow", "velocity", "depth"):
            assert dataset[name].dims == ("feature_id", "time")
            assert dataset[name].dtype == np.float32
        assert np.isnan(dataset["nudge"].values).all()
        assert dataset["type"].values.tolist() == ["wb"] * 3
        assert dataset["flow"].attrs["units"] == "m3 s-1"
        assert dataset.attrs["file_reference_time"] == "2025-05-05_21:00:00"
        assert dataset.attrs["rfc_location"] == "HPDT2"
        assert dataset.attrs["stream_order"] == 6
        np.testing.assert_array_equal(dataset["flow"].values, result.flow_m3_s[[11, 23, 35]].T)

    with netCDF4.Dataset(path) as dataset:
        assert list(dataset.dimensions) == ["feature_id", "time", "type_strlen"]
        assert dataset["time"].units == "seconds since 2025-05-05 21:00:00"
        assert dataset["time"][:].tolist() == [3600.0, 7200.0, 10800.0]
        assert dataset["depth"]._FillValue == np.float32(-9999.0)
        assert dataset.ncattrs()[:3] == ["TITLE", "file_reference_time", "code_version"]
        assert dataset.ncattrs()[3:] == RNR_GLOBALS
        assert dataset.issuance_time == "2025-05-05_20:31:15"
        assert dataset.flowpath_attributes_layer == "flowpath-attributes-ml"


def test_code_version_is_the_package_version(tmp_path: Path) -> None:
    path = tmp_path / output_file_name(T0)
    path.write_bytes(write(ramp_result(steps=12, segments=1)))

    with netCDF4.Dataset(path) as dataset:
        assert dataset.code_version == importlib.metadata.version("rnr-pipeline")
        assert dataset.code_version not in {"", "unknown"}
    assert read_forecast_netcdf(path.read_bytes()).attributes.code_version == (
        importlib.metadata.version("rnr-pipeline")
    )


def test_code_version_can_be_given() -> None:
    attributes = dataclasses.replace(ATTRIBUTES, code_version="1.2.3+local")
    data = write(ramp_result(steps=12, segments=1), attributes=attributes)
    assert read_forecast_netcdf(data).attributes.code_version == "1.2.3+local"


def test_code_version_is_unknown_without_the_installed_package() -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    package_version.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(importlib.metadata, "version", not_installed)
            assert package_version() == "unknown"
    finally:
        package_version.cache_clear()
    assert package_version() == importlib.metadata.version("rnr-pipeline") != "unknown"


def test_values_and_attributes_round_trip_exactly() -> None:
    result = ramp_result(steps=72, segments=4)
    eastern = dt.timezone(dt.timedelta(hours=-4))
    attributes = dataclasses.replace(
        ATTRIBUTES, issuance_time=dt.datetime(2025, 5, 5, 16, 31, 15, tzinfo=eastern)
    )
    read = read_forecast_netcdf(write(result, attributes=attributes, feature_ids=[7, 8, 9, 10]))

    assert read.t0 == T0
    assert read.attributes == dataclasses.replace(
        ATTRIBUTES, issuance_time=dt.datetime(2025, 5, 5, 20, 31, 15, tzinfo=UTC)
    )
    assert read.arrays["feature_id"].tolist() == [7, 8, 9, 10]
    assert read.arrays["time"].tolist() == [3600.0 * h for h in range(1, 7)]
    for name, values in [
        ("flow", result.flow_m3_s),
        ("velocity", result.velocity_m_s),
        ("depth", result.depth_m),
    ]:
        assert read.arrays[name].dtype == np.float32
        assert read.arrays[name].shape == (4, 6)
        assert read.arrays[name].tobytes() == values[11::12].T.tobytes()


@pytest.mark.parametrize(
    ("steps", "dt_s", "expected"),
    [
        (12, 300.0, [12]),
        (35, 300.0, [12, 24]),  # the last, incomplete hour is not written
        (1152, 300.0, list(range(12, 1153, 12))),
        (8, 900.0, [4, 8]),
        (120, 60.0, [60, 120]),
        (3, 3600.0, [1, 2, 3]),
    ],
)
def test_samples_fall_on_whole_hours(steps: int, dt_s: float, expected: list[int]) -> None:
    assert hourly_steps(steps, dt_s).tolist() == expected


def test_time_is_seconds_since_t0_every_hour() -> None:
    read = read_forecast_netcdf(write(ramp_result(steps=8, segments=2), dt_s=900.0))
    assert read.arrays["time"].tolist() == [3600.0, 7200.0]
    np.testing.assert_array_equal(read.arrays["depth"], ramp_result(8, 2).depth_m[[3, 7]].T)


# --- against T-Route's own file ---------------------------------------------------------


@pytest.fixture(scope="module")
def hpdt2_answer(shared_dir: Path) -> tuple[RoutingResult, list[str]]:
    """T-Route's answer at every 5-minute step, as a RoutingResult of shape (1152, 50)."""
    answer = pd.read_csv(shared_dir / ANSWER)
    arrays = {
        column: answer.pivot(index="step", columns="feature_id", values=column)
        for column in ("flow_m3s", "velocity_ms", "depth_m")
    }
    ids = [f"wb-{feature_id}" for feature_id in arrays["flow_m3s"].columns]
    result = RoutingResult(
        flow_m3_s=arrays["flow_m3s"].to_numpy(np.float32),
        velocity_m_s=arrays["velocity_ms"].to_numpy(np.float32),
        depth_m=arrays["depth_m"].to_numpy(np.float32),
    )
    return result, ids


def test_hpdt2_gives_back_troute_output(
    shared_dir: Path, hpdt2_answer: tuple[RoutingResult, list[str]], tmp_path: Path
) -> None:
    result, ids = hpdt2_answer
    path = tmp_path / "ours.nc"
    path.write_bytes(write(result, feature_ids=ids, dt_s=300.0))

    with netCDF4.Dataset(shared_dir / REFERENCE) as reference, netCDF4.Dataset(path) as ours:
        assert schema(ours) == schema(reference)
        assert ours.dimensions.keys() == reference.dimensions.keys()
        for name, dimension in reference.dimensions.items():
            assert len(ours.dimensions[name]) == len(dimension), name
        for name, variable in reference.variables.items():
            mine = ours[name]
            for attribute in variable.ncattrs():
                expected, actual = variable.getncattr(attribute), mine.getncattr(attribute)
                assert actual == expected, (name, attribute)
                assert np.asarray(actual).dtype == np.asarray(expected).dtype, (name, attribute)
            variable.set_auto_mask(False)
            mine.set_auto_mask(False)
            assert np.array_equal(mine[:], variable[:]), name
        reference_globals = reference.ncattrs()
        assert ours.ncattrs() == [*reference_globals, *RNR_GLOBALS]
        assert ours.file_reference_time == reference.file_reference_time
        # The reference leaves code_version empty; ours names the package version that
        # wrote the file (same attribute, same type, filled).
        assert reference.code_version == ""
        assert ours.code_version == importlib.metadata.version("rnr-pipeline")


def test_troute_file_is_not_mistaken_for_an_rnr_forecast(shared_dir: Path) -> None:
    with pytest.raises(ValueError, match="rfc_location"):
        read_forecast_netcdf((shared_dir / REFERENCE).read_bytes())


# --- property ---------------------------------------------------------------------------


@st.composite
def routed_forecasts(draw: st.DrawFn) -> tuple[RoutingResult, dt.datetime, float]:
    segments = draw(st.integers(1, 5))
    steps = draw(st.integers(12, 72))
    dt_s = draw(st.sampled_from([300.0, 600.0, 900.0, 3600.0]))
    values = hnp.arrays(
        np.float32,
        (steps, segments),
        elements=st.floats(0, 1e6, width=32, allow_nan=False, allow_infinity=False),
    )
    minute = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)))
    t0 = minute.replace(second=0, microsecond=0, tzinfo=UTC)
    return RoutingResult(draw(values), draw(values), draw(values)), t0, dt_s


@settings(max_examples=25, deadline=None)
@given(routed_forecasts())
def test_round_trip_property(forecast: tuple[RoutingResult, dt.datetime, float]) -> None:
    result, t0, dt_s = forecast
    steps, segments = result.flow_m3_s.shape
    stride = round(3600 / dt_s)
    sampled = np.arange(stride, steps + 1, stride) - 1

    read = read_forecast_netcdf(write(result, t0=t0, dt_s=dt_s))

    assert read.t0 == t0
    assert read.attributes == ATTRIBUTES
    assert read.arrays["time"].tolist() == [3600.0 * (i + 1) for i in range(sampled.size)]
    assert read.arrays["feature_id"].tolist() == [1000 + i for i in range(segments)]
    for name, values in [
        ("flow", result.flow_m3_s),
        ("velocity", result.velocity_m_s),
        ("depth", result.depth_m),
    ]:
        assert read.arrays[name].tobytes() == values[sampled].T.tobytes()


# --- invalid inputs ---------------------------------------------------------------------


def _replace(result: RoutingResult, **arrays: Any) -> RoutingResult:
    return dataclasses.replace(result, **arrays)


GOOD = ramp_result(steps=24, segments=3)


@pytest.mark.parametrize(
    ("result", "overrides", "match"),
    [
        (_replace(GOOD, depth_m=GOOD.depth_m[:, :2]), {}, "differ in shape"),
        (ramp_result(24, 0), {"feature_ids": []}, "empty"),
        (ramp_result(0, 3), {}, "empty"),
        (
            RoutingResult(np.zeros(24, np.float32), np.zeros(24), np.zeros(24)),
            {"feature_ids": ["wb-1"]},
            "2-D",
        ),
        (GOOD, {"feature_ids": ["wb-1", "wb-2"]}, "2 feature ids for 3 segments"),
        (GOOD, {"feature_ids": ["wb-1", "wb-2", "wb-1"]}, "repeat"),
        (GOOD, {"feature_ids": ["wb-1", "wb-2", "cat-3"]}, "'wb-N'"),
        (GOOD, {"t0": dt.datetime(2025, 5, 5, 21)}, "timezone-aware"),
        (GOOD, {"t0": T0.replace(microsecond=5)}, "whole second"),
        (GOOD, {"dt_s": 0.0}, "positive"),
        (GOOD, {"dt_s": float("nan")}, "positive"),
        (GOOD, {"dt_s": 7.0}, "does not divide"),
        (GOOD, {"dt_s": 7200.0}, "does not divide"),
        (ramp_result(11, 3), {}, "no hourly sample"),
        (
            _replace(GOOD, flow_m3_s=np.where(GOOD.flow_m3_s > 40, np.nan, GOOD.flow_m3_s)),
            {},
            "flow is not finite at step 14, segment index 1",
        ),
    ],
)
def test_invalid_inputs_are_rejected(
    result: RoutingResult, overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        write(result, **overrides)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rfc_location": ""}, "rfc_location"),
        ({"product_id": "  "}, "product_id"),
        ({"stream_order": -1}, "stream_order"),
        ({"stream_order": 2.5}, "stream_order"),
        ({"issuance_time": dt.datetime(2025, 5, 5, 20, 31)}, "timezone-aware"),
        ({"name": None}, "name"),
    ],
)
def test_invalid_attributes_are_rejected(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(ATTRIBUTES, **change)


def test_reading_garbage_fails() -> None:
    with pytest.raises(ValueError, match="not a NetCDF file"):
        read_forecast_netcdf(b"not a netcdf file")


def test_writers_in_many_threads_do_not_deadlock() -> None:
    """The worker writes from threads; HDF5 below netCDF4 is not thread-safe."""
    from concurrent.futures import ThreadPoolExecutor

    def write_one(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        values = rng.uniform(0, 100, size=(24, 3)).astype(np.float32)
        return write_forecast_netcdf(
            RoutingResult(values, values, values),
            feature_ids=["wb-1", "wb-2", "wb-3"],
            t0=dt.datetime(2025, 5, 5, 21, tzinfo=dt.UTC),
            dt_s=300.0,
            attributes=ATTRIBUTES,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        files = list(pool.map(write_one, range(16), timeout=60))
    assert all(read_forecast_netcdf(data).arrays["flow"].shape == (3, 2) for data in files)
