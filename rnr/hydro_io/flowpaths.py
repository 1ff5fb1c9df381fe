"""The few flowpaths a post-processing run joins with, read by id from a lookup file.

A national ``flowpaths`` layer is around a gigabyte, almost all of it geometry, and is
written in row groups of up to a million rows in no useful order: even with an id filter
pushed down, a reader must fetch every row group's geometry. So the post-processor
derives a lookup from it once per hydrofabric version: id, length and geometry only,
sorted by numeric id, in row groups of :data:`LOOKUP_ROW_GROUP_ROWS` rows. Each row
group's id statistics then name a narrow id range, and a run reads just the row groups
holding the ids it wants (ranged reads, on S3 as on disk). The reference system
downloaded and parsed the whole layer on every run.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import shapely

from rnr.hydro.inherited import Flowpath
from rnr.hydro_io.hydrofabric import HydrofabricReader

FLOWPATHS_LAYER = "flowpaths"
LOOKUP_ROW_GROUP_ROWS = 1024
LOOKUP_SCHEMA = pa.schema(
    [("feature_id", pa.int64()), ("length_km", pa.float64()), ("geometry", pa.binary())]
)


def build_flowpath_lookup(reader: HydrofabricReader) -> bytes:
    """The lookup file of a hydrofabric's ``flowpaths`` layer, as Parquet bytes.

    Reads the layer's ``id``, ``lengthkm`` and geometry columns once (this is the one
    whole read; its peak memory is about twice the geometry column). Raises
    ``ValueError`` naming a flowpath whose id is not ``wb-N`` or whose length is not a
    finite, non-negative number.
    """
    geometry = reader.geometry_column(FLOWPATHS_LAYER) or "geometry"
    table = reader.read(FLOWPATHS_LAYER, ["id", "lengthkm", geometry])
    ids = np.array([_numeric_id(value) for value in table["id"]], dtype=np.int64)
    lengths = np.asarray(table["lengthkm"], dtype=np.float64)
    bad = ~(np.isfinite(lengths) & (lengths >= 0))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f"flowpath {table['id'][index]} has lengthkm {lengths[index]!r}")
    order = np.argsort(ids, kind="stable")
    lookup = pa.table(
        {
            "feature_id": pa.array(ids[order]),
            "length_km": pa.array(lengths[order]),
            "geometry": pa.array([_bytes(table[geometry][i]) for i in order], pa.binary()),
        },
        schema=LOOKUP_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(
        lookup,
        sink,
        row_group_size=LOOKUP_ROW_GROUP_ROWS,
        compression="zstd",
        write_statistics=["feature_id"],
    )
    return sink.getvalue()


def read_flowpaths(
    path: str, feature_ids: Iterable[int], filesystem: pafs.FileSystem | None = None
) -> dict[int, Flowpath]:
    """Length and WKT geometry of each of ``feature_ids`` found in the lookup at ``path``.

    Ids absent from the lookup are absent from the answer; the caller decides what that
    means. Raises ``ValueError`` for a row with invalid geometry, naming the flowpath.
    """
    wanted = np.unique(np.fromiter((int(i) for i in feature_ids), dtype=np.int64))
    if not wanted.size:
        return {}
    filesystem = filesystem or pafs.LocalFileSystem()
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        groups = _row_groups_holding(parquet.metadata, wanted)
        table = parquet.read_row_groups(groups) if groups else LOOKUP_SCHEMA.empty_table()
    table = table.filter(pc.is_in(table["feature_id"], pa.array(wanted)))
    found: dict[int, Flowpath] = {}
    for feature_id, length_km, wkb in zip(
        table["feature_id"].to_pylist(),
        table["length_km"].to_pylist(),
        table["geometry"].to_pylist(),
        strict=True,
    ):
        if wkb is None:
            raise ValueError(f"flowpath wb-{feature_id} has no geometry")
        try:
            wkt = shapely.from_wkb(wkb).wkt
        except shapely.errors.GEOSException as error:
            raise ValueError(f"flowpath wb-{feature_id} has invalid WKB: {error}") from error
        found[feature_id] = Flowpath(float(length_km), wkt)
    return found


def _row_groups_holding(metadata: pq.FileMetaData, wanted: np.ndarray) -> list[int]:
    """Row groups whose id range holds at least one wanted id (``wanted`` sorted).

    Done here rather than left to a dataset filter: pyarrow does not prune row groups
    by statistics for an ``is_in`` filter, and would read the whole file.
    """
    column = metadata.schema.names.index("feature_id")
    groups = []
    for index in range(metadata.num_row_groups):
        statistics = metadata.row_group(index).column(column).statistics
        if statistics is None or not statistics.has_min_max:
            groups.append(index)  # no statistics: this group must be read to know
            continue
        first = np.searchsorted(wanted, statistics.min, side="left")
        if first < wanted.size and wanted[first] <= statistics.max:
            groups.append(index)
    return groups


def _numeric_id(value: Any) -> int:
    text = str(value)
    number = text.removeprefix("wb-")
    if not number.isdigit():
        raise ValueError(f"flowpath id {text!r} is not 'wb-N'")
    return int(number)


def _bytes(value: Any) -> bytes | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bytes(value)
