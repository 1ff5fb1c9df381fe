"""The few flowpaths a post-processing run joins with, read by id.

A national ``flowpaths`` layer is around a gigabyte, almost all of it geometry. The
reader pushes the id filter down: SQLite answers it from its index, and Parquet skips
every row group whose id statistics exclude the wanted ids (readers scan the id column
of the rest). The reference system downloaded and parsed the whole layer on every run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import shapely

from rnr.hydro.inherited import Flowpath
from rnr.hydro_io.hydrofabric import HydrofabricReader

FLOWPATHS_LAYER = "flowpaths"


def read_flowpaths(reader: HydrofabricReader, feature_ids: Iterable[int]) -> dict[int, Flowpath]:
    """Length and WKT geometry of each of ``feature_ids`` found in the layer, by id.

    Ids absent from the layer are absent from the answer; the caller decides what that
    means. Raises ``ValueError`` for a row with an unusable ``lengthkm`` or geometry,
    naming the flowpath.
    """
    wanted = sorted({int(feature_id) for feature_id in feature_ids})
    if not wanted:
        return {}
    geometry = reader.geometry_column(FLOWPATHS_LAYER) or "geometry"
    table = reader.read(
        FLOWPATHS_LAYER,
        ["id", "lengthkm", geometry],
        filters={"id": [f"wb-{feature_id}" for feature_id in wanted]},
    )
    found: dict[int, Flowpath] = {}
    for flowpath_id, length_km, wkb in zip(
        table["id"], table["lengthkm"], table[geometry], strict=True
    ):
        length = float(length_km) if length_km is not None else math.nan
        if not (math.isfinite(length) and length >= 0):
            raise ValueError(f"flowpath {flowpath_id} has lengthkm {length_km!r}")
        if wkb is None:
            raise ValueError(f"flowpath {flowpath_id} has no geometry")
        try:
            wkt = shapely.from_wkb(bytes(wkb)).wkt
        except shapely.errors.GEOSException as error:
            raise ValueError(f"flowpath {flowpath_id} has invalid WKB: {error}") from error
        found[int(str(flowpath_id).removeprefix("wb-"))] = Flowpath(length, wkt)
    return found
