"""The NWPS gate and conversions (RNR_SPEC section 2), on answers shaped like NWPS's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rnr.hydro.forecast import (
    CUBIC_FEET_TO_M3,
    Gauge,
    RfcForecast,
    Skipped,
    SkipReason,
    StageFlowSeries,
    prepare_forecast,
)

LID = "HPDT2"  # the validated id the worker asked NWPS about


def gauge(**changes: Any) -> Gauge:
    payload: dict[str, Any] = {
        "lid": "hpdt2",
        "name": "Brazos River near Hempstead",
        "reachId": "3121538",
        "wfo": {"abbreviation": "HGX"},
        "status": {"forecast": {"floodCategory": "moderate"}},
    }
    payload.update(changes)
    return Gauge.model_validate(payload)


def series(flows: list[float], units: str = "kcfs", start_hour: int = 21) -> StageFlowSeries:
    start = dt.datetime(2025, 5, 5, start_hour, tzinfo=dt.UTC)
    return StageFlowSeries.model_validate(
        {
            "issuedTime": "2025-05-05T14:10:00Z",
            "secondaryUnits": units,
            "data": [
                {
                    "validTime": (start + dt.timedelta(hours=3 * i)).isoformat(),
                    "primary": 10.0,
                    "secondary": flow,
                }
                for i, flow in enumerate(flows)
            ],
        }
    )


def test_kcfs_and_cfs_are_converted_to_cubic_metres() -> None:
    kcfs = prepare_forecast(LID, gauge(), series([17.0, 20.0]), None)
    cfs = prepare_forecast(LID, gauge(), series([17000.0, 20000.0], units="cfs"), None)
    assert isinstance(kcfs, RfcForecast) and isinstance(cfs, RfcForecast)
    assert kcfs.flow_m3_s[0] == pytest.approx(17.0 * 1000 * CUBIC_FEET_TO_M3)
    assert kcfs.flow_m3_s[0] == pytest.approx(481.386392064)
    assert list(kcfs.flow_m3_s) == pytest.approx(list(cfs.flow_m3_s))


def test_every_missing_value_is_dropped_not_only_the_first() -> None:
    prepared = prepare_forecast(LID, gauge(), series([-999, 17.0, -999, 18.0, -999, 19.0]), None)
    assert isinstance(prepared, RfcForecast)
    assert len(prepared.flow_m3_s) == 3
    assert prepared.t0 == prepared.valid_times[0] == dt.datetime(2025, 5, 6, 0, tzinfo=dt.UTC)


def test_initial_flow_is_the_latest_valid_observation_else_the_first_forecast() -> None:
    observed = series([10.0, 12.0, -999], start_hour=9)
    with_obs = prepare_forecast(LID, gauge(), series([17.0, 20.0]), observed)
    without = prepare_forecast(LID, gauge(), series([17.0, 20.0]), None)
    assert isinstance(with_obs, RfcForecast) and isinstance(without, RfcForecast)
    assert with_obs.initial_flow_m3_s == pytest.approx(12.0 * 1000 * CUBIC_FEET_TO_M3)
    assert without.initial_flow_m3_s == pytest.approx(17.0 * 1000 * CUBIC_FEET_TO_M3)


@pytest.mark.parametrize("category", ["action", "minor", "moderate", "major"])
def test_flooding_categories_pass_the_gate(category: str) -> None:
    prepared = prepare_forecast(
        LID, gauge(status={"forecast": {"floodCategory": category}}), series([1.0, 2.0]), None
    )
    assert isinstance(prepared, RfcForecast)
    assert prepared.flood_category == category
    assert prepared.lid == "HPDT2"


@pytest.mark.parametrize(
    ("changes", "forecast", "reason"),
    [
        ({"status": {"forecast": {"floodCategory": "no_flooding"}}}, [1.0], "not_flooding"),
        ({"status": {"forecast": {"floodCategory": "not_defined"}}}, [1.0], "not_flooding"),
        ({"status": {}}, [1.0], "not_flooding"),
        ({"reachId": ""}, [1.0], "no_reach_id"),
        ({"reachId": "  "}, [1.0], "no_reach_id"),
        ({"wfo": {"abbreviation": "AFC"}}, [1.0], "outside_conus"),
        ({"wfo": {"abbreviation": "hfo"}}, [1.0], "outside_conus"),
        ({}, [-999.0, -999.0], "no_valid_flow"),
        ({}, [], "no_valid_flow"),
    ],
)
def test_skip_reasons(changes: dict, forecast: list[float], reason: str) -> None:
    skipped = prepare_forecast(LID, gauge(**changes), series(forecast), None)
    assert isinstance(skipped, Skipped)
    assert skipped.reason == SkipReason(reason)
    assert skipped.lid == "HPDT2"


def test_unknown_flow_units_are_a_skip() -> None:
    skipped = prepare_forecast(LID, gauge(), series([1.0], units="m3/s"), None)
    assert isinstance(skipped, Skipped)
    assert skipped.reason is SkipReason.UNKNOWN_FLOW_UNITS
    assert "m3/s" in skipped.detail


# --------------------------------------------------------------------- invalid data


def stageflow(points: list[tuple[str, float]]) -> StageFlowSeries:
    return StageFlowSeries.model_validate(
        {
            "secondaryUnits": "kcfs",
            "data": [{"validTime": when, "secondary": flow} for when, flow in points],
        }
    )


def invalid_data_detail(prepared: RfcForecast | Skipped) -> str:
    assert isinstance(prepared, Skipped), prepared
    assert prepared.reason is SkipReason.INVALID_DATA
    assert prepared.lid == LID
    return prepared.detail


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ([("2025-05-05T21:00:00Z", 1.0)], "at least two"),
        ([("2025-05-05T21:00:00Z", 1.0), ("2025-05-05T18:00:00Z", 2.0)], "strictly increasing"),
        ([("2025-05-05T21:00:00Z", 1.0), ("2025-05-05T21:00:00Z", 2.0)], "strictly increasing"),
        ([("2025-05-05T21:00:00Z", 1.0), ("2027-05-05T21:00:00Z", 2.0)], "31-day limit"),
        ([("2025-05-05T21:00:00Z", 1.0), ("2025-05-06T21:00:00Z", 1e300)], "not a finite flow"),
        ([("2025-05-05T21:00:00Z", 1.0), ("2025-05-06T21:00:00Z", 1e40)], "not a finite flow"),
    ],
)
def test_an_unroutable_series_is_invalid_data(points: list, problem: str) -> None:
    assert problem in invalid_data_detail(prepare_forecast(LID, gauge(), stageflow(points), None))


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_times_outside_the_calendar_span_are_rejected_by_the_model(when: str) -> None:
    with pytest.raises(ValueError, match="must lie between"):
        stageflow([(when, 1.0), ("2025-05-06T21:00:00Z", 2.0)])


def test_an_answer_about_another_gauge_is_invalid_data_and_keeps_the_asked_id() -> None:
    detail = invalid_data_detail(
        prepare_forecast(LID, gauge(lid="../ESCAPED"), series([1, 2]), None)
    )
    assert "../ESCAPED" in detail


@pytest.mark.parametrize("reach_id", ["../3121538", "31 21", "0x1F", "3121538/..", "9" * 20])
def test_a_reach_id_that_is_not_digits_is_invalid_data(reach_id: str) -> None:
    detail = invalid_data_detail(
        prepare_forecast(LID, gauge(reachId=reach_id), series([1, 2]), None)
    )
    assert "reach id" in detail


# ----------------------------------------------------------------- flood thresholds

# ``flood`` as NWPS gives it in ``GET /gauges/{lid}`` (shape of a real answer, quoted
# in NOAA-OWP/hydrotools#250): categories in any order, -9999 where undefined.
NWPS_FLOOD = {
    "stageUnits": "ft",
    "flowUnits": "cfs",
    "categories": {
        "major": {"stage": 13, "flow": -9999},
        "moderate": {"stage": 12, "flow": 16586},
        "minor": {"stage": 11, "flow": 13800},
        "action": {"stage": -9999, "flow": 12000},
    },
    "crests": {"historic": [], "recent": []},
}


def test_thresholds_are_in_m3_s_least_severe_first_without_undefined_flows() -> None:
    thresholds = gauge(flood=NWPS_FLOOD).flood_thresholds()
    assert [t.category for t in thresholds] == ["action", "minor", "moderate"]
    assert thresholds[2].flow_m3_s == pytest.approx(16586 * CUBIC_FEET_TO_M3)
    assert thresholds[2].stage == 12.0
    assert thresholds[2].stage_units == "ft"
    assert thresholds[0].stage is None  # -9999: undefined


def test_kcfs_thresholds_are_converted() -> None:
    flood = {
        "stageUnits": "ft",
        "flowUnits": "KCFS",
        "categories": {"moderate": {"stage": 50.0, "flow": 109.71}},
    }
    (moderate,) = gauge(flood=flood).flood_thresholds()
    assert moderate.flow_m3_s == pytest.approx(109.71 * 1000 * CUBIC_FEET_TO_M3)


@pytest.mark.parametrize(
    "flood",
    [
        None,
        {"flowUnits": "m3/s", "categories": {"minor": {"flow": 5.0}}},
        {"flowUnits": "kcfs", "categories": {"minor": {"stage": 11.0, "flow": None}}},
        {"flowUnits": "kcfs", "categories": {"minor": {"flow": -1.0}, "major": {"flow": 0}}},
        {"flowUnits": "kcfs", "categories": {"minor": None}},
        {"flowUnits": "kcfs"},
    ],
)
def test_no_defined_threshold_flow_means_no_thresholds(flood: dict[str, Any] | None) -> None:
    assert gauge(flood=flood).flood_thresholds() == ()


def test_an_answer_without_flood_has_no_thresholds() -> None:
    assert gauge().flood is None
    assert gauge().flood_thresholds() == ()


@pytest.mark.parametrize(
    "flood",
    ["text", {"categories": "none"}, {"categories": {"minor": {"flow": "high"}}}],
)
def test_an_unreadable_flood_is_ignored_and_the_gauge_still_routes(flood: object) -> None:
    readable = gauge(flood=flood)
    assert readable.flood is None
    assert readable.flood_thresholds() == ()
    assert isinstance(prepare_forecast(LID, readable, series([17.0, 20.0]), None), RfcForecast)
