"""Hydrofabric readers (GeoPackage and Parquet) and the synthetic hydrofabric generator.

The readers are checked against the real HPDT2 GeoPackage (RNR_SPEC section 3) and
against each other on the committed small hydrofabric; the generator for determinism,
valid GeoPackage metadata, and scale.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from devstack import SAMPLE_HYDROFABRIC
from devstack import make_hydrofabric as maker
from rnr.hydro.segments import NetworkIndex
from rnr.hydro_io.hydrofabric import (
    GeoPackageReader,
    HydrofabricSchemaError,
    ParquetReader,
    attributes_layer,
    open_hydrofabric,
    strip_gpkg_header,
)

SMALL = SAMPLE_HYDROFABRIC


@pytest.fixture(scope="module")
def hpdt2(shared_dir: Path) -> GeoPackageReader:
    return GeoPackageReader(shared_dir / "conformance" / "hpdt2" / "HPDT2.gpkg")


@pytest.fixture(scope="module")
def small_readers() -> dict[str, GeoPackageReader | ParquetReader]:
    return {
        "gpkg": GeoPackageReader(SMALL / maker.GPKG_NAME),
        "parquet": ParquetReader(SMALL / maker.PARQUET_DIR),
    }


# ---------------------------------------------------------------- GeoPackage on HPDT2


def test_hpdt2_layers_in_gpkg_contents_order(hpdt2: GeoPackageReader) -> None:
    layers = hpdt2.layers()
    assert layers[:2] == ["flowpaths", "nexus"]
    assert layers.index("flowpath-attributes-ml") < layers.index("flowpath-attributes")
    assert {"network", "pois", "hydrolocations", "divides"} <= set(layers)
    assert hpdt2.geometry_column("flowpaths") == "geom"
    assert hpdt2.geometry_column("network") is None


def test_hpdt2_reach_filter_matches_string_or_integer(hpdt2: GeoPackageReader) -> None:
    """NWPS gives reachId as a string; the GeoPackage stores hf_id as REAL."""
    by_text = hpdt2.read(
        "network", ["divide_id", "hf_mainstem", "hf_hydroseq"], {"hf_id": "3121538"}
    )
    by_int = hpdt2.read("network", ["divide_id", "hf_mainstem", "hf_hydroseq"], {"hf_id": 3121538})
    assert by_text["divide_id"].tolist() == ["cat-2418120", "cat-2418120"]
    for name in by_text:
        np.testing.assert_array_equal(by_text[name], by_int[name])
    assert by_text["hf_mainstem"].dtype == np.float64


def test_hpdt2_dtypes(hpdt2: GeoPackageReader) -> None:
    table = hpdt2.read("flowpaths", ["id", "order", "hydroseq", "poi_id", "has_divide"])
    assert table["id"].dtype == object and isinstance(table["id"][0], str)
    assert table["order"].dtype == np.float64
    assert table["hydroseq"].dtype == np.int64
    assert table["has_divide"].dtype == bool
    assert None in table["poi_id"].tolist() and "29319" in table["poi_id"].tolist()
    assert len({len(values) for values in table.values()}) == 1


def test_hpdt2_geometry_is_wkb_of_the_flowpath(hpdt2: GeoPackageReader) -> None:
    table = hpdt2.read("flowpaths", ["geom", "lengthkm"], {"id": ["wb-2418120", "wb-2418169"]})
    lines = shapely.from_wkb(table["geom"])
    assert set(shapely.get_type_id(lines)) == {1}  # LineString
    np.testing.assert_allclose(shapely.length(lines), table["lengthkm"] * 1000.0, rtol=1e-9)


def test_list_filters_none_and_empty(hpdt2: GeoPackageReader) -> None:
    ids = hpdt2.read("flowpaths", ["id"], {"id": ["wb-2418121", "wb-2418120", "wb-9"]})["id"]
    assert sorted(ids) == ["wb-2418120", "wb-2418121"]
    without_poi = hpdt2.read("flowpaths", ["id"], {"poi_id": None})["id"]
    with_or_none = hpdt2.read("flowpaths", ["id"], {"poi_id": [None, "29319"]})["id"]
    assert len(with_or_none) == len(without_poi) + 1
    empty = hpdt2.read("flowpaths", ["id", "order", "hydroseq"], {"id": []})
    assert empty["id"].size == 0 and empty["hydroseq"].dtype == np.int64
    assert empty["order"].dtype == np.float64


def test_long_membership_list_is_split_over_queries(hpdt2: GeoPackageReader) -> None:
    wanted = [f"wb-{n}" for n in range(2_400_000, 2_450_000)]  # 50,000 values
    table = hpdt2.read("flowpaths", ["id"], {"id": wanted, "vpuid": "12"})
    assert sorted(table["id"]) == [f"wb-{n}" for n in range(2418120, 2418170)]


def test_missing_layer_or_column_names_it_and_lists_what_exists(
    hpdt2: GeoPackageReader,
) -> None:
    with pytest.raises(HydrofabricSchemaError, match=r"no layer 'lakes'.*flowpaths, nexus"):
        hpdt2.read("lakes", ["poi_id"])
    with pytest.raises(ValueError, match=r"no column 'Length_km'.*Length_m"):
        hpdt2.read("flowpath-attributes", ["id", "Length_km"])
    with pytest.raises(ValueError, match="no column 'hf_idd'"):
        hpdt2.read("network", ["id"], {"hf_idd": 1})


def test_attributes_layer_defaults_to_the_references_choice(hpdt2: GeoPackageReader) -> None:
    assert attributes_layer(hpdt2) == "flowpath-attributes-ml"
    assert attributes_layer(hpdt2, "flowpath-attributes") == "flowpath-attributes"
    assert attributes_layer(hpdt2, "custom-attributes") == "flowpath-attributes"
    with pytest.raises(HydrofabricSchemaError, match="'custom-attributes'"):
        attributes_layer(hpdt2, "custom-attributes", fallback=None)


def test_strip_gpkg_header() -> None:
    wkb = shapely.to_wkb(shapely.Point(1.0, 2.0))
    no_envelope = b"GP\x00\x01" + struct.pack("<i", 5070) + wkb
    xy_envelope = b"GP\x00\x03" + struct.pack("<i", 5070) + struct.pack("<4d", 1, 1, 2, 2) + wkb
    assert strip_gpkg_header(no_envelope) == wkb
    assert strip_gpkg_header(xy_envelope) == wkb
    with pytest.raises(ValueError, match="GP"):
        strip_gpkg_header(wkb)


def test_open_hydrofabric_picks_the_reader(tmp_path: Path) -> None:
    assert isinstance(open_hydrofabric(SMALL / maker.GPKG_NAME), GeoPackageReader)
    assert isinstance(open_hydrofabric(SMALL / maker.PARQUET_DIR), ParquetReader)
    with pytest.raises(FileNotFoundError):
        open_hydrofabric(tmp_path / "missing.gpkg")
    not_gpkg = tmp_path / "plain.sqlite"
    sqlite3.connect(not_gpkg).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ValueError, match="not a GeoPackage"):
        GeoPackageReader(not_gpkg)


# ---------------------------------------------------------------- both readers agree


@pytest.mark.parametrize(
    ("layer", "columns", "filters"),
    [
        ("flowpaths", ["id", "toid", "order", "hydroseq", "poi_id", "lengthkm"], None),
        ("network", ["id", "hf_id", "hf_mainstem", "hf_hydroseq", "hl_uri"], {"hf_id": "3121538"}),
        ("network", ["id", "hf_id", "poi_id"], {"hf_id": [1479611, 18786543.0, None]}),
        ("flowpath-attributes-ml", ["id", "BtmWdth", "So"], {"id": ["wb-100003", "wb-100015"]}),
        ("lakes", ["poi_id", "hf_id", "lake_id"], None),
        ("nexus", ["id", "toid", "type", "poi_id"], {"type": "terminal"}),
    ],
)
def test_gpkg_and_parquet_readers_return_the_same_arrays(
    small_readers: dict, layer: str, columns: list[str], filters: dict | None
) -> None:
    gpkg = small_readers["gpkg"].read(layer, columns, filters)
    parquet = small_readers["parquet"].read(layer, columns, filters)
    assert gpkg.keys() == parquet.keys()
    for name in columns:
        assert gpkg[name].dtype == parquet[name].dtype, name
        if gpkg[name].dtype == object:
            assert gpkg[name].tolist() == parquet[name].tolist(), name
        else:
            np.testing.assert_array_equal(gpkg[name], parquet[name], err_msg=name)


def test_geometry_round_trips_through_both_forms(small_readers: dict) -> None:
    gpkg = small_readers["gpkg"]
    parquet = small_readers["parquet"]
    assert gpkg.geometry_column("flowpaths") == "geom"
    assert parquet.geometry_column("flowpaths") == "geometry"
    assert parquet.geometry_column("network") is None
    from_gpkg = gpkg.read("flowpaths", ["geom", "lengthkm"])
    from_parquet = parquet.read("flowpaths", ["geometry"])
    assert from_gpkg["geom"].tolist() == from_parquet["geometry"].tolist()
    lengths = shapely.length(shapely.from_wkb(from_gpkg["geom"]))
    np.testing.assert_allclose(lengths, from_gpkg["lengthkm"] * 1000.0, rtol=1e-12)


def test_parquet_layer_may_be_a_folder_of_parts(tmp_path: Path) -> None:
    """An S3 prefix often holds a layer as several part files."""
    table = pq.read_table(SMALL / "parquet" / "network.parquet")
    folder = tmp_path / "network.parquet"
    folder.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "part-1.parquet")
    reader = ParquetReader(tmp_path)
    assert reader.layers() == ["network"]
    rows = reader.read("network", ["id", "hf_id"], {"hf_id": [3121538, 18786543]})
    assert sorted(rows["id"]) == ["wb-100003", "wb-100003", "wb-100021", "wb-100021"]
    assert reader.read("network", ["id"])["id"].size == table.num_rows


def test_parquet_missing_layer_and_bad_filter_value(small_readers: dict) -> None:
    parquet = small_readers["parquet"]
    with pytest.raises(HydrofabricSchemaError, match=r"no layer 'divides'.*flowpaths"):
        parquet.read("divides", ["divide_id"])
    with pytest.raises(ValueError, match="filter values for 'hf_id'"):
        parquet.read("network", ["id"], {"hf_id": "not-a-number"})


# ---------------------------------------------------------------- the generator


def _parquet_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.parquet"))}


def _gpkg_dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = maker.generate(tmp_path / "a")
    second = maker.generate(tmp_path / "b")
    assert first == second
    assert _parquet_bytes(tmp_path / "a" / "parquet") == _parquet_bytes(tmp_path / "b" / "parquet")
    assert _gpkg_dump(tmp_path / "a" / maker.GPKG_NAME) == _gpkg_dump(
        tmp_path / "b" / maker.GPKG_NAME
    )


def test_committed_small_hydrofabric_is_what_the_generator_writes(tmp_path: Path) -> None:
    """Regenerate with ``python -m devstack.make_hydrofabric`` when this fails.

    Values are compared to 1e-12 relative, not bit for bit: the generator's float math
    (numpy's vectorised log, exp and trigonometry) may differ in the last bit between
    CPUs, while on one machine it is exactly repeatable (the test above).
    """
    manifest = maker.generate(tmp_path)
    assert json.loads((SMALL / maker.MANIFEST_NAME).read_text()) == manifest
    for name in _parquet_bytes(SMALL / "parquet"):
        committed = pq.read_table(SMALL / "parquet" / name)
        generated = pq.read_table(tmp_path / "parquet" / name)
        assert committed.schema == generated.schema, name
        for column in committed.column_names:
            _assert_values_close(
                committed[column].to_pylist(), generated[column].to_pylist(), f"{name}:{column}"
            )
    committed_rows = _gpkg_rows(SMALL / maker.GPKG_NAME)
    generated_rows = _gpkg_rows(tmp_path / maker.GPKG_NAME)
    assert committed_rows.keys() == generated_rows.keys()
    for table, rows in committed_rows.items():
        assert len(rows) == len(generated_rows[table]), table
        for index, (left, right) in enumerate(zip(rows, generated_rows[table], strict=True)):
            _assert_values_close(list(left), list(right), f"{table} row {index}")
    size = sum(path.stat().st_size for path in SMALL.rglob("*") if path.is_file())
    assert size < 2_000_000


def _gpkg_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    connection = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            table: connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
            for table in tables
        }
    finally:
        connection.close()


def _assert_values_close(left: list[object], right: list[object], where: str) -> None:
    assert len(left) == len(right), where
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        if isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-300, nan_ok=True), (where, index)
        elif isinstance(a, bytes) and isinstance(b, bytes) and a != b:
            # Geometry: GeoPackage blobs (header, envelope) or plain WKB, compared as shapes.
            shapes = [shapely.from_wkb(_wkb(blob)) for blob in (a, b)]
            assert shapes[0].equals_exact(shapes[1], 1e-6), (where, index)
        else:
            assert a == b, (where, index)


def _wkb(blob: bytes) -> bytes:
    return strip_gpkg_header(blob) if blob[:2] == b"GP" else blob


def test_geopackage_has_valid_metadata_tables() -> None:
    connection = sqlite3.connect(SMALL / maker.GPKG_NAME)
    try:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 10300
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        srs = dict(connection.execute("SELECT srs_id, organization FROM gpkg_spatial_ref_sys"))
        assert srs == {-1: "NONE", 0: "NONE", 4326: "EPSG", 5070: "EPSG"}
        contents = connection.execute(
            "SELECT table_name, data_type, srs_id, min_x, min_y, max_x, max_y FROM gpkg_contents"
        ).fetchall()
        assert [row[0] for row in contents] == [
            "flowpaths",
            "nexus",
            "network",
            "pois",
            "hydrolocations",
            "lakes",
            "flowpath-attributes-ml",
            "flowpath-attributes",
        ]
        geometry_columns = connection.execute(
            "SELECT table_name, column_name, geometry_type_name, srs_id, z, m "
            "FROM gpkg_geometry_columns"
        ).fetchall()
        assert geometry_columns == [
            ("flowpaths", "geom", "LINESTRING", 5070, 0, 0),
            ("nexus", "geom", "POINT", 5070, 0, 0),
        ]
        for table, data_type, srs_id, *extent in contents:
            assert connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] > 0
            if data_type == "attributes":
                continue
            assert (data_type, srs_id) == ("features", 5070)
            blobs = [row[0] for row in connection.execute(f'SELECT geom FROM "{table}"')]
            assert all(blob[:3] == b"GP\x00" for blob in blobs)
            assert {struct.unpack("<i", blob[4:8])[0] for blob in blobs} == {5070}
            shapes = shapely.from_wkb([strip_gpkg_header(blob) for blob in blobs])
            bounds = shapely.total_bounds(shapes)
            np.testing.assert_allclose(extent, bounds)
    finally:
        connection.close()


def test_generator_scales_to_many_basins(tmp_path: Path) -> None:
    """20,000 flowpaths: independent trees around the same feature basin, in seconds."""
    started = time.perf_counter()
    manifest = maker.generate(tmp_path, flowpaths=20_000, formats="parquet")
    generated_s = time.perf_counter() - started
    assert manifest["flowpaths"] == 20_000 and manifest["basins"] > 10
    assert manifest["formats"] == ["parquet"]
    assert generated_s < 8.0

    reader = ParquetReader(tmp_path / "parquet")
    flowpaths = reader.read("flowpaths", ["id", "toid", "order"])
    nexus = reader.read("nexus", ["id", "toid", "type"])
    network = reader.read("network", ["hf_id"])
    assert len(set(flowpaths["id"].tolist())) == 20_000
    assert set(flowpaths["toid"].tolist()) == set(nexus["id"].tolist())
    assert (nexus["type"] == "terminal").sum() == manifest["basins"]
    hf_ids = network["hf_id"][np.isfinite(network["hf_id"])]
    assert np.unique(hf_ids).size == hf_ids.size - 4  # the replay reaches' second rows
    assert flowpaths["order"].min() >= 1 and flowpaths["order"].max() >= 4

    index = NetworkIndex.from_reader(reader, attributes_layer(reader))
    small = json.loads((SMALL / maker.MANIFEST_NAME).read_text())
    for reach_id, expected in small["reaches"].items():
        assert list(index.extract_segment(reach_id).flowpath_ids) == expected["segment"]
