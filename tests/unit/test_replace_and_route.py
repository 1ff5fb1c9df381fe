"""Forecast to lateral inflow, and the whole HPDT2 forecast routed past the reference's days."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from rnr.hydro.replace_and_route import lateral_inflow, route_forecast
from tests.support.hpdt2 import channel as hpdt2_channel

T0 = dt.datetime(2025, 5, 5, 21, tzinfo=dt.UTC)


def hours(*offsets: float) -> list[dt.datetime]:
    return [T0 + dt.timedelta(hours=h) for h in offsets]


def test_each_value_is_held_over_its_interval_on_the_origin_only() -> None:
    inflow = lateral_inflow(hours(0, 3, 6), [10.0, 20.0, 30.0], 4)
    assert inflow.shape == (72, 4)
    assert (inflow[:36, 0] == 10.0).all()
    assert (inflow[36:, 0] == 20.0).all()
    assert not inflow[:, 1:].any()


def test_irregular_intervals_are_honoured() -> None:
    inflow = lateral_inflow(hours(0, 1, 6), [5.0, 7.0, 9.0], 1)
    assert inflow.shape == (72, 1)
    assert (inflow[:12, 0] == 5.0).all() and (inflow[12:, 0] == 7.0).all()


@pytest.mark.parametrize(
    ("times", "flows", "fragment"),
    [
        (hours(0), [1.0], "at least two values"),
        (hours(0, 3), [1.0], "2 valid times for 1 flow values"),
        (hours(0, 0.01), [1.0, 2.0], "whole number"),
        (hours(3, 0), [1.0, 2.0], "whole number"),
    ],
)
def test_bad_forecasts_are_rejected(times, flows, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        lateral_inflow(times, flows, 3)


def test_hpdt2_forecast_routes_its_whole_span_and_agrees_with_troute(shared_dir: Path) -> None:
    folder = shared_dir / "conformance" / "hpdt2"
    hpdt2 = hpdt2_channel(folder)
    params, downstream = hpdt2.params, hpdt2.downstream
    reach = json.loads((folder / "HPDT2_forecast.json").read_text())["reach"]
    times = [dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC) for t in reach["times"]]
    flows = reach["secondary_forecast"]
    result = route_forecast(params, downstream, times, flows, flows[0])
    span_steps = int((times[-1] - times[0]).total_seconds() // 300)
    assert result.flow_m3_s.shape == (span_steps, len(hpdt2.keys))
    assert span_steps > 1152  # the reference stopped at whole days

    with (folder / "HPDT2_flowveldepth_5min.csv").open(newline="") as handle:
        reference = {
            (row["feature_id"], int(row["step"])): float(row["flow_m3s"])
            for row in csv.DictReader(handle)
        }
    keys = [str(key) for key in hpdt2.keys]
    for step in (1, 36, 500, 1152):
        expected = np.array([reference[(key, step)] for key in keys])
        np.testing.assert_allclose(result.flow_m3_s[step - 1], expected, rtol=1e-5)
