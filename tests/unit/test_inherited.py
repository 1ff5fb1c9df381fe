"""The inherited-forecast rows: each segment's own peak, miles, merging, expiry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnr.hydro.inherited import (
    CFS_PER_CMS,
    MILES_PER_KM,
    Flowpath,
    ForecastFileInvalid,
    InheritedRow,
    drop_expired,
    forecast_rows,
    merge_latest,
)
from rnr.hydro_io.flowpaths import build_flowpath_lookup, read_flowpaths
from rnr.hydro_io.hydrofabric import open_hydrofabric
from rnr.hydro_io.netcdf import ForecastFile, read_forecast_netcdf
from rnr.local.bootstrap import SAMPLE_HYDROFABRIC
from tests.support.forecasts import HPDT2_ATTRIBUTES, forecast_file, sample_segment

UTC = dt.UTC
T0 = dt.datetime(2025, 5, 5, 21, tzinfo=UTC)
NOW = dt.datetime(2025, 5, 6, 3, tzinfo=UTC)
ATTRIBUTES = HPDT2_ATTRIBUTES
LINE = "LINESTRING (0 0, 1 1)"


def forecast(flow: list[list[float]], ids: list[int] | None = None, t0: dt.datetime = T0):
    values = np.array(flow, dtype=np.float32)
    ids = ids or [100 + i for i in range(values.shape[0])]
    arrays = {
        "feature_id": np.array(ids, dtype=np.int64),
        "time": np.arange(1, values.shape[1] + 1, dtype=np.float64) * 3600.0,
        "flow": values,
    }
    return ForecastFile(arrays, ATTRIBUTES, t0)


def flowpaths(ids: list[int], length_km: float = 2.0) -> dict[int, Flowpath]:
    return {i: Flowpath(length_km, LINE) for i in ids}


def test_each_segment_keeps_its_own_peak_and_time() -> None:
    # Segment 100 peaks at hour 1, segment 101 at hour 3 (a later, lower peak).
    rows = forecast_rows(
        forecast([[50, 40, 30], [10, 20, 35]]), flowpaths([100, 101]), update_time=NOW
    )
    assert [row.feature_id for row in rows] == [100, 101]
    assert rows[0].streamflow_cfs == pytest.approx(50 * CFS_PER_CMS)
    assert rows[0].peak_time == T0 + dt.timedelta(hours=1)
    assert rows[1].streamflow_cfs == pytest.approx(35 * CFS_PER_CMS)
    assert rows[1].peak_time == T0 + dt.timedelta(hours=3)


def test_missing_values_are_ignored_when_finding_the_peak() -> None:
    rows = forecast_rows(forecast([[math.nan, 7, 3]]), flowpaths([100]), update_time=NOW)
    assert rows[0].streamflow_cfs == pytest.approx(7 * CFS_PER_CMS)
    assert rows[0].peak_time == T0 + dt.timedelta(hours=2)


def test_miles_run_from_the_gauge_segment_downstream() -> None:
    lengths = {100: 1.0, 101: 2.5, 102: 4.0}
    paths = {i: Flowpath(km, LINE) for i, km in lengths.items()}
    rows = forecast_rows(forecast([[1, 2]] * 3), paths, update_time=NOW)
    assert [row.miles_downstream for row in rows] == pytest.approx(
        [0.0, 1.0 * MILES_PER_KM, 3.5 * MILES_PER_KM]
    )
    assert rows[2].inherited_rfc_forecasts == (
        "moderate issued 2025-05-05 20:31 UTC at HPDT2 (3121538 [order 6]) 2.2 miles upstream"
    )


def test_row_carries_the_specified_columns() -> None:
    (row,) = forecast_rows(forecast([[3, 4]]), flowpaths([100]), update_time=NOW)
    assert row.feature_id_str == "wb-100"
    assert (row.strm_order, row.name, row.state) == (6, "Brazos River near Hempstead", "TX")
    assert (row.max_status, row.reference_time, row.update_time) == ("moderate", T0, NOW)
    assert row.geometry_wkt == LINE


def test_a_segment_missing_from_the_flowpaths_invalidates_the_file() -> None:
    with pytest.raises(ForecastFileInvalid, match=r"1 of 2 segments .*wb-101"):
        forecast_rows(forecast([[1, 2], [1, 2]]), flowpaths([100]), update_time=NOW)


def test_a_segment_without_any_flow_invalidates_the_file() -> None:
    with pytest.raises(ForecastFileInvalid, match="no flow value at any time: wb-101"):
        forecast_rows(
            forecast([[1, 2], [math.nan, math.nan]]), flowpaths([100, 101]), update_time=NOW
        )


def test_a_file_without_times_is_invalid() -> None:
    empty = forecast([[1.0]])._replace(
        arrays={
            "feature_id": np.array([100]),
            "time": np.array([]),
            "flow": np.zeros((1, 0), np.float32),
        }
    )
    with pytest.raises(ForecastFileInvalid, match="at least one time"):
        forecast_rows(empty, flowpaths([100]), update_time=NOW)


def test_rows_of_a_real_file_on_the_sample_hydrofabric(tmp_path: Path) -> None:
    _, data = forecast_file("HPDT2", t0=T0)
    parsed = read_forecast_netcdf(data)
    segment = sample_segment("3121538")
    lookup = tmp_path / "lookup.parquet"
    with open_hydrofabric(SAMPLE_HYDROFABRIC / "hydrofabric.gpkg") as reader:
        lookup.write_bytes(build_flowpath_lookup(reader))
    paths = read_flowpaths(str(lookup), parsed.arrays["feature_id"])
    rows = forecast_rows(parsed, paths, update_time=NOW)
    assert [row.feature_id_str for row in rows] == list(segment.flowpath_ids)
    # The wave: segment i peaks i + 2 hours after t0, each lower than the one above.
    assert [row.peak_time for row in rows] == [
        T0 + dt.timedelta(hours=i + 2) for i in range(segment.size)
    ]
    flows = [row.streamflow_cfs for row in rows]
    assert flows == sorted(flows, reverse=True)
    # Miles: the running length of the segments above, as the segment knows it.
    expected = np.concatenate(([0.0], segment.cumulative_length_km[:-1])) * MILES_PER_KM
    assert [row.miles_downstream for row in rows] == pytest.approx(expected)


def row(feature_id: int = 100, **changes: object) -> InheritedRow:
    base = InheritedRow(
        feature_id=feature_id,
        strm_order=6,
        name="n",
        state="TX",
        streamflow_cfs=1000.0,
        peak_time=T0 + dt.timedelta(hours=3),
        max_status="minor",
        reference_time=T0,
        issuance_time=T0,
        update_time=NOW,
        rfc_location="AAAA1",
        rfc_reach_id="1",
        miles_downstream=0.0,
        geometry_wkt=LINE,
        product_id="p",
    )
    return dataclasses.replace(base, **changes)


def test_latest_reference_time_wins_even_with_a_lower_peak() -> None:
    old = row(streamflow_cfs=9000.0)
    new = row(reference_time=T0 + dt.timedelta(hours=6), streamflow_cfs=10.0)
    assert merge_latest([old], [new]) == [new]
    assert merge_latest([new], [old]) == [new]


def test_merge_keeps_one_row_per_segment_ordered_by_id() -> None:
    merged = merge_latest([row(102), row(100)], [row(101), row(100, streamflow_cfs=5.0)])
    assert [r.feature_id for r in merged] == [100, 101, 102]


def test_exact_tie_keeps_the_row_already_in_the_table() -> None:
    kept = row(update_time=NOW)
    again = row(update_time=NOW + dt.timedelta(hours=1))
    assert merge_latest([kept], [again]) == [kept]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # reference hour
            st.integers(0, 2),  # issuance hour
            st.sampled_from([10.0, 20.0]),
            st.sampled_from(["AAAA1", "BBBB2"]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_the_winner_does_not_depend_on_reading_order(specs, rng) -> None:
    rows = [
        row(
            reference_time=T0 + dt.timedelta(hours=ref),
            issuance_time=T0 + dt.timedelta(hours=issued),
            streamflow_cfs=flow,
            rfc_location=lid,
        )
        for ref, issued, flow, lid in specs
    ]
    shuffled = rows[:]
    rng.shuffle(shuffled)
    (winner,) = merge_latest(rows)
    assert merge_latest(shuffled) == [winner]
    latest = max(r.reference_time for r in rows)
    assert winner.reference_time == latest


def test_drop_expired_removes_old_forecasts_only() -> None:
    fresh = row(100, reference_time=NOW - dt.timedelta(hours=47))
    stale = row(101, reference_time=NOW - dt.timedelta(hours=49))
    kept, dropped = drop_expired([fresh, stale], now=NOW, max_age=dt.timedelta(hours=48))
    assert (kept, dropped) == ([fresh], 1)


def test_drop_expired_rejects_a_non_positive_age() -> None:
    with pytest.raises(ValueError, match="positive timedelta"):
        drop_expired([], now=NOW, max_age=dt.timedelta(0))
