"""GeoParquet 1.1 files (rnr.hydro_io.geoparquet): what geopandas and GDAL see in them.

The metadata is checked against the GeoParquet 1.1 rules (version, primary column,
WKB encoding, geometry types, PROJJSON CRS, bbox, covering), the files are opened with
geopandas (and with GDAL through pyogrio where its build has the Parquet driver), the
committed PROJJSON is compared with pyproj's EPSG database, and HPDT2's segments, from
the sample hydrofabric and from the real conformance GeoPackage, land in the Brazos
River basin once reprojected to longitude/latitude.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pyproj
import pytest
import shapely

from devstack import SAMPLE_HYDROFABRIC
from devstack import make_hydrofabric as maker
from devstack.replay.make_fixtures import DEFAULT_FIXTURES_DIR
from rnr.hydro_io.geoparquet import (
    BBOX_COVERING_COLUMN,
    CRS_NAME,
    EPSG_5070_PROJJSON,
    from_geoparquet_bytes,
    to_geoparquet_bytes,
)
from rnr.hydro_io.hydrofabric import GeoPackageReader, ParquetReader

REPO_ROOT = Path(__file__).resolve().parents[2]

# The lower Brazos River basin in Texas, from above Waco (31.5 N) down to the river's
# mouth on the Gulf near Freeport (about 28.88 N, 95.38 W), between the Colorado's
# basin to the west and the San Jacinto's to the east. HPDT2, the Brazos near
# Hempstead, is at about 30.13 N, 96.19 W, and the reach routed from it runs to the Gulf.
BRAZOS_LON = (-98.5, -95.0)
BRAZOS_LAT = (28.8, 31.5)

# GeoParquet 1.1 geometry type names: the six simple-feature types and collections,
# optionally 3D.
_GEOMETRY_TYPE = re.compile(r"^(GeometryCollection|(Multi)?(Point|LineString|Polygon))( Z)?$")

# Three flowpath-like lines in EPSG:5070 metres near Hempstead, one of them a
# MultiLineString, as shapely writes WKT (full precision): what the post-processor holds.
LINES = [
    shapely.LineString([(-18476.457, 784472.671), (-18480.9, 782300.25), (-17100.0, 781000.5)]),
    shapely.LineString([(-17100.0, 781000.5), (-15000.125, 779000.0)]),
    shapely.MultiLineString(
        [
            [(-15000.125, 779000.0), (-14000.0, 778500.0)],
            [(-14000.0, 778500.0), (-12000.0, 777000.0)],
        ]
    ),
]
WKT = [line.wkt for line in LINES]


def _table(geometry: list[Any], geometry_type: pa.DataType | None = None) -> pa.Table:
    return pa.table(
        {
            "feature_id": pa.array(range(2418120, 2418120 + len(geometry)), type=pa.int64()),
            "name": pa.array([f"wb-{n}" for n in range(len(geometry))], type=pa.string()),
            "geometry": pa.array(geometry, type=geometry_type or pa.string()),
        }
    )


def _geo(data: bytes) -> dict[str, Any]:
    return json.loads(pq.read_schema(io.BytesIO(data)).metadata[b"geo"])


def _assert_geoparquet_1_1(data: bytes) -> dict[str, Any]:
    """The file's ``geo`` metadata, after checking it and the geometry columns against the
    GeoParquet 1.1 requirements (the fields a reader relies on)."""
    parquet = pq.ParquetFile(io.BytesIO(data))
    arrow_schema = parquet.schema_arrow
    geo = json.loads(arrow_schema.metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    columns = geo["columns"]
    assert isinstance(columns, dict) and columns
    assert isinstance(geo["primary_column"], str) and geo["primary_column"] in columns
    for name, column in columns.items():
        # A geometry column: at the root, BYTE_ARRAY, not repeated, WKB.
        assert name in arrow_schema.names
        assert arrow_schema.field(name).type == pa.binary()
        physical = parquet.schema.column(parquet.schema.names.index(name))
        assert physical.physical_type == "BYTE_ARRAY"
        assert physical.max_repetition_level == 0
        assert column["encoding"] == "WKB"
        types = column["geometry_types"]
        assert isinstance(types, list) and len(set(types)) == len(types)
        assert all(_GEOMETRY_TYPE.match(kind) for kind in types), types
        assert column.get("crs") is None or isinstance(column["crs"], dict)
        assert column.get("edges", "planar") in {"planar", "spherical"}
        assert column.get("orientation", "counterclockwise") == "counterclockwise"
        if "bbox" in column:
            bbox = column["bbox"]
            assert len(bbox) in {4, 6} and all(isinstance(v, int | float) for v in bbox)
            half = len(bbox) // 2
            assert all(low <= high for low, high in zip(bbox[:half], bbox[half:], strict=True))
        if "covering" in column:
            for field_name, (covering_column, field) in column["covering"]["bbox"].items():
                assert field == field_name and field in {"xmin", "ymin", "xmax", "ymax"}
                struct = arrow_schema.field(covering_column).type
                assert pa.types.is_struct(struct)
                assert pa.types.is_floating(struct.field(field).type)
    return geo


def _lon_lat_bounds(frame: geopandas.GeoDataFrame) -> np.ndarray:
    return frame.to_crs(4326).total_bounds  # (min lon, min lat, max lon, max lat)


def _assert_in_brazos_basin(frame: geopandas.GeoDataFrame) -> None:
    lon_min, lat_min, lon_max, lat_max = _lon_lat_bounds(frame)
    assert BRAZOS_LON[0] <= lon_min <= lon_max <= BRAZOS_LON[1], (lon_min, lon_max)
    assert BRAZOS_LAT[0] <= lat_min <= lat_max <= BRAZOS_LAT[1], (lat_min, lat_max)


def _same_geometries(read: geopandas.GeoSeries, expected: list[Any]) -> bool:
    ours = np.asarray(read.array, dtype=object)
    return bool(shapely.equals_exact(ours, np.asarray(expected, dtype=object), 0.0).all())


# ---------------------------------------------------------------- the committed CRS


def test_committed_projjson_is_pyprojs_epsg_5070() -> None:
    """Exactly pyproj's PROJJSON: if this alone fails after a pyproj upgrade, paste the
    printed document into rnr/hydro_io/geoparquet.py."""
    current = pyproj.CRS.from_epsg(5070).to_json_dict()
    assert current == EPSG_5070_PROJJSON, json.dumps(current, indent=2)


def test_committed_projjson_is_epsg_5070_and_crs_name_says_so() -> None:
    crs = pyproj.CRS.from_json_dict(EPSG_5070_PROJJSON)
    assert crs == pyproj.CRS.from_epsg(5070)
    assert crs.to_authority() == ("EPSG", "5070")
    assert crs.axis_info[0].unit_name == "metre"
    assert pyproj.CRS.from_user_input(CRS_NAME) == crs


def test_import_needs_neither_pyproj_nor_geopandas() -> None:
    """The production images have no pyproj or geopandas."""
    code = (
        "import sys, rnr.hydro_io.geoparquet; "
        "heavy = sorted({'pyproj', 'geopandas', 'pyogrio'} & set(sys.modules)); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=120)


# ---------------------------------------------------------------- the file


def test_metadata_follows_geoparquet_1_1() -> None:
    data = to_geoparquet_bytes(_table(WKT))
    geo = _assert_geoparquet_1_1(data)
    assert geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column["geometry_types"] == ["LineString", "MultiLineString"]
    assert column["crs"] == EPSG_5070_PROJJSON
    assert column["bbox"] == [-18480.9, 777000.0, -12000.0, 784472.671]
    assert "covering" not in column


def test_geometry_is_little_endian_iso_wkb_and_other_columns_are_kept() -> None:
    table = _table(WKT).replace_schema_metadata({b"origin": b"test"})
    read = pq.read_table(io.BytesIO(to_geoparquet_bytes(table)))
    assert read.schema.metadata[b"origin"] == b"test"
    assert read.column_names == table.column_names
    assert read.select(["feature_id", "name"]).equals(table.select(["feature_id", "name"]))
    wkb = read.column("geometry").to_pylist()
    assert all(value[0] == 1 for value in wkb)  # byte order: little-endian
    assert shapely.from_wkb(wkb).tolist() == LINES
    three_d = to_geoparquet_bytes(_table(["LINESTRING Z (0 0 1, 1 1 2)"]))
    (value,) = pq.read_table(io.BytesIO(three_d)).column("geometry").to_pylist()
    assert int.from_bytes(value[1:5], "little") == 1002  # ISO WKB LineString Z
    assert _geo(three_d)["columns"]["geometry"]["geometry_types"] == ["LineString Z"]


def test_geopandas_reads_the_crs_and_the_geometries() -> None:
    frame = geopandas.read_parquet(io.BytesIO(to_geoparquet_bytes(_table(WKT))))
    assert frame.crs.to_epsg() == 5070
    assert frame.geometry.name == "geometry"
    assert _same_geometries(frame.geometry, LINES)
    assert frame["feature_id"].tolist() == [2418120, 2418121, 2418122]


def test_gdal_reads_the_crs_and_the_geometries(tmp_path: Path) -> None:
    """GDAL's Parquet driver, which QGIS uses. The PyPI wheels of pyogrio bundle a GDAL
    built without it; a GDAL built with Arrow (conda-forge, QGIS) runs this."""
    if "Parquet" not in pyogrio.list_drivers():
        pytest.skip(
            f"pyogrio's GDAL {pyogrio.__gdal_version_string__} has no Parquet driver "
            "(the PyPI wheels are built without Arrow)"
        )
    path = tmp_path / "inherited_rfc_forecasts.parquet"
    path.write_bytes(to_geoparquet_bytes(_table(WKT)))
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_epsg() == 5070
    assert _same_geometries(frame.geometry, LINES)


def test_wkt_comes_back_as_it_went_in() -> None:
    table = _table(WKT)
    back = from_geoparquet_bytes(to_geoparquet_bytes(table))
    assert back.schema == table.schema
    assert back.schema.metadata is None
    assert back.equals(table)


def test_wkb_input_makes_the_same_file_as_wkt() -> None:
    wkb = [line.wkb for line in LINES]
    from_wkb = to_geoparquet_bytes(_table(wkb, pa.binary()))
    assert _geo(from_wkb) == _geo(to_geoparquet_bytes(_table(WKT)))
    assert from_geoparquet_bytes(from_wkb).equals(_table(WKT))


def test_null_and_empty_geometries() -> None:
    table = _table([WKT[0], None, "LINESTRING EMPTY"])
    data = to_geoparquet_bytes(table)
    column = _assert_geoparquet_1_1(data)["columns"]["geometry"]
    assert column["geometry_types"] == ["LineString"]
    assert column["bbox"] == list(LINES[0].bounds)
    assert from_geoparquet_bytes(data).equals(table)
    frame = geopandas.read_parquet(io.BytesIO(data))
    assert frame.geometry[1] is None
    assert frame.geometry[2].is_empty


def test_empty_table_is_a_valid_file() -> None:
    table = _table([])
    data = to_geoparquet_bytes(table)
    column = _assert_geoparquet_1_1(data)["columns"]["geometry"]
    assert column["geometry_types"] == []
    assert "bbox" not in column
    frame = geopandas.read_parquet(io.BytesIO(data))
    assert len(frame) == 0 and frame.crs.to_epsg() == 5070
    back = from_geoparquet_bytes(data)
    assert back.num_rows == 0 and back.schema == table.schema


def test_all_null_column_without_a_type() -> None:
    table = pa.table({"feature_id": [1, 2], "geometry": pa.nulls(2)})
    data = to_geoparquet_bytes(table)
    column = _assert_geoparquet_1_1(data)["columns"]["geometry"]
    assert column["geometry_types"] == [] and "bbox" not in column
    assert from_geoparquet_bytes(data).column("geometry").to_pylist() == [None, None]


def test_another_geometry_column_name_and_crs() -> None:
    wgs84 = pyproj.CRS.from_epsg(4326).to_json_dict()
    table = _table(["POINT (-96.19 30.13)"]).rename_columns(["feature_id", "name", "shape"])
    data = to_geoparquet_bytes(table, geometry_column="shape", crs=wgs84)
    geo = _assert_geoparquet_1_1(data)
    assert geo["primary_column"] == "shape"
    assert geo["columns"]["shape"]["geometry_types"] == ["Point"]
    assert geopandas.read_parquet(io.BytesIO(data)).crs.to_epsg() == 4326
    assert from_geoparquet_bytes(data).equals(table)


def test_bbox_covering_lets_readers_filter_and_is_dropped_on_read() -> None:
    table = _table(WKT)
    data = to_geoparquet_bytes(table, bbox_covering=True)
    column = _assert_geoparquet_1_1(data)["columns"]["geometry"]
    fields = ("xmin", "ymin", "xmax", "ymax")
    assert column["covering"] == {"bbox": {name: [BBOX_COVERING_COLUMN, name] for name in fields}}
    boxes = pq.read_table(io.BytesIO(data)).column(BBOX_COVERING_COLUMN).to_pylist()
    assert boxes == [dict(zip(fields, line.bounds, strict=True)) for line in LINES]
    # geopandas filters on the covering column: a box around the first line's start.
    near_start = geopandas.read_parquet(
        io.BytesIO(data), bbox=(-18500.0, 783000.0, -18400.0, 785000.0)
    )
    assert near_start["feature_id"].tolist() == [2418120]
    assert from_geoparquet_bytes(data).equals(table)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("table", "keywords", "message"),
    [
        (_table(WKT), {"geometry_column": "geom"}, "no geometry column 'geom'"),
        (pa.table({"geometry": [1, 2]}), {}, "expected WKT text or WKB binary"),
        (_table(["LINESTRING (0 0, 1"]), {}, "invalid WKT"),
        (_table([b"\x01\x02"], pa.binary()), {}, "invalid WKB"),
        (_table(["LINESTRING M (0 0 1, 1 1 2)"]), {}, "M coordinates"),
        (_table(["CIRCULARSTRING (0 0, 1 1, 2 0)"]), {}, "invalid WKT: Nonlinear"),
        (
            _table(WKT).append_column(BBOX_COVERING_COLUMN, pa.array([1, 2, 3])),
            {"bbox_covering": True},
            "already has a column 'bbox'",
        ),
    ],
)
def test_writer_rejects(table: pa.Table, keywords: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        to_geoparquet_bytes(table, **keywords)


def _parquet(table: pa.Table, geo: object = None) -> bytes:
    if geo is not None:
        geo_bytes = geo if isinstance(geo, bytes) else json.dumps(geo).encode()
        table = table.replace_schema_metadata({b"geo": geo_bytes})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


_WKB_TABLE = _table([line.wkb for line in LINES], pa.binary())
_GEO = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"feature_id,geometry\n1,POINT (0 0)\n", "not a Parquet file"),
        (b"", "not a Parquet file"),
        (_parquet(_table(WKT)), "no 'geo' key"),
        (_parquet(_WKB_TABLE, b"{not json"), "'geo' metadata is not JSON"),
        (_parquet(_WKB_TABLE, {"version": "1.1.0", "columns": {}}), "names no geometry columns"),
        (
            _parquet(_WKB_TABLE, {**_GEO, "columns": {"geom": {"encoding": "WKB"}}}),
            "names geometry column 'geom', which the file does not have",
        ),
        (
            _parquet(_WKB_TABLE, {**_GEO, "columns": {"geometry": {"encoding": "linestring"}}}),
            "encoded as 'linestring'; only WKB is read",
        ),
        (
            _parquet(_table(WKT), {**_GEO, "columns": {"geometry": {"encoding": "WKB"}}}),
            "is string, not binary WKB",
        ),
        (
            _parquet(
                _table([b"\x01\x02"], pa.binary()),
                {**_GEO, "columns": {"geometry": {"encoding": "WKB"}}},
            ),
            "invalid WKB",
        ),
    ],
)
def test_reader_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        from_geoparquet_bytes(data)


# ---------------------------------------------------------------- HPDT2 on the map


def _wkt_table(ids: np.ndarray, wkb: np.ndarray) -> pa.Table:
    """What the post-processor holds: ids and WKT (via rnr.hydro_io.flowpaths' ``.wkt``)."""
    wkt = [geometry.wkt for geometry in shapely.from_wkb(wkb)]
    return pa.table({"feature_id_str": pa.array(ids.tolist()), "geometry": pa.array(wkt)})


def test_sample_hpdt2_segments_lie_in_the_brazos_basin() -> None:
    """The committed sample is synthetic, but its reach 3121538 (HPDT2) is placed in
    EPSG:5070 on the lower Brazos; written by us, it must land there in any GIS."""
    manifest = json.loads((SAMPLE_HYDROFABRIC / "manifest.json").read_text())
    assert manifest["srs"] == "EPSG:5070"
    reach = manifest["reaches"]["3121538"]
    assert reach["lid"] == "HPDT2"
    folder = SAMPLE_HYDROFABRIC / maker.PARQUET_DIR
    # The sample says EPSG:5070 in its own GeoParquet metadata too.
    sample_geo = json.loads(pq.read_schema(folder / "flowpaths.parquet").metadata[b"geo"])
    sample_crs = pyproj.CRS.from_json_dict(sample_geo["columns"]["geometry"]["crs"])
    assert sample_crs == pyproj.CRS.from_json_dict(EPSG_5070_PROJJSON)

    flowpaths = ParquetReader(folder).read(
        "flowpaths", ["id", "geometry"], {"id": reach["segment"]}
    )
    assert sorted(flowpaths["id"].tolist()) == sorted(reach["segment"])
    table = _wkt_table(flowpaths["id"], flowpaths["geometry"])
    frame = geopandas.read_parquet(io.BytesIO(to_geoparquet_bytes(table)))
    assert frame.crs.to_epsg() == 5070
    assert _same_geometries(frame.geometry, shapely.from_wkb(flowpaths["geometry"]).tolist())
    _assert_in_brazos_basin(frame)


def test_conformance_hpdt2_flowpaths_lie_on_the_brazos_below_the_gauge(shared_dir: Path) -> None:
    """The real hydrofabric subset of the HPDT2 case: GDAL reads its GeoPackage, we write
    its flowpaths as GeoParquet, geopandas reads them back with the same CRS, and they run
    from the Hempstead gauge down the Brazos."""
    gpkg = shared_dir / "conformance" / "hpdt2" / "HPDT2.gpkg"
    flowpaths = GeoPackageReader(gpkg).read("flowpaths", ["id", "geom"])
    frame = geopandas.read_parquet(
        io.BytesIO(to_geoparquet_bytes(_wkt_table(flowpaths["id"], flowpaths["geom"])))
    )
    assert frame.crs.to_epsg() == 5070
    assert len(frame) == 50

    by_gdal = pyogrio.read_dataframe(gpkg, layer="flowpaths", columns=["id"])
    assert by_gdal.crs == frame.crs
    ours = frame.set_index("feature_id_str").geometry
    theirs = by_gdal.set_index("id").geometry.loc[ours.index]
    assert _same_geometries(theirs, list(ours.array))
    _assert_in_brazos_basin(frame)

    # The gauge's own flowpath starts at the gauge NWPS places (the replay's fixture).
    gauges = json.loads((DEFAULT_FIXTURES_DIR / "gauges.json").read_text())
    hpdt2 = gauges["HPDT2"]
    assert hpdt2["reachId"] == "3121538"
    gauge = geopandas.GeoSeries.from_xy([hpdt2["longitude"]], [hpdt2["latitude"]], crs=4326)
    distance_m = gauge.to_crs(5070).distance(ours.loc["wb-2418120"]).iloc[0]
    assert distance_m < 2_000.0, distance_m
