"""The inherited-forecast table as files, and the post-processor's state beside it.

* The **table** (what flood maps read) is GeoParquet 1.1: WKB geometry with its CRS,
  EPSG:5070 (NAD83 / Conus Albers, metres), as PROJJSON in the ``geo`` metadata, so
  QGIS, geopandas and DuckDB place it without being told; and CSV, geometry as WKT,
  whose ``geometry_crs`` column names the CRS on every row. The columns of RNR_SPEC
  section 6 come first, in its order; after them what the overlap rule adds
  (``influencing_lids``, ``peak_at_horizon``) and the governing forecast's details.
* The **contributions** (state) hold every gauge's forecast at every segment, one
  Parquet file the next run starts from: the table is derived from them, and cannot
  be turned back into them once gauges overlap.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from rnr.hydro.inherited import Contribution, InheritedRow
from rnr.hydro_io.geoparquet import CRS_NAME, to_geoparquet_bytes

_TIME = pa.timestamp("s", tz="UTC")

TABLE_SCHEMA = pa.schema(
    [
        ("feature_id", pa.int64()),
        ("feature_id_str", pa.string()),
        ("strm_order", pa.int32()),
        ("name", pa.string()),
        ("state", pa.string()),
        ("streamflow_cfs", pa.float64()),
        ("max_status", pa.string()),
        ("reference_time", _TIME),
        ("update_time", _TIME),
        ("inherited_rfc_forecasts", pa.string()),
        ("geometry", pa.string()),  # WKT here; WKB in the GeoParquet file
        ("influencing_lids", pa.string()),
        ("peak_at_horizon", pa.bool_()),
        ("peak_time", _TIME),
        ("issuance_time", _TIME),
        ("rfc_location", pa.string()),
        ("rfc_reach_id", pa.string()),
        ("miles_downstream", pa.float64()),
        ("product_id", pa.string()),
    ]
)
SPEC_COLUMNS = TABLE_SCHEMA.names[: TABLE_SCHEMA.get_field_index("geometry") + 1]

CONTRIBUTION_SCHEMA = pa.schema(
    [
        ("feature_id", pa.int64()),
        ("strm_order", pa.int32()),
        ("name", pa.string()),
        ("state", pa.string()),
        ("streamflow_cfs", pa.float64()),
        ("peak_time", _TIME),
        ("peak_at_horizon", pa.bool_()),
        ("max_status", pa.string()),
        ("reference_time", _TIME),
        ("issuance_time", _TIME),
        ("update_time", _TIME),
        ("rfc_location", pa.string()),
        ("rfc_reach_id", pa.string()),
        ("miles_downstream", pa.float64()),
        ("geometry_wkt", pa.string()),
        ("product_id", pa.string()),
    ]
)
_CONTRIBUTION_FIELDS = CONTRIBUTION_SCHEMA.names


def rows_to_table(rows: list[InheritedRow]) -> pa.Table:
    """The published table (geometry still WKT: :func:`to_table_files` encodes it)."""
    columns: dict[str, list[object]] = {name: [] for name in TABLE_SCHEMA.names}
    for row in rows:
        governing = row.governing
        values = {
            "feature_id": row.feature_id,
            "feature_id_str": row.feature_id_str,
            "strm_order": governing.strm_order,
            "name": governing.name,
            "state": governing.state,
            "streamflow_cfs": governing.streamflow_cfs,
            "inherited_rfc_forecasts": row.inherited_rfc_forecasts,
            "max_status": row.max_status,
            "reference_time": governing.reference_time,
            "update_time": row.update_time,
            "geometry": governing.geometry_wkt,
            "influencing_lids": row.influencing_lids,
            "peak_at_horizon": governing.peak_at_horizon,
            "peak_time": governing.peak_time,
            "issuance_time": governing.issuance_time,
            "rfc_location": governing.rfc_location,
            "rfc_reach_id": governing.rfc_reach_id,
            "miles_downstream": governing.miles_downstream,
            "product_id": governing.product_id,
        }
        for name, value in values.items():
            columns[name].append(value)
    return pa.table(columns, schema=TABLE_SCHEMA)


def to_table_files(table: pa.Table) -> dict[str, bytes]:
    """The table's files by extension: ``parquet`` (GeoParquet) and ``csv``."""
    return {"parquet": to_geoparquet_bytes(table), "csv": to_csv_bytes(table)}


def contributions_to_bytes(contributions: list[Contribution]) -> bytes:
    columns: dict[str, list[object]] = {name: [] for name in _CONTRIBUTION_FIELDS}
    for contribution in contributions:
        for name in _CONTRIBUTION_FIELDS:
            columns[name].append(getattr(contribution, name))
    sink = io.BytesIO()
    pq.write_table(pa.table(columns, schema=CONTRIBUTION_SCHEMA), sink, compression="zstd")
    return sink.getvalue()


def contributions_from_bytes(data: bytes) -> list[Contribution]:
    """Contributions this module wrote. Raises ``ValueError`` naming what is wrong."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"not a Parquet file: {error}") from error
    missing = [name for name in _CONTRIBUTION_FIELDS if name not in table.column_names]
    if missing:
        raise ValueError(f"not a contributions file: no column {', '.join(missing)}")
    table = table.select(_CONTRIBUTION_FIELDS).cast(CONTRIBUTION_SCHEMA)
    return [Contribution(**record) for record in table.to_pylist()]


def to_csv_bytes(table: pa.Table) -> bytes:
    """CSV with a header; times as ISO 8601 UTC (``2025-05-05T21:00:00Z``), geometry
    as WKT and, last, ``geometry_crs`` naming its coordinate system."""
    for name in [field.name for field in table.schema if field.type == _TIME]:
        index = table.schema.get_field_index(name)
        text = pc.strftime(table.column(name), format="%Y-%m-%dT%H:%M:%SZ")
        table = table.set_column(index, name, text)
    table = table.append_column("geometry_crs", pa.array([CRS_NAME] * table.num_rows, pa.string()))
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()
