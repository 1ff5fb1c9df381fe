"""The routed segment (RNR_SPEC section 3): the real HPDT2 case, the small synthetic
hydrofabric's cases (lake, order change, tributary), and the rule on hand-made tables.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devstack import SAMPLE_HYDROFABRIC
from devstack import make_hydrofabric as maker
from rnr.core.errors import PermanentError
from rnr.hydro.muskingum_cunge import ChannelParameters, route
from rnr.hydro.segments import (
    InvalidSegment,
    NetworkIndex,
    ReachNotFound,
    Segment,
)
from rnr.hydro_io.hydrofabric import GeoPackageReader, ParquetReader, attributes_layer

HPDT2_REACH = "3121538"
HPDT2_IDS = [f"wb-{n}" for n in range(2418120, 2418170)]
# ChannelParameters field -> kernel_input_param_df.csv column
KERNEL_COLUMNS = {
    "length_m": "dx",
    "bottom_width_m": "bw",
    "top_width_m": "tw",
    "floodplain_top_width_m": "twcc",
    "manning_n": "n",
    "floodplain_manning_n": "ncc",
    "side_slope": "cs",
    "bed_slope": "s0",
}
NEEDED_LAYERS = ("flowpaths", "network", "nexus", "flowpath-attributes-ml", "flowpath-attributes")
STEPS_PER_FORECAST_INTERVAL = 36


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def case_dir(shared_dir: Path) -> Path:
    return shared_dir / "conformance" / "hpdt2"


@pytest.fixture(scope="module")
def hpdt2_index(case_dir: Path) -> NetworkIndex:
    reader = GeoPackageReader(case_dir / "HPDT2.gpkg")
    return NetworkIndex.from_reader(reader, attributes_layer(reader))


@pytest.fixture(scope="module")
def hpdt2_segment(hpdt2_index: NetworkIndex) -> Segment:
    return hpdt2_index.extract_segment(HPDT2_REACH)


def gpkg_to_parquet(gpkg: Path, folder: Path, layers: tuple[str, ...]) -> None:
    """What a Parquet hydrofabric holds: one file per layer, geometry as WKB."""
    reader = GeoPackageReader(gpkg)
    folder.mkdir()
    for layer in layers:
        columns = [name for name in reader.columns(layer) if name != "fid"]
        table = reader.read(layer, columns)
        geometry = reader.geometry_column(layer)
        arrays = {
            ("geometry" if name == geometry else name): pa.array(values)
            for name, values in table.items()
        }
        pq.write_table(pa.table(arrays), folder / f"{layer}.parquet")


# ---------------------------------------------------------------- the real case


def test_hpdt2_segment_is_the_50_flowpath_chain(hpdt2_segment: Segment) -> None:
    segment = hpdt2_segment
    assert list(segment.flowpath_ids) == HPDT2_IDS
    assert segment.origin_id == "wb-2418120" and segment.reach_id == HPDT2_REACH
    np.testing.assert_array_equal(segment.feature_ids, np.arange(2418120, 2418170))
    np.testing.assert_array_equal(segment.downstream, [*range(1, 50), -1])
    assert segment.stream_order == 6
    assert segment.lake_poi_id is None  # HPDT2.gpkg has no lakes layer
    assert segment.attributes_layer == "flowpath-attributes-ml"
    assert segment.cumulative_length_km[0] == pytest.approx(3.6054050621573492)
    assert segment.cumulative_length_km[-1] == pytest.approx(319.907, abs=1e-3)  # "~320 km"
    assert np.all(np.diff(segment.cumulative_length_km) > 0)


def test_hpdt2_parameters_are_what_troute_received(case_dir: Path, hpdt2_segment: Segment) -> None:
    rows = {
        int(float(row["key"])): row for row in read_rows(case_dir / "kernel_input_param_df.csv")
    }
    assert set(rows) == set(hpdt2_segment.feature_ids.tolist())
    for field, column in KERNEL_COLUMNS.items():
        expected = np.array(
            [float(rows[key][column]) for key in hpdt2_segment.feature_ids], dtype=np.float32
        )
        np.testing.assert_array_equal(getattr(hpdt2_segment.parameters, field), expected, field)
    downstream = [int(float(rows[key]["downstream"])) for key in hpdt2_segment.feature_ids]
    assert downstream[:-1] == hpdt2_segment.feature_ids[1:].tolist()


def test_the_plain_attributes_layer_gives_other_parameters(case_dir: Path) -> None:
    reader = GeoPackageReader(case_dir / "HPDT2.gpkg")
    plain = NetworkIndex.from_reader(reader, "flowpath-attributes").extract_segment(HPDT2_REACH)
    assert plain.attributes_layer == "flowpath-attributes"
    assert plain.parameters.manning_n[0] == np.float32(0.05)  # not the -ml 0.028158
    assert list(plain.flowpath_ids) == HPDT2_IDS


def test_parquet_hydrofabric_gives_the_same_segment(
    case_dir: Path, tmp_path: Path, hpdt2_segment: Segment
) -> None:
    gpkg_to_parquet(case_dir / "HPDT2.gpkg", tmp_path / "hpdt2", NEEDED_LAYERS)
    reader = ParquetReader(tmp_path / "hpdt2")
    assert attributes_layer(reader) == "flowpath-attributes-ml"
    segment = NetworkIndex.from_reader(reader, attributes_layer(reader)).extract_segment(3121538)
    assert segment.flowpath_ids == hpdt2_segment.flowpath_ids
    np.testing.assert_array_equal(segment.cumulative_length_km, hpdt2_segment.cumulative_length_km)
    for field in KERNEL_COLUMNS:
        np.testing.assert_array_equal(
            getattr(segment.parameters, field), getattr(hpdt2_segment.parameters, field)
        )


def test_routing_the_extracted_segment_matches_troute(
    case_dir: Path, hpdt2_segment: Segment
) -> None:
    """The first 432 steps (1.5 days); the full run is in test_conformance_hpdt2."""
    steps = 432
    checked = (1, 36, 144, 145, 216, 300, 432)
    keys = hpdt2_segment.feature_ids.tolist()
    state = {int(float(row["key"])): row for row in read_rows(case_dir / "kernel_input_q0.csv")}
    q0 = np.array([float(state[key]["qd0"]) for key in keys])
    h0 = np.array([float(state[key]["h0"]) for key in keys])
    with (case_dir / "kernel_input_qlats.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        qlats = {int(float(row[0])): [float(v) for v in row[1:]] for row in reader}
    lateral = np.repeat(np.array([qlats[key] for key in keys]).T, STEPS_PER_FORECAST_INTERVAL, 0)
    result = route(
        hpdt2_segment.parameters, hpdt2_segment.downstream, lateral[:steps], q0, h0, dt_s=300.0
    )
    position = {key: index for index, key in enumerate(keys)}
    expected = np.full((len(checked), len(keys)), np.nan)
    for row in read_rows(case_dir / "HPDT2_flowveldepth_5min.csv"):
        step = int(row["step"])
        if step in checked:
            expected[checked.index(step), position[int(row["feature_id"])]] = float(row["flow_m3s"])
    actual = result.flow_m3_s[[step - 1 for step in checked]]
    relative = np.abs(actual - expected) / np.abs(expected)
    assert relative.max() <= 1e-5, f"worst {relative.max():.2e}"


# ---------------------------------------------------------------- the small hydrofabric


@pytest.fixture(scope="module", params=["gpkg", "parquet"])
def small_index(request: pytest.FixtureRequest) -> Iterator[NetworkIndex]:
    if request.param == "gpkg":
        reader: GeoPackageReader | ParquetReader = GeoPackageReader(
            SAMPLE_HYDROFABRIC / maker.GPKG_NAME
        )
    else:
        reader = ParquetReader(SAMPLE_HYDROFABRIC / maker.PARQUET_DIR)
    yield NetworkIndex.from_reader(reader, attributes_layer(reader))
    reader.close()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((SAMPLE_HYDROFABRIC / maker.MANIFEST_NAME).read_text())


def main_stem(start: int, stop: int) -> list[str]:
    return [f"wb-{100001 + i}" for i in range(start, stop)]


@pytest.mark.parametrize(
    ("reach_id", "lid", "expected", "order", "ends_at_lake"),
    [
        ("3121538", "HPDT2", main_stem(2, 15), 4, True),
        ("1479611", "TRKT2", main_stem(8, 15), 4, True),
        ("18786543", "PRLL1", main_stem(20, 30), 4, False),
        ("21771164", "ILRO2", [f"wb-{100101 + i}" for i in range(3, 8)], 2, False),
    ],
)
def test_small_hydrofabric_segments(
    small_index: NetworkIndex,
    manifest: dict,
    reach_id: str,
    lid: str,
    expected: list[str],
    order: int,
    ends_at_lake: bool,
) -> None:
    segment = small_index.extract_segment(reach_id)
    assert manifest["reaches"][reach_id]["lid"] == lid
    assert list(segment.flowpath_ids) == expected == manifest["reaches"][reach_id]["segment"]
    assert segment.stream_order == order
    assert (segment.lake_poi_id == manifest["lake"]["poi_id"]) is ends_at_lake
    assert segment.attributes_layer == "flowpath-attributes-ml"
    np.testing.assert_array_equal(segment.downstream, [*range(1, len(expected)), -1])
    length_m = segment.parameters.length_m.astype(np.float64)
    np.testing.assert_allclose(segment.length_km * 1000.0, length_m, rtol=1e-6)
    np.testing.assert_allclose(segment.cumulative_length_km, np.cumsum(segment.length_km))


def test_lake_truncation_keeps_the_lake_flowpath(small_index: NetworkIndex, manifest: dict) -> None:
    segment = small_index.extract_segment("3121538")
    assert segment.flowpath_ids[-1] == manifest["lake"]["flowpath"] == "wb-100015"
    below_lake = small_index.extract_segment("18786543")
    assert manifest["lake"]["flowpath"] not in below_lake.flowpath_ids


def test_order_filter_ends_the_segment_where_the_order_changes(small_index: NetworkIndex) -> None:
    """Below the order-4 tributary the main stem is order 5 and the same hf_mainstem."""
    segment = small_index.extract_segment("18786543")
    assert segment.flowpath_ids[-1] == "wb-100030"  # main stem position 29, the last order 4
    assert "wb-100031" not in segment.flowpath_ids


def test_tributary_sharing_the_main_stems_hf_mainstem_is_left_out(
    small_index: NetworkIndex,
) -> None:
    """The tributary's confluence divide holds an NHD reach of the main stem (as real
    divides do), so it passes the hf_mainstem/hf_hydroseq test; its order (2) keeps it out.
    """
    reader = ParquetReader(SAMPLE_HYDROFABRIC / maker.PARQUET_DIR)
    origin = reader.read("network", ["hf_mainstem", "hf_hydroseq"], {"hf_id": "18786543"})
    shared = reader.read(
        "network",
        ["divide_id", "hf_hydroseq"],
        {"hf_mainstem": float(origin["hf_mainstem"][0]), "divide_id": "cat-100108"},
    )
    assert shared["divide_id"].size == 1 and shared["hf_hydroseq"][0] < origin["hf_hydroseq"][0]
    segment = small_index.extract_segment("18786543")
    assert not any(fp.startswith("wb-1001") for fp in segment.flowpath_ids)


def test_reach_ids_in_any_form(small_index: NetworkIndex) -> None:
    expected = small_index.extract_segment("3121538").flowpath_ids
    for form in (3121538, " 3121538 ", "3121538.0", np.int64(3121538)):
        assert small_index.extract_segment(form).flowpath_ids == expected
    assert "3121538" in small_index and 3121538 in small_index


@pytest.mark.parametrize(
    "reach_id", ["5781369", "", "abc", "3121538.5", 0, "-3121538", "99999999999999999999999"]
)
def test_unknown_reach_raises_reach_not_found(small_index: NetworkIndex, reach_id: object) -> None:
    with pytest.raises(ReachNotFound, match="not in the hydrofabric") as raised:
        small_index.extract_segment(reach_id)  # type: ignore[arg-type]
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, PermanentError)
    assert reach_id not in small_index


def test_extraction_is_fast_on_a_warm_index(tmp_path: Path) -> None:
    maker.generate(tmp_path, flowpaths=20_000, formats="parquet")
    reader = ParquetReader(tmp_path / "parquet")
    index = NetworkIndex.from_reader(reader, attributes_layer(reader))
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        index.extract_segment("3121538")
        timings.append(time.perf_counter() - started)
    assert np.median(timings) < 0.005


def test_small_segments_route(small_index: NetworkIndex) -> None:
    """The synthetic channels are routable: flow arrives and volume is conserved-ish."""
    segment = small_index.extract_segment("3121538")
    steps = 288
    lateral = np.zeros((steps, segment.size))
    lateral[:, 0] = np.where(np.arange(steps) < 72, 400.0, 50.0)
    result = route(segment.parameters, segment.downstream, lateral, 50.0)
    assert np.isfinite(result.flow_m3_s).all() and (result.flow_m3_s >= 0).all()
    assert result.flow_m3_s[:, -1].max() > 300.0


# ---------------------------------------------------------------- the rule on hand-made tables


def tables(order: list[int] | None = None, shuffle: int | None = None) -> dict[str, dict]:
    """A chain wb-1 -> wb-2 -> wb-3 -> wb-4 -> wb-5 (lake on wb-4), one NHD reach each
    on mainstem 7, plus wb-9 draining into wb-3 (mainstem 8)."""
    numbers = [1, 2, 3, 4, 5, 9]
    toids = ["nex-2", "nex-3", "nex-4", "nex-5", "tnx-1", "nex-3"]
    orders = order or [3, 3, 3, 3, 3, 1]
    permutation = (
        np.random.default_rng(shuffle).permutation(6) if shuffle is not None else np.arange(6)
    )

    def column(values: list, dtype: object = object) -> np.ndarray:
        array = np.empty(len(values), dtype=dtype)
        array[:] = values
        return array[permutation]

    flowpaths = {
        "id": column([f"wb-{n}" for n in numbers]),
        "toid": column(toids),
        "order": column(orders, float),
        "hydroseq": column([50, 40, 30, 20, 10, 60], np.int64),
        "lengthkm": column([1.0, 2.0, 3.0, 4.0, 5.0, 9.0], float),
        "divide_id": column([f"cat-{n}" for n in numbers]),
        "poi_id": column([None, None, None, "77", None, None]),
    }
    network = {
        "hf_id": column([101.0, 102.0, 103.0, 104.0, 105.0, 109.0], float),
        "hf_mainstem": column([7.0, 7.0, 7.0, 7.0, 7.0, 8.0], float),
        "hf_hydroseq": column([500.0, 400.0, 300.0, 200.0, 100.0, 600.0], float),
        "divide_id": column([f"cat-{n}" for n in numbers]),
    }
    nexus = {
        "id": np.array(["nex-2", "nex-3", "nex-4", "nex-5", "tnx-1"], dtype=object),
        "toid": np.array(["wb-2", "wb-3", "wb-4", "wb-5", "wb-0"], dtype=object),
    }
    attributes = {"id": column([f"wb-{n}" for n in numbers])}
    for name in ("Length_m", "BtmWdth", "n", "nCC", "ChSlp", "So"):
        attributes[name] = column([1.0] * 6, float)
    attributes["TopWdth"] = column([2.0] * 6, float)
    attributes["TopWdthCC"] = column([6.0] * 6, float)
    lakes = {"poi_id": np.array([77], dtype=np.int64)}
    return {
        "network": network,
        "flowpaths": flowpaths,
        "nexus": nexus,
        "attributes": attributes,
        "lakes": lakes,
    }


def index_of(parts: dict[str, dict], lakes: bool = True) -> NetworkIndex:
    return NetworkIndex(
        network=parts["network"],
        flowpaths=parts["flowpaths"],
        nexus=parts["nexus"],
        attributes=parts["attributes"],
        attributes_layer="test",
        lakes=parts["lakes"] if lakes else None,
    )


@pytest.mark.parametrize("shuffle", [None, 1, 2, 3])
def test_rule_does_not_depend_on_row_order(shuffle: int | None) -> None:
    index = index_of(tables(shuffle=shuffle))
    segment = index.extract_segment(102)
    assert segment.flowpath_ids == ("wb-2", "wb-3", "wb-4")  # stops at the lake on wb-4
    assert segment.lake_poi_id == 77
    np.testing.assert_allclose(segment.cumulative_length_km, [2.0, 5.0, 9.0])
    assert index_of(tables(shuffle=shuffle), lakes=False).extract_segment(102).size == 4


def test_tributary_origin_stops_at_its_mainstem() -> None:
    segment = index_of(tables()).extract_segment(109)
    assert segment.flowpath_ids == ("wb-9",)
    assert segment.stream_order == 1


def test_order_change_downstream_ends_the_segment() -> None:
    segment = index_of(tables(order=[3, 3, 4, 4, 4, 1])).extract_segment(101)
    assert segment.flowpath_ids == ("wb-1", "wb-2")


def test_missing_channel_parameters_are_a_permanent_error() -> None:
    parts = tables()
    parts["attributes"] = {name: values[:3] for name, values in parts["attributes"].items()}
    with pytest.raises(InvalidSegment, match="channel parameters from 'test'") as raised:
        index_of(parts).extract_segment(101)
    assert isinstance(raised.value, PermanentError)


def test_segment_parameters_are_kernel_ready() -> None:
    segment = index_of(tables()).extract_segment(101)
    assert isinstance(segment.parameters, ChannelParameters)
    assert segment.parameters.size == segment.size == 4
    assert segment.parameters.top_width_m.dtype == np.float32


def test_a_cycle_in_bad_data_ends_the_walk() -> None:
    parts = tables()
    parts["nexus"]["toid"][-1] = "wb-1"  # the terminal nexus drains back to the top
    segment = index_of(parts, lakes=False).extract_segment(101)
    assert segment.flowpath_ids == ("wb-1", "wb-2", "wb-3", "wb-4", "wb-5")


def test_duplicate_flowpath_ids_are_rejected() -> None:
    parts = tables()
    parts["flowpaths"]["id"][1] = parts["flowpaths"]["id"][0]
    with pytest.raises(ValueError, match="repeats the id wb-1"):
        index_of(parts)
