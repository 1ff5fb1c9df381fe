"""The inherited-forecast table as files: Parquet (typed) and CSV (geometry as WKT).

The columns of RNR_SPEC section 6 come first, in its order; after them the columns the
post-processor needs to merge the next run's forecasts into this table (peak time,
issuance, gauge, distance, product), so the published Parquet file is also the state
it starts from. Readers that know only the specified columns select those.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from rnr.hydro.inherited import InheritedRow

_TIME = pa.timestamp("s", tz="UTC")

SCHEMA = pa.schema(
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
        ("geometry", pa.string()),
        ("peak_time", _TIME),
        ("issuance_time", _TIME),
        ("rfc_location", pa.string()),
        ("rfc_reach_id", pa.string()),
        ("miles_downstream", pa.float64()),
        ("product_id", pa.string()),
    ]
)
SPEC_COLUMNS = SCHEMA.names[: SCHEMA.get_field_index("geometry") + 1]
_TIME_COLUMNS = [field.name for field in SCHEMA if field.type == _TIME]


def rows_to_table(rows: list[InheritedRow]) -> pa.Table:
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    for row in rows:
        columns["feature_id"].append(row.feature_id)
        columns["feature_id_str"].append(row.feature_id_str)
        columns["strm_order"].append(row.strm_order)
        columns["name"].append(row.name)
        columns["state"].append(row.state)
        columns["streamflow_cfs"].append(row.streamflow_cfs)
        columns["max_status"].append(row.max_status)
        columns["reference_time"].append(row.reference_time)
        columns["update_time"].append(row.update_time)
        columns["inherited_rfc_forecasts"].append(row.inherited_rfc_forecasts)
        columns["geometry"].append(row.geometry_wkt)
        columns["peak_time"].append(row.peak_time)
        columns["issuance_time"].append(row.issuance_time)
        columns["rfc_location"].append(row.rfc_location)
        columns["rfc_reach_id"].append(row.rfc_reach_id)
        columns["miles_downstream"].append(row.miles_downstream)
        columns["product_id"].append(row.product_id)
    return pa.table(columns, schema=SCHEMA)


def table_to_rows(table: pa.Table) -> list[InheritedRow]:
    """Rows of a table this module wrote. Raises ``ValueError`` naming a missing column."""
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"not an inherited-forecast table: no column {', '.join(missing)}")
    table = table.select(SCHEMA.names).cast(SCHEMA)
    return [
        InheritedRow(
            feature_id=record["feature_id"],
            strm_order=record["strm_order"],
            name=record["name"],
            state=record["state"],
            streamflow_cfs=record["streamflow_cfs"],
            peak_time=record["peak_time"],
            max_status=record["max_status"],
            reference_time=record["reference_time"],
            issuance_time=record["issuance_time"],
            update_time=record["update_time"],
            rfc_location=record["rfc_location"],
            rfc_reach_id=record["rfc_reach_id"],
            miles_downstream=record["miles_downstream"],
            geometry_wkt=record["geometry"],
            product_id=record["product_id"],
        )
        for record in table.to_pylist()
    ]


def to_parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def from_parquet_bytes(data: bytes) -> pa.Table:
    """Raises ``ValueError`` when the bytes are not Parquet."""
    try:
        return pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"not a Parquet file: {error}") from error


def to_csv_bytes(table: pa.Table) -> bytes:
    """CSV with a header; times as ISO 8601 UTC (``2025-05-05T21:00:00Z``)."""
    for name in _TIME_COLUMNS:
        index = table.schema.get_field_index(name)
        text = pc.strftime(table.column(name), format="%Y-%m-%dT%H:%M:%SZ")
        table = table.set_column(index, name, text)
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()
