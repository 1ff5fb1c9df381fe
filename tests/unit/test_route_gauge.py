"""The analyst tool ``python -m rnr.analysis route``: files and API modes, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import pytest

import rnr.hydro_io
import rnr.replay
from rnr.analysis.route_gauge import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_SKIPPED,
    EXIT_UNKNOWN_REACH,
    main,
)
from tests.conftest import Replay

HYDROFABRIC = Path(rnr.hydro_io.__file__).parent / "data" / "small" / "parquet"
FIXTURES = Path(rnr.replay.__file__).parent / "fixtures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HPDT2_SEGMENTS = 13  # rnr/hydro_io/data/small/manifest.json, reach 3121538


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
    assert "peak at gauge wb-100003" in captured.out
    assert "at last segment wb-100015" in captured.out
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
