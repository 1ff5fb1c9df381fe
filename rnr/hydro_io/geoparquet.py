"""GeoParquet 1.1 files from pyarrow tables whose geometry is WKT or WKB, and back.

GeoParquet (https://geoparquet.org/releases/v1.1.0/) is Parquet with each geometry
column as WKB (``BYTE_ARRAY``) and a ``geo`` key in the file's key-value metadata: a JSON
document naming the primary geometry column and giving, per geometry column, its
encoding, the geometry types present, the CRS as PROJJSON and the bounding box. QGIS
(GDAL's Parquet driver), geopandas and DuckDB's spatial extension take the CRS from
there, so the file opens in the right place without a sidecar.

The CRS is committed here as PROJJSON (:data:`EPSG_5070_PROJJSON`, exactly what
``pyproj.CRS.from_epsg(5070).to_json_dict()`` gives), so the production images need no
pyproj; ``tests/unit/test_geoparquet.py`` fails when it and pyproj's EPSG database
part. After a pyproj upgrade that changes it, replace the dict below with that call's
output (the test prints it).

Importing this module loads numpy, pyarrow and shapely only (no pyproj, no geopandas).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from shapely.errors import GEOSException

GEOPARQUET_VERSION = "1.1.0"
# The table's CRS as an authority string, for the CSV file that cannot carry PROJJSON.
CRS_NAME = "EPSG:5070"
# NAD83 / Conus Albers (EPSG:5070), metres: the hydrofabric's CRS. Do not mutate.
EPSG_5070_PROJJSON: dict[str, Any] = {
    "$schema": "https://proj.org/schemas/v0.7/projjson.schema.json",
    "type": "ProjectedCRS",
    "name": "NAD83 / Conus Albers",
    "base_crs": {
        "name": "NAD83",
        "datum": {
            "type": "GeodeticReferenceFrame",
            "name": "North American Datum 1983",
            "ellipsoid": {
                "name": "GRS 1980",
                "semi_major_axis": 6378137,
                "inverse_flattening": 298.257222101,
            },
        },
        "coordinate_system": {
            "subtype": "ellipsoidal",
            "axis": [
                {
                    "name": "Geodetic latitude",
                    "abbreviation": "Lat",
                    "direction": "north",
                    "unit": "degree",
                },
                {
                    "name": "Geodetic longitude",
                    "abbreviation": "Lon",
                    "direction": "east",
                    "unit": "degree",
                },
            ],
        },
        "id": {"authority": "EPSG", "code": 4269},
    },
    "conversion": {
        "name": "Conus Albers",
        "method": {"name": "Albers Equal Area", "id": {"authority": "EPSG", "code": 9822}},
        "parameters": [
            {
                "name": "Latitude of false origin",
                "value": 23,
                "unit": "degree",
                "id": {"authority": "EPSG", "code": 8821},
            },
            {
                "name": "Longitude of false origin",
                "value": -96,
                "unit": "degree",
                "id": {"authority": "EPSG", "code": 8822},
            },
            {
                "name": "Latitude of 1st standard parallel",
                "value": 29.5,
                "unit": "degree",
                "id": {"authority": "EPSG", "code": 8823},
            },
            {
                "name": "Latitude of 2nd standard parallel",
                "value": 45.5,
                "unit": "degree",
                "id": {"authority": "EPSG", "code": 8824},
            },
            {
                "name": "Easting at false origin",
                "value": 0,
                "unit": "metre",
                "id": {"authority": "EPSG", "code": 8826},
            },
            {
                "name": "Northing at false origin",
                "value": 0,
                "unit": "metre",
                "id": {"authority": "EPSG", "code": 8827},
            },
        ],
    },
    "coordinate_system": {
        "subtype": "Cartesian",
        "axis": [
            {"name": "Easting", "abbreviation": "X", "direction": "east", "unit": "metre"},
            {"name": "Northing", "abbreviation": "Y", "direction": "north", "unit": "metre"},
        ],
    },
    "scope": "Data analysis and small scale data presentation for contiguous lower 48 states.",
    "area": (
        "United States (USA) - CONUS onshore - Alabama; Arizona; Arkansas; California; "
        "Colorado; Connecticut; Delaware; Florida; Georgia; Idaho; Illinois; Indiana; Iowa; "
        "Kansas; Kentucky; Louisiana; Maine; Maryland; Massachusetts; Michigan; Minnesota; "
        "Mississippi; Missouri; Montana; Nebraska; Nevada; New Hampshire; New Jersey; New "
        "Mexico; New York; North Carolina; North Dakota; Ohio; Oklahoma; Oregon; "
        "Pennsylvania; Rhode Island; South Carolina; South Dakota; Tennessee; Texas; Utah; "
        "Vermont; Virginia; Washington; West Virginia; Wisconsin; Wyoming."
    ),
    "bbox": {
        "south_latitude": 24.41,
        "west_longitude": -124.79,
        "north_latitude": 49.38,
        "east_longitude": -66.91,
    },
    "id": {"authority": "EPSG", "code": 5070},
}
# The struct column written when ``bbox_covering`` is asked for (GeoParquet 1.1 "covering").
BBOX_COVERING_COLUMN = "bbox"

_GEO_KEY = b"geo"
_BBOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")
# shapely type ids -> GeoParquet geometry type names (shapely makes no others: it refuses
# curved types). A LinearRing is written to WKB as a LineString.
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}

GeometryArray = npt.NDArray[np.object_]  # shapely geometries or None, shape (rows,)


def to_geoparquet_bytes(
    table: pa.Table,
    *,
    geometry_column: str = "geometry",
    crs: dict[str, Any] = EPSG_5070_PROJJSON,
    bbox_covering: bool = False,
) -> bytes:
    """``table`` as a GeoParquet 1.1 file (zstd), its ``geometry_column`` as ISO WKB.

    ``geometry_column`` holds WKT (a string column) or WKB (a binary column); nulls stay
    null. The ``geo`` metadata gives the column's geometry types (sorted; ``" Z"`` for 3D),
    ``crs`` (PROJJSON, EPSG:5070 unless told) and, when any geometry is non-empty, its
    2D bounding box. Every other column and the table's own metadata are kept as they are.

    ``bbox_covering`` adds a struct column :data:`BBOX_COVERING_COLUMN` of each row's
    ``xmin``, ``ymin``, ``xmax``, ``ymax`` (null for null or empty geometries), declared as
    the column's covering, so readers can skip row groups by their statistics.

    Raises ``ValueError`` naming the problem: no such column, a column neither text nor
    binary, invalid or curved WKT or WKB, M coordinates (not in GeoParquet), or a
    covering column name already taken.
    """
    geometries = _parse(table, geometry_column)
    wkb = shapely.to_wkb(geometries, flavor="iso", byte_order=1)  # little-endian ISO WKB
    bounds = shapely.bounds(geometries).reshape(-1, 4)  # (rows, 4); NaN for null or empty
    known = np.isfinite(bounds).all(axis=1)

    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": _geometry_types(geometries),
        "crs": crs,
    }
    if known.any():
        low = bounds[known, :2].min(axis=0)
        high = bounds[known, 2:].max(axis=0)
        column["bbox"] = [float(low[0]), float(low[1]), float(high[0]), float(high[1])]

    index = table.schema.get_field_index(geometry_column)
    field = table.schema.field(index)
    table = table.set_column(
        index,
        pa.field(geometry_column, pa.binary(), nullable=field.nullable),
        pa.array(wkb, type=pa.binary()),
    )
    if bbox_covering:
        if BBOX_COVERING_COLUMN in table.column_names:
            raise ValueError(
                f"cannot add the bbox covering column: the table already has a column "
                f"{BBOX_COVERING_COLUMN!r}"
            )
        table = table.append_column(BBOX_COVERING_COLUMN, _covering(bounds, known))
        column["covering"] = {"bbox": {name: [BBOX_COVERING_COLUMN, name] for name in _BBOX_FIELDS}}

    geo = {
        "version": GEOPARQUET_VERSION,
        "primary_column": geometry_column,
        "columns": {geometry_column: column},
    }
    metadata = dict(table.schema.metadata or {})
    metadata[_GEO_KEY] = json.dumps(geo).encode()
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), sink, compression="zstd")
    return sink.getvalue()


def from_geoparquet_bytes(data: bytes) -> pa.Table:
    """The table of a GeoParquet file, each WKB geometry column back as WKT strings.

    WKT is written as shapely's ``geometry.wkt`` writes it (full precision), so a table
    whose WKT came from shapely comes back equal. Covering columns the ``geo`` metadata
    declares are dropped and the ``geo`` key removed: the result is the table
    :func:`to_geoparquet_bytes` was given.

    Raises ``ValueError`` naming the problem: bytes that are not Parquet, no ``geo``
    metadata or one that is not GeoParquet, a geometry column missing, not WKB-encoded
    or holding invalid WKB.
    """
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"not a Parquet file: {error}") from error
    metadata = dict(table.schema.metadata or {})
    if _GEO_KEY not in metadata:
        raise ValueError("not a GeoParquet file: its Parquet metadata has no 'geo' key")
    columns = _geometry_columns(metadata.pop(_GEO_KEY))

    covering: set[str] = set()
    for name, column in columns.items():
        if name not in table.column_names:
            raise ValueError(
                f"GeoParquet 'geo' metadata names geometry column {name!r}, "
                "which the file does not have"
            )
        encoding = column.get("encoding")
        if encoding != "WKB":
            raise ValueError(
                f"geometry column {name!r} is encoded as {encoding!r}; only WKB is read"
            )
        index = table.schema.get_field_index(name)
        field = table.schema.field(index)
        if not (pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)):
            raise ValueError(f"geometry column {name!r} is {field.type}, not binary WKB")
        try:
            geometries = shapely.from_wkb(table.column(name).to_numpy(zero_copy_only=False))
        except (GEOSException, NotImplementedError) as error:
            raise ValueError(f"geometry column {name!r} holds invalid WKB: {error}") from error
        wkt = shapely.to_wkt(geometries, rounding_precision=-1)
        table = table.set_column(
            index,
            pa.field(name, pa.string(), nullable=field.nullable),
            pa.array(wkt, type=pa.string()),
        )
        bbox = (column.get("covering") or {}).get("bbox") or {}
        covering.update(path[0] for path in bbox.values() if isinstance(path, list) and path)

    table = table.drop_columns([name for name in covering if name in table.column_names])
    return table.replace_schema_metadata(metadata or None)


def _parse(table: pa.Table, name: str) -> GeometryArray:
    """The geometries of column ``name`` (WKT or WKB), None where null."""
    if name not in table.column_names:
        raise ValueError(
            f"no geometry column {name!r}; columns: {', '.join(table.column_names) or '(none)'}"
        )
    kind = table.schema.field(name).type
    values = table.column(name).to_numpy(zero_copy_only=False)
    if pa.types.is_null(kind):
        geometries = np.full(len(values), None, dtype=object)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        geometries = _decode(shapely.from_wkt, values, name, "WKT")
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        geometries = _decode(shapely.from_wkb, values, name, "WKB")
    else:
        raise ValueError(f"geometry column {name!r} is {kind}: expected WKT text or WKB binary")
    if shapely.has_m(geometries).any():
        raise ValueError(f"geometry column {name!r} has M coordinates, which GeoParquet lacks")
    return geometries


def _decode(
    parse: Callable[[npt.NDArray[Any]], GeometryArray],
    values: npt.NDArray[Any],
    name: str,
    form: str,
) -> GeometryArray:
    try:
        return parse(np.asarray(values, dtype=object))
    except (GEOSException, NotImplementedError) as error:  # the latter: curved geometry
        raise ValueError(f"geometry column {name!r} holds invalid {form}: {error}") from error


def _geometry_types(geometries: GeometryArray) -> list[str]:
    """Sorted GeoParquet type names of the non-null geometries (``"LineString Z"`` for 3D)."""
    type_ids = shapely.get_type_id(geometries)
    present = type_ids >= 0
    has_z = shapely.has_z(geometries)
    names = {
        _TYPE_NAMES[type_id] + (" Z" if z else "")
        for type_id, z in zip(type_ids[present].tolist(), has_z[present].tolist(), strict=True)
    }
    return sorted(names)


def _covering(bounds: npt.NDArray[np.float64], known: npt.NDArray[np.bool_]) -> pa.StructArray:
    """Per-row bounding boxes; ``bounds`` has shape (rows, 4), ``known`` shape (rows,)."""
    return pa.StructArray.from_arrays(
        [pa.array(bounds[:, i], type=pa.float64()) for i in range(4)],
        names=list(_BBOX_FIELDS),
        mask=pa.array(~known, type=pa.bool_()),
    )


def _geometry_columns(document: bytes) -> dict[str, dict[str, Any]]:
    """The ``columns`` of a ``geo`` metadata document, checked to be a non-empty object."""
    try:
        geo = json.loads(document)
    except ValueError as error:
        raise ValueError(
            f"not a GeoParquet file: its 'geo' metadata is not JSON: {error}"
        ) from error
    columns = geo.get("columns") if isinstance(geo, dict) else None
    if not isinstance(columns, dict) or not columns:
        raise ValueError("not a GeoParquet file: its 'geo' metadata names no geometry columns")
    if not all(isinstance(column, dict) for column in columns.values()):
        raise ValueError("not a GeoParquet file: a 'geo' column entry is not an object")
    return columns
