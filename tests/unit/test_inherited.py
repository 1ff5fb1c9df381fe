"""The inherited-forecast table's rules: each segment's own peak, miles, the newest
issuance per gauge, the maximum across gauges, withdrawals, the horizon, expiry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack import SAMPLE_HYDROFABRIC
from rnr.hydro.forecast_file import ForecastFile
from rnr.hydro.inherited import (
    CFS_PER_CMS,
    MILES_PER_KM,
    SEVERITY,
    Contribution,
    Flowpath,
    ForecastFileInvalid,
    drop_expired,
    forecast_rows,
    merge_newest,
    segment_rows,
    withdraw,
)
from rnr.hydro_io.flowpaths import build_flowpath_lookup, read_flowpaths
from rnr.hydro_io.hydrofabric import open_hydrofabric
from rnr.hydro_io.netcdf import read_forecast_netcdf
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
    assert rows[2].label == "HPDT2 @ 2025-05-05 20:31 UTC (moderate)"


def test_row_carries_the_specified_columns() -> None:
    (contribution,) = forecast_rows(forecast([[3, 4]]), flowpaths([100]), update_time=NOW)
    (row,) = segment_rows([contribution])
    assert row.feature_id_str == "wb-100"
    assert (contribution.strm_order, contribution.name, contribution.state) == (
        6,
        "Brazos River near Hempstead",
        "TX",
    )
    assert (row.max_status, contribution.reference_time, row.update_time) == ("moderate", T0, NOW)
    assert contribution.geometry_wkt == LINE
    assert row.inherited_rfc_forecasts == "HPDT2 @ 2025-05-05 20:31 UTC (moderate)"
    assert row.influencing_lids == "HPDT2"


@pytest.mark.parametrize(
    ("flow", "at_horizon", "peak_hour"),
    [
        ([1, 2, 3], True, 3),  # still rising when the forecast ends
        ([3, 2, 1], False, 1),
        ([1, 3, 2], False, 2),
        ([1, 2, math.nan], True, 2),  # the last value there is, still rising
        ([2, 2, 2], False, 1),  # flat: its first maximum is a peak of sorts, not rising
    ],
)
def test_a_maximum_on_the_last_step_is_marked_as_the_horizon(
    flow: list[float], at_horizon: bool, peak_hour: int
) -> None:
    (contribution,) = forecast_rows(forecast([flow]), flowpaths([100]), update_time=NOW)
    assert contribution.peak_at_horizon is at_horizon
    assert contribution.peak_time == T0 + dt.timedelta(hours=peak_hour)


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
    assert [f"wb-{row.feature_id}" for row in rows] == list(segment.flowpath_ids)
    # The wave: segment i peaks i + 2 hours after t0, each lower than the one above.
    assert [row.peak_time for row in rows] == [
        T0 + dt.timedelta(hours=i + 2) for i in range(segment.size)
    ]
    flows = [row.streamflow_cfs for row in rows]
    assert flows == sorted(flows, reverse=True)
    # Miles: the running length of the segments above, as the segment knows it.
    expected = np.concatenate(([0.0], segment.cumulative_length_km[:-1])) * MILES_PER_KM
    assert [row.miles_downstream for row in rows] == pytest.approx(expected)


def contribution(feature_id: int = 100, **changes: object) -> Contribution:
    base = Contribution(
        feature_id=feature_id,
        strm_order=6,
        name="n",
        state="TX",
        streamflow_cfs=1000.0,
        peak_time=T0 + dt.timedelta(hours=3),
        peak_at_horizon=False,
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


row = contribution  # the expiry tests below read better with the old name


def test_one_gauge_keeps_its_newest_issuance_even_with_a_lower_peak() -> None:
    old = contribution(streamflow_cfs=9000.0)
    new = contribution(issuance_time=T0 + dt.timedelta(hours=6), streamflow_cfs=10.0)
    assert merge_newest([old], [new]) == [new]
    assert merge_newest([new], [old]) == [new]


def test_each_gauge_keeps_its_own_contribution_at_a_shared_segment() -> None:
    a = contribution(rfc_location="AAAA1")
    b = contribution(rfc_location="BBBB2", issuance_time=T0 - dt.timedelta(hours=5))
    assert merge_newest([a], [b]) == [a, b]


def test_exact_tie_keeps_the_contribution_already_in_the_state() -> None:
    kept = contribution(update_time=NOW)
    again = contribution(update_time=NOW + dt.timedelta(hours=1))
    assert merge_newest([kept], [again]) == [kept]


def two_gauges_on_one_main_stem() -> list[Contribution]:
    """UPPR1 floods segments 100-103 (moderate); LOWR2, 2 segments below it, floods
    102-104 (minor) with more water: they overlap on 102 and 103."""
    upper = [
        contribution(
            100 + i,
            rfc_location="UPPR1",
            max_status="moderate",
            streamflow_cfs=5000.0 - 100 * i,
            miles_downstream=2.0 * i,
            issuance_time=T0,
        )
        for i in range(4)
    ]
    lower = [
        contribution(
            102 + i,
            rfc_location="LOWR2",
            max_status="minor",
            streamflow_cfs=8000.0 - 100 * i,
            miles_downstream=2.0 * i,
            issuance_time=T0 + dt.timedelta(hours=1),
        )
        for i in range(3)
    ]
    return upper + lower


def test_across_gauges_the_maximum_flow_governs_and_the_most_severe_status_shows() -> None:
    rows = {row.feature_id: row for row in segment_rows(two_gauges_on_one_main_stem())}
    assert sorted(rows) == [100, 101, 102, 103, 104]
    # Above the lower gauge only the upper one counts.
    assert rows[101].governing.rfc_location == "UPPR1"
    assert rows[101].influencing_lids == "UPPR1"
    # Where they overlap the lower gauge's larger flow governs, the status is the upper
    # gauge's more severe "moderate", and both forecasts are listed, governing first.
    overlap = rows[103]
    assert overlap.governing.rfc_location == "LOWR2"
    assert overlap.governing.streamflow_cfs == 7900.0
    assert overlap.max_status == "moderate"
    assert overlap.influencing_lids == "LOWR2,UPPR1"
    assert overlap.inherited_rfc_forecasts == (
        "LOWR2 @ 2025-05-05 22:00 UTC (minor); UPPR1 @ 2025-05-05 21:00 UTC (moderate)"
    )
    assert rows[104].influencing_lids == "LOWR2"


def test_the_others_are_listed_by_distance_after_the_governing_forecast() -> None:
    company = [
        contribution(rfc_location="FARR1", miles_downstream=30.0, streamflow_cfs=100.0),
        contribution(rfc_location="GOVR1", miles_downstream=20.0, streamflow_cfs=900.0),
        contribution(rfc_location="NEAR1", miles_downstream=5.0, streamflow_cfs=200.0),
    ]
    (row,) = segment_rows(company)
    assert row.influencing_lids == "GOVR1,NEAR1,FARR1"


@pytest.mark.parametrize("statuses", [("major", "minor"), ("action", "moderate", "minor")])
def test_severity_is_the_flood_category_order_not_string_order(statuses: tuple[str, ...]) -> None:
    company = [
        contribution(rfc_location=f"GAG{chr(65 + i)}1", max_status=status, streamflow_cfs=i)
        for i, status in enumerate(statuses)
    ]
    (row,) = segment_rows(company)
    assert row.max_status == max(statuses, key=SEVERITY.index)
    assert SEVERITY == ("no_flooding", "action", "minor", "moderate", "major")


def test_a_withdrawal_removes_the_gauge_up_to_its_issuance_only() -> None:
    state = two_gauges_on_one_main_stem()
    kept, withdrawn = withdraw(state, {"LOWR2": T0 + dt.timedelta(hours=1)})
    assert [c.feature_id for c in withdrawn] == [102, 103, 104]
    assert {c.rfc_location for c in kept} == {"UPPR1"}
    rows = {row.feature_id: row for row in segment_rows(kept)}
    assert sorted(rows) == [100, 101, 102, 103]
    assert rows[103].governing.rfc_location == "UPPR1"  # back to the upper gauge
    # A newer issuance than the withdrawal floods again and stays.
    newer = contribution(104, rfc_location="LOWR2", issuance_time=T0 + dt.timedelta(hours=2))
    assert withdraw([newer], {"LOWR2": T0 + dt.timedelta(hours=1)}) == ([newer], [])


@given(
    st.lists(
        st.tuples(
            st.integers(100, 102),  # segment
            st.integers(0, 2),  # issuance hour
            st.sampled_from([10.0, 20.0, 30.0]),
            st.sampled_from(["AAAA1", "BBBB2", "CCCC3"]),
            st.sampled_from(SEVERITY),
        ),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_the_table_does_not_depend_on_reading_order(specs, rng) -> None:
    contributions = [
        contribution(
            feature_id,
            issuance_time=T0 + dt.timedelta(hours=issued),
            streamflow_cfs=flow,
            rfc_location=lid,
            max_status=status,
        )
        for feature_id, issued, flow, lid, status in specs
    ]
    shuffled = contributions[:]
    rng.shuffle(shuffled)
    table = segment_rows(merge_newest(contributions))
    assert segment_rows(merge_newest(shuffled)) == table
    for row in table:
        assert row.governing.streamflow_cfs == max(c.streamflow_cfs for c in row.contributions)
        assert len({c.rfc_location for c in row.contributions}) == len(row.contributions)


def test_drop_expired_removes_old_forecasts_only() -> None:
    fresh = row(100, reference_time=NOW - dt.timedelta(hours=47))
    stale = row(101, reference_time=NOW - dt.timedelta(hours=49))
    kept, dropped = drop_expired([fresh, stale], now=NOW, max_age=dt.timedelta(hours=48))
    assert (kept, dropped) == ([fresh], 1)


def test_drop_expired_rejects_a_non_positive_age() -> None:
    with pytest.raises(ValueError, match="positive timedelta"):
        drop_expired([], now=NOW, max_age=dt.timedelta(0))
