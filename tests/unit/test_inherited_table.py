"""The table files: Parquet round trip, CSV columns and formats, flowpath lookup."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from devstack import SAMPLE_HYDROFABRIC
from rnr.hydro.inherited import Contribution, segment_rows
from rnr.hydro_io.flowpaths import (
    LOOKUP_ROW_GROUP_ROWS,
    build_flowpath_lookup,
    read_flowpaths,
)
from rnr.hydro_io.hydrofabric import ParquetReader, open_hydrofabric
from rnr.hydro_io.inherited_table import (
    SPEC_COLUMNS,
    TABLE_SCHEMA,
    contributions_from_bytes,
    contributions_to_bytes,
    rows_to_table,
    to_csv_bytes,
    to_table_files,
)
from tests.support.forecasts import sample_segment

UTC = dt.UTC
T0 = dt.datetime(2025, 5, 5, 21, tzinfo=UTC)


def contributions() -> list[Contribution]:
    return [
        Contribution(
            feature_id=100 + i,
            strm_order=4,
            name='Brazos River, "near" Hempstead',
            state="TX",
            streamflow_cfs=1234.5 + i,
            peak_time=T0 + dt.timedelta(hours=2 + i),
            peak_at_horizon=i == 2,
            max_status="major",
            reference_time=T0,
            issuance_time=T0 - dt.timedelta(minutes=29),
            update_time=T0 + dt.timedelta(hours=1),
            rfc_location="HPDT2",
            rfc_reach_id="3121538",
            miles_downstream=1.5 * i,
            geometry_wkt=f"LINESTRING ({i} 0, {i + 1} 1)",
            product_id="p-1",
        )
        for i in range(3)
    ]


def test_spec_columns_come_first_in_the_specified_order() -> None:
    assert SPEC_COLUMNS == [
        "feature_id",
        "feature_id_str",
        "strm_order",
        "name",
        "state",
        "streamflow_cfs",
        "max_status",
        "reference_time",
        "update_time",
        "inherited_rfc_forecasts",
        "geometry",
    ]
    assert TABLE_SCHEMA.names[: len(SPEC_COLUMNS)] == SPEC_COLUMNS
    assert {"influencing_lids", "peak_at_horizon"} <= set(TABLE_SCHEMA.names)


def test_the_contributions_round_trip() -> None:
    original = contributions()
    data = contributions_to_bytes(original)
    assert contributions_from_bytes(data) == original
    assert pq.read_table(io.BytesIO(data)).schema.field("reference_time").type.tz == "UTC"


def test_the_table_is_geoparquet_with_its_crs() -> None:
    import json

    data = to_table_files(rows_to_table(segment_rows(contributions())))["parquet"]
    metadata = pq.read_schema(io.BytesIO(data)).metadata
    geo = json.loads(metadata[b"geo"])
    column = geo["columns"][geo["primary_column"]]
    assert column["encoding"] == "WKB"
    assert column["crs"]["id"] == {"authority": "EPSG", "code": 5070}
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names[: len(SPEC_COLUMNS)] == SPEC_COLUMNS
    assert table.column("peak_at_horizon").to_pylist() == [False, False, True]


def test_csv_has_a_header_iso_times_wkt_its_crs_and_the_text() -> None:
    text = to_csv_bytes(rows_to_table(segment_rows(contributions()))).decode()
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0])[: len(SPEC_COLUMNS)] == SPEC_COLUMNS
    first = records[0]
    assert first["feature_id_str"] == "wb-100"
    assert first["name"] == 'Brazos River, "near" Hempstead'
    assert first["reference_time"] == "2025-05-05T21:00:00Z"
    assert first["peak_time"] == "2025-05-05T23:00:00Z"
    assert float(first["streamflow_cfs"]) == pytest.approx(1234.5)
    assert shapely.from_wkt(first["geometry"]).equals(shapely.from_wkt("LINESTRING (0 0, 1 1)"))
    assert first["inherited_rfc_forecasts"] == "HPDT2 @ 2025-05-05 20:31 UTC (major)"
    assert first["influencing_lids"] == "HPDT2"
    assert list(records[0])[-1] == "geometry_crs"
    assert {record["geometry_crs"] for record in records} == {"EPSG:5070"}
    assert [record["peak_at_horizon"] for record in records] == ["false", "false", "true"]


def test_a_contributions_file_missing_a_column_is_rejected_by_name() -> None:
    table = pq.read_table(io.BytesIO(contributions_to_bytes(contributions())))
    sink = io.BytesIO()
    pq.write_table(table.drop_columns(["peak_time"]), sink)
    with pytest.raises(ValueError, match="no column peak_time"):
        contributions_from_bytes(sink.getvalue())


def test_bytes_that_are_not_parquet_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a Parquet file"):
        contributions_from_bytes(b"feature_id,name\n1,x\n")


@pytest.fixture(scope="module")
def lookups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample hydrofabric's lookup, built from the GeoPackage and from Parquet."""
    folder = tmp_path_factory.mktemp("lookup")
    paths = {}
    for name, source in (("gpkg", "hydrofabric.gpkg"), ("parquet", "parquet")):
        with open_hydrofabric(SAMPLE_HYDROFABRIC / source) as reader:
            paths[name] = folder / f"{name}.parquet"
            paths[name].write_bytes(build_flowpath_lookup(reader))
    return paths


def test_the_lookup_is_sorted_by_id_in_small_row_groups(lookups: dict[str, Path]) -> None:
    table = pq.read_table(lookups["parquet"])
    ids = table["feature_id"].to_numpy()
    assert (np.diff(ids) > 0).all()
    with open_hydrofabric(SAMPLE_HYDROFABRIC / "parquet") as reader:
        assert table.num_rows == len(reader.read("flowpaths", ["id"])["id"])
    metadata = pq.ParquetFile(lookups["parquet"]).metadata
    assert metadata.row_group(0).num_rows <= LOOKUP_ROW_GROUP_ROWS


def test_flowpaths_read_by_id_agree_between_geopackage_and_parquet(
    lookups: dict[str, Path],
) -> None:
    segment = sample_segment("3121538")
    wanted = [int(i.removeprefix("wb-")) for i in segment.flowpath_ids]
    from_gpkg = read_flowpaths(str(lookups["gpkg"]), [*wanted, 999_999_999])
    from_parquet = read_flowpaths(str(lookups["parquet"]), wanted)
    assert sorted(from_gpkg) == sorted(wanted)  # the unknown id is simply absent
    assert from_gpkg == from_parquet
    lengths = [from_gpkg[i].length_km for i in wanted]
    assert lengths == pytest.approx(list(segment.length_km))
    assert all(path.geometry_wkt.startswith("LINESTRING") for path in from_gpkg.values())


def test_no_ids_reads_nothing(lookups: dict[str, Path]) -> None:
    assert read_flowpaths(str(lookups["parquet"]), []) == {}


def test_a_flowpath_id_that_is_not_wb_n_is_named() -> None:
    class OneBadId(ParquetReader):
        def read(self, layer, columns, filters=None):  # type: ignore[no-untyped-def]
            table = super().read(layer, columns, filters)
            table["id"][3] = "cat-17"
            return table

    with pytest.raises(ValueError, match="flowpath id 'cat-17' is not 'wb-N'"):
        build_flowpath_lookup(OneBadId(SAMPLE_HYDROFABRIC / "parquet"))
