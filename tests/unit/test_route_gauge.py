"""The analyst tool ``python -m rnr.analysis route``: files and API modes, exit codes,
the hydrograph's flood thresholds, kcfs axis and horizon mark, and the missing extra."""

from __future__ import annotations

import importlib.metadata
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest

import rnr.analysis.route_gauge as route_gauge
from devstack import SAMPLE_HYDROFABRIC
from devstack.replay.make_fixtures import DEFAULT_FIXTURES_DIR
from rnr.analysis.route_gauge import (
    DT_S,
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_SKIPPED,
    EXIT_UNKNOWN_REACH,
    INSTALL_ANALYSIS_EXTRA,
    M3_S_PER_KCFS,
    forecast_from_files,
    load_network,
    main,
    peak_or_horizon,
    plot_hydrograph,
    summary,
)
from rnr.hydro.forecast import FloodThreshold, Gauge, RfcForecast, StageFlowSeries, flows_m3_s
from rnr.hydro.muskingum_cunge import RoutingResult
from rnr.hydro.replace_and_route import route_forecast
from rnr.hydro.segments import Segment
from tests.conftest import Replay

HYDROFABRIC = SAMPLE_HYDROFABRIC / "parquet"
FIXTURES = DEFAULT_FIXTURES_DIR
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HPDT2_SEGMENTS = 13  # devstack/data/small/manifest.json, reach 3121538


def _answers(tmp_path: Path, lid: str) -> dict[str, Path]:
    """The replay fixtures' NWPS answers for ``lid``, saved as the analyst would."""
    gauges = json.loads((FIXTURES / "gauges.json").read_text())
    series = json.loads((FIXTURES / "stageflow" / f"{lid}.json").read_text())
    files = {
        "gauge": gauges[lid],
        "forecast": series["forecast"],
        "observation": series["observation"],
    }
    paths = {}
    for kind, answer in files.items():
        paths[kind] = tmp_path / f"{lid}_{kind}.json"
        paths[kind].write_text(json.dumps(answer))
    return paths


def _file_args(paths: dict[str, Path], out: Path) -> list[str]:
    return [
        "route",
        "--hydrofabric",
        str(HYDROFABRIC),
        "--forecast",
        str(paths["forecast"]),
        "--gauge",
        str(paths["gauge"]),
        "--observation",
        str(paths["observation"]),
        "--out",
        str(out),
    ]


def _check_outputs(out: Path, lid: str, flood_category: str) -> None:
    netcdf_files = list(out.glob("troute_output_*.nc"))
    assert [path.name for path in netcdf_files] == ["troute_output_202505052100.nc"]
    with netCDF4.Dataset(netcdf_files[0]) as dataset:
        assert dataset.dimensions["feature_id"].size == HPDT2_SEGMENTS
        assert list(dataset["feature_id"][:2]) == [100003, 100004]
        assert dataset.getncattr("rfc_location") == lid
        assert dataset.getncattr("max_status") == flood_category
        assert dataset.getncattr("rfc_reach_id") == "3121538"
        assert float(dataset["flow"][:].max()) > 3000.0
        assert dataset.getncattr("code_version") == importlib.metadata.version("rnr-pipeline")
    png = out / f"{lid}_hydrograph.png"
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000


def test_files_route_write_netcdf_and_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(_file_args(_answers(tmp_path, "HPDT2"), out)) == EXIT_OK
    _check_outputs(out, "HPDT2", "moderate")
    captured = capsys.readouterr()
    assert str(out / "troute_output_202505052100.nc") in captured.out
    assert str(out / "HPDT2_hydrograph.png") in captured.out
    assert f"{HPDT2_SEGMENTS} segments" in captured.out
    # On the sample hydrofabric both maxima fall inside the window: real peaks.
    assert "at gauge wb-100003: peak 3341.4 m3/s at 2025-05-07T22:45Z" in captured.out
    assert "at last segment wb-100015: peak 3340.6 m3/s at 2025-05-08T01:10Z" in captured.out
    assert "still rising" not in captured.out
    assert "indexing hydrofabric" in captured.err
    assert "routing" in captured.err


def test_reach_id_without_gauge_is_routed_ungated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _answers(tmp_path, "HPDT2")
    args = ["route", "--hydrofabric", str(HYDROFABRIC), "--forecast", str(paths["forecast"])]
    args += ["--reach-id", "3121538", "--lid", "hpdt2", "--out", str(tmp_path)]
    assert main(args) == EXIT_OK
    _check_outputs(tmp_path, "HPDT2", "unknown")
    assert "gate is not applied" in capsys.readouterr().err


def test_not_flooding_gauge_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_file_args(_answers(tmp_path, "GDLT2"), tmp_path / "out")) == EXIT_SKIPPED
    assert "not_flooding" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_unknown_reach_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*_file_args(_answers(tmp_path, "HPDT2"), tmp_path / "out"), "--reach-id", "999999"]
    assert main(args) == EXIT_UNKNOWN_REACH
    assert "999999" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ('{"issuedTime": "yesterday", "data": []}', "not an NWPS stage-flow forecast answer"),
    ],
)
def test_malformed_forecast_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, problem: str
) -> None:
    paths = _answers(tmp_path, "HPDT2")
    paths["forecast"].write_text(content)
    assert main(_file_args(paths, tmp_path / "out")) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(paths["forecast"]) in err
    assert problem in err


def test_missing_gauge_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _answers(tmp_path, "HPDT2")
    paths["gauge"] = tmp_path / "missing.json"
    assert main(_file_args(paths, tmp_path / "out")) == EXIT_BAD_INPUT
    assert str(tmp_path / "missing.json") in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "--hydrofabric", str(HYDROFABRIC)]) == EXIT_BAD_INPUT
    assert main(["route", "--hydrofabric", str(HYDROFABRIC), "--nwps-url", "x"]) == 2
    assert "--lid" in capsys.readouterr().err


def test_api_mode_against_the_replay_server(
    tmp_path: Path, replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["route", "--hydrofabric", str(HYDROFABRIC), "--lid", "HPDT2"]
    args += ["--nwps-url", replay.nwps_api_url, "--out", str(tmp_path)]
    assert main(args) == EXIT_OK
    _check_outputs(tmp_path, "HPDT2", "moderate")
    assert "HPDT2 reach 3121538 (moderate)" in capsys.readouterr().out


def test_api_mode_skips_what_the_worker_skips(
    tmp_path: Path, replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["route", "--hydrofabric", str(HYDROFABRIC), "--lid", "ZZZZ9"]
    args += ["--nwps-url", replay.nwps_api_url, "--out", str(tmp_path)]
    assert main(args) == EXIT_SKIPPED
    assert "unknown_gauge" in capsys.readouterr().out


def _files_in(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("hostile", ["../ESCAPED", "..", "HPDT2/../../x", "/tmp/x"])
def test_a_hostile_lid_in_the_gauge_file_writes_nothing_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hostile: str
) -> None:
    paths = _answers(tmp_path, "HPDT2")
    gauge = json.loads(paths["gauge"].read_text())
    paths["gauge"].write_text(json.dumps({**gauge, "lid": hostile}))
    before = _files_in(tmp_path)
    out = tmp_path / "work" / "out"
    assert main(_file_args(paths, out)) == EXIT_BAD_INPUT
    assert "not an NWS location id" in capsys.readouterr().err
    assert _files_in(tmp_path) == before


@pytest.mark.parametrize("option", ["--lid", "--reach-id"])
def test_a_hostile_lid_or_reach_option_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    paths = _answers(tmp_path, "HPDT2")
    args = ["route", "--hydrofabric", str(HYDROFABRIC), "--forecast", str(paths["forecast"])]
    args += ["--reach-id", "3121538", "--lid", "HPDT2", "--out", str(tmp_path / "out")]
    args[args.index(option) + 1] = "../ESCAPED"
    before = _files_in(tmp_path)
    assert main(args) == EXIT_BAD_INPUT
    assert f"{option}: " in capsys.readouterr().err
    assert _files_in(tmp_path) == before


def test_outputs_are_refused_outside_the_chosen_folder(tmp_path: Path) -> None:
    from rnr.analysis.route_gauge import BadInput, output_path

    assert output_path(tmp_path, "HPDT2_hydrograph.png") == tmp_path / "HPDT2_hydrograph.png"
    for name in ("../HPDT2_hydrograph.png", "sub/x.png", "/etc/x.png", ".."):
        with pytest.raises(BadInput, match="outside"):
            output_path(tmp_path, name)


# --- the maximum of a curve: peak or still rising ------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 3.0, 2.0], (1, 3.0, False)),
        ([1.0, 2.0, 3.0], (2, 3.0, True)),
        ([1.0, 3.0, 3.0], (1, 3.0, False)),  # levelled off before the end: a peak
        ([3.0, 2.0, 1.0], (0, 3.0, False)),
        ([5.0], (0, 5.0, True)),  # one value: no evidence of a peak
    ],
)
def test_peak_or_horizon(values: list[float], expected: tuple[int, float, bool]) -> None:
    peak = peak_or_horizon(np.array(values, dtype=np.float32))
    assert tuple(peak) == expected
    assert (peak.step, peak.value, peak.at_horizon) == expected


def test_peak_or_horizon_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        peak_or_horizon([])


# --- the hydrograph's artists ----------------------------------------------------------


def _routed(
    hydrofabric: Path, paths: dict[str, Path], *, with_observation: bool = True
) -> tuple[RfcForecast, Segment, RoutingResult, tuple[FloodThreshold, ...]]:
    """Route the saved answers as the tool does; the thresholds of the gauge answer."""
    prepared, gauge, _ = forecast_from_files(
        paths["forecast"], paths["gauge"], paths["observation"] if with_observation else None
    )
    assert isinstance(prepared, RfcForecast) and gauge is not None
    segment = load_network(hydrofabric, None).extract_segment(prepared.reach_id)
    result = route_forecast(
        segment.parameters,
        segment.downstream,
        prepared.valid_times,
        prepared.flow_m3_s,
        prepared.initial_flow_m3_s,
        dt_s=DT_S,
    )
    return prepared, segment, result, gauge.flood_thresholds()


def _artists(figure: Any) -> dict[str, Any]:
    figure.savefig(io.BytesIO(), format="png")  # lays out the secondary axis
    (axes,) = figure.axes
    return {
        "axes": axes,
        "line_gids": [line.get_gid() for line in axes.lines],
        "texts": {text.get_gid(): text.get_text() for text in axes.texts},
        "legend": [text.get_text() for text in axes.get_legend().get_texts()],
    }


def test_hpdt2_fixture_thresholds_bracket_its_moderate_forecast() -> None:
    gauges = json.loads((FIXTURES / "gauges.json").read_text())
    forecast = StageFlowSeries.model_validate(
        json.loads((FIXTURES / "stageflow" / "HPDT2.json").read_text())["forecast"]
    )
    thresholds = {
        t.category: t.flow_m3_s for t in Gauge.model_validate(gauges["HPDT2"]).flood_thresholds()
    }
    top = max(flow for _, flow in flows_m3_s(forecast))
    assert list(thresholds) == ["action", "minor", "moderate", "major"]
    assert thresholds["moderate"] < top < thresholds["major"]


def test_hpdt2_hydrograph_draws_thresholds_and_a_kcfs_axis(tmp_path: Path) -> None:
    forecast, segment, result, thresholds = _routed(HYDROFABRIC, _answers(tmp_path, "HPDT2"))
    figure = plot_hydrograph(forecast, segment, result, thresholds=thresholds)
    found = _artists(figure)
    axes = found["axes"]

    categories = ["action", "minor", "moderate", "major"]
    assert [gid for gid in found["line_gids"] if gid and gid.startswith("flood-")] == [
        f"flood-{category}" for category in categories
    ]
    lines = {line.get_gid(): line for line in axes.lines}
    assert lines["flood-moderate"].get_ydata()[0] == pytest.approx(109.71 * M3_S_PER_KCFS)
    assert found["texts"]["flood-moderate-label"] == (
        "moderate 3,107 m³/s (109.7 kcfs, stage 50.0 ft)"
    )
    assert found["texts"]["flood-major-label"] == "major 3,883 m³/s (137.1 kcfs, stage 55.0 ft)"
    assert axes.get_ylim()[1] > 3883  # every threshold is in view
    # The kcfs axis on the right, the same scale as the m³/s axis.
    (kcfs,) = axes.child_axes
    assert kcfs.get_ylabel() == "Flow (kcfs)"
    assert np.allclose(np.array(kcfs.get_ylim()), np.array(axes.get_ylim()) / M3_S_PER_KCFS)
    # The existing parts stay; on this hydrofabric both maxima are real peaks.
    legend = found["legend"]
    assert legend[:3] == [
        "gauge HPDT2 (origin wb-100003)",
        "last segment wb-100015 (ends 42.1 km downstream)",
        "RFC forecast (lateral inflow at the origin)",
    ]
    assert any(label.startswith("peak at last segment: 3,341 m³/s") for label in legend)
    assert {"peak-gauge", "peak-last-segment"} <= set(found["line_gids"])
    assert not any("still rising" in text for text in [*found["texts"].values(), *legend])


def test_a_curve_still_rising_at_the_end_is_marked_not_called_a_peak(tmp_path: Path) -> None:
    paths = _answers(tmp_path, "HPDT2")
    answer = json.loads(paths["forecast"].read_text())
    # The first 12 three-hourly values: the flood wave has not reached the outlet.
    paths["forecast"].write_text(json.dumps({**answer, "data": answer["data"][:12]}))
    forecast, segment, result, thresholds = _routed(HYDROFABRIC, paths, with_observation=False)
    outlet = float(result.flow_m3_s[-1, -1])
    assert outlet == result.flow_m3_s[:, -1].max()

    found = _artists(plot_hydrograph(forecast, segment, result, thresholds=thresholds))
    words = f"still rising at end of forecast (≥ {outlet:,.0f} m³/s)"
    assert found["texts"]["horizon-last-segment"] == words
    assert f"last segment: {words}" in found["legend"]
    assert "horizon-last-segment" in found["line_gids"]
    assert "peak-last-segment" not in found["line_gids"]
    assert not any(label.startswith("peak at last segment") for label in found["legend"])

    line = summary(forecast, segment, result, DT_S)
    assert f"at last segment wb-100015: still rising at end of forecast (≥ {outlet:.1f} m3/s" in (
        line
    )
    assert "at gauge wb-100003: peak " in line


def test_hpdt2_outlet_on_the_conformance_hydrofabric_is_still_rising(
    shared_dir: Path, tmp_path: Path
) -> None:
    """The issue's case: the 320 km chain's outlet reaches 2,307 m³/s on the last step."""
    forecast, segment, result, thresholds = _routed(
        shared_dir / "conformance" / "hpdt2" / "HPDT2.gpkg", _answers(tmp_path, "HPDT2")
    )
    found = _artists(plot_hydrograph(forecast, segment, result, thresholds=thresholds))
    words = "still rising at end of forecast (≥ 2,307 m³/s)"
    assert found["texts"]["horizon-last-segment"] == words
    assert f"last segment: {words}" in found["legend"]
    assert [gid for gid in found["line_gids"] if gid and gid.startswith("flood-")] == [
        "flood-action",
        "flood-minor",
        "flood-moderate",
        "flood-major",
    ]
    assert "at last segment wb-2418169: still rising at end of forecast (≥ 2307.2 m3/s" in (
        summary(forecast, segment, result, DT_S)
    )


class _PlotSpy:
    """Wraps plot_hydrograph, keeping the thresholds each call received."""

    def __init__(self) -> None:
        self.thresholds: list[tuple[FloodThreshold, ...]] = []

    def __call__(self, *args: Any, thresholds: Any = (), **kwargs: Any) -> Any:
        self.thresholds.append(tuple(thresholds))
        return plot_hydrograph(*args, thresholds=thresholds, **kwargs)


def test_ungated_run_draws_no_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _PlotSpy()
    monkeypatch.setattr(route_gauge, "plot_hydrograph", spy)
    paths = _answers(tmp_path, "HPDT2")
    args = ["route", "--hydrofabric", str(HYDROFABRIC), "--forecast", str(paths["forecast"])]
    args += ["--reach-id", "3121538", "--out", str(tmp_path / "out")]
    assert main(args) == EXIT_OK
    assert spy.thresholds == [()]


def test_api_mode_draws_the_gauge_answers_thresholds(
    tmp_path: Path, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _PlotSpy()
    monkeypatch.setattr(route_gauge, "plot_hydrograph", spy)
    args = ["route", "--hydrofabric", str(HYDROFABRIC), "--lid", "HPDT2"]
    args += ["--nwps-url", replay.nwps_api_url, "--out", str(tmp_path)]
    assert main(args) == EXIT_OK
    ((moderate,),) = [[t for t in call if t.category == "moderate"] for call in spy.thresholds]
    assert moderate.flow_m3_s == pytest.approx(109.71 * M3_S_PER_KCFS)
    assert moderate.stage == 50.0


# --- without the analysis extra ---------------------------------------------------------


def test_without_matplotlib_the_netcdf_is_written_and_the_install_command_shown(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    argv = _file_args(_answers(tmp_path, "HPDT2"), out)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["matplotlib"] = None  # as if the analysis extra were not installed
        from rnr.analysis.route_gauge import main
        sys.exit(main({argv!r}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert completed.returncode == EXIT_OK, completed.stderr
    assert "Traceback" not in completed.stderr
    assert INSTALL_ANALYSIS_EXTRA == "pip install 'rnr-pipeline[analysis]'"
    notes = [line for line in completed.stderr.splitlines() if INSTALL_ANALYSIS_EXTRA in line]
    assert len(notes) == 1 and "PNG skipped" in notes[0]
    assert [path.name for path in out.iterdir()] == ["troute_output_202505052100.nc"]
    assert not list(out.glob("*.png"))
    assert f"NetCDF: {out / 'troute_output_202505052100.nc'}" in completed.stdout
    assert "PNG:" not in completed.stdout
    assert "HPDT2 reach 3121538 (moderate)" in completed.stdout
