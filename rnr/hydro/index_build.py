"""The arrays of the network index, built one column at a time.

The index (:class:`rnr.hydro.segments.NetworkIndex`) is built in memory (a test's
tables, the analysts' tool) and into an artifact on disk that workers memory-map
(:mod:`rnr.hydro_io.index_artifact`). Both go through :func:`build_index_arrays`.

Why column by column: a national hydrofabric has 3 million flowpaths and 8 million
network rows, and its identifier columns held whole as Python strings take gigabytes.
The build reads one column at a time in batches, turns each batch into int64 keys at
once, and hands every array to a sink as soon as it is final, then drops it: the peak
is the largest single step (the network rows' sort), not the sum of the tables.

The arrays, their dtypes and their lengths are fixed by :data:`ARRAY_DTYPES` and
:data:`ARRAY_LENGTHS`; :data:`INDEX_FORMAT_VERSION` changes whenever they do, so an
artifact written by another version is never read as this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import numpy as np

from rnr.hydro.id_keys import MISSING, NUMBER_BITS, IdCodec, SortedKeys, number_of
from rnr.hydro.types import AnyArray, IndexArray, Int64Array

INDEX_FORMAT_VERSION = 1

NETWORK_COLUMNS = ("hf_id", "hf_mainstem", "hf_hydroseq", "divide_id")
FLOWPATH_COLUMNS = ("id", "toid", "order", "hydroseq", "lengthkm", "divide_id", "poi_id")
NEXUS_COLUMNS = ("id", "toid")
LAKE_COLUMNS = ("poi_id",)
# hydrofabric attribute column -> ChannelParameters field (RNR_SPEC section 4)
ATTRIBUTE_COLUMNS: Mapping[str, str] = {
    "Length_m": "length_m",
    "BtmWdth": "bottom_width_m",
    "TopWdth": "top_width_m",
    "TopWdthCC": "floodplain_top_width_m",
    "n": "manning_n",
    "nCC": "floodplain_manning_n",
    "ChSlp": "side_slope",
    "So": "bed_slope",
}
PARAMETER_PREFIX = "param_"

_I8, _F8, _F4 = np.dtype("<i8"), np.dtype("<f8"), np.dtype("<f4")
# name -> dtype. fp_*: one per flowpath; divide_*: flowpaths sorted by divide key;
# net_*: network rows with a reach id, sorted by (hf_mainstem, hf_hydroseq);
# reach_*: one per distinct reach id (sorted), with its origin row in net_*.
ARRAY_DTYPES: Mapping[str, np.dtype] = {
    "fp_key": _I8,
    "fp_order": _I8,
    "fp_hydroseq": _F8,
    "fp_length_km": _F8,
    "fp_down": _I8,
    "fp_lake": np.dtype(np.bool_),
    "fp_poi": _I8,
    **{PARAMETER_PREFIX + field: _F4 for field in ATTRIBUTE_COLUMNS.values()},
    "divide_sorted": _I8,
    "divide_order": _I8,
    "net_mainstem": _F8,
    "net_hydroseq": _F8,
    "net_divide": _I8,
    "reach_key": _I8,
    "reach_row": _I8,
}
# name -> the group whose arrays share one length
ARRAY_LENGTHS: Mapping[str, str] = {
    name: "flowpaths"
    if name.startswith(("fp_", "divide_", PARAMETER_PREFIX))
    else name.split("_")[0]
    for name in ARRAY_DTYPES
}

Sink = Callable[[str, AnyArray], None]


class ColumnSource(Protocol):
    """Columns of the hydrofabric's tables, read in batches in one fixed row order.

    ``table`` is a role, not a layer name: ``network``, ``flowpaths``, ``nexus``,
    ``attributes`` (the chosen channel attributes layer) and ``lakes`` (optional).
    """

    def has_table(self, table: str) -> bool: ...

    def row_count(self, table: str) -> int: ...

    def batches(self, table: str, column: str) -> Iterable[AnyArray]: ...


class TablesSource:
    """Tables already in memory (a mapping of numpy columns per role), one batch each."""

    def __init__(self, tables: Mapping[str, Mapping[str, AnyArray] | None]) -> None:
        self._tables = {name: table for name, table in tables.items() if table is not None}

    def has_table(self, table: str) -> bool:
        return table in self._tables

    def row_count(self, table: str) -> int:
        columns = self._tables[table]
        return len(next(iter(columns.values()))) if columns else 0

    def batches(self, table: str, column: str) -> Iterable[AnyArray]:
        yield np.asarray(self._tables[table][column])


def check_index_arrays(arrays: Mapping[str, AnyArray]) -> None:
    """Raise ValueError unless ``arrays`` are exactly the index's, in its dtypes and
    with consistent lengths (a truncated or foreign artifact must not be used).

    Only shapes and dtypes are looked at: reading values would page a memory-mapped
    artifact in whole (an artifact's content is checked by its checksums instead)."""
    missing = sorted(set(ARRAY_DTYPES) - set(arrays))
    extra = sorted(set(arrays) - set(ARRAY_DTYPES))
    if missing or extra:
        raise ValueError(f"index arrays missing {missing or 'none'}, unexpected {extra or 'none'}")
    lengths: dict[str, int] = {}
    for name, dtype in ARRAY_DTYPES.items():
        array = arrays[name]
        if array.dtype != dtype or array.ndim != 1:
            raise ValueError(f"index array {name} is {array.dtype}{array.shape}, not {dtype}(n,)")
        group = ARRAY_LENGTHS[name]
        if lengths.setdefault(group, array.shape[0]) != array.shape[0]:
            raise ValueError(f"index array {name} has {array.shape[0]} rows, not {lengths[group]}")


def rows_of_keys(sorted_keys: Int64Array, order: AnyArray, query: Int64Array) -> IndexArray:
    """Rows of every occurrence of every (distinct) query key, given a key array's
    sorted values and the rows that sort it (:meth:`SortedKeys.all` on stored arrays)."""
    query = np.unique(np.asarray(query, dtype=np.int64))
    query = query[query != MISSING]
    low = np.searchsorted(sorted_keys, query, side="left")
    high = np.searchsorted(sorted_keys, query, side="right")
    counts = high - low
    total = int(counts.sum())
    if not total:
        return np.empty(0, dtype=np.intp)
    starts = np.repeat(low - np.cumsum(counts) + counts, counts)
    return np.asarray(order[starts + np.arange(total)], dtype=np.intp)


def build_index_arrays(source: ColumnSource, sink: Sink) -> dict[int, str]:
    """Hand every index array to ``sink``; return the id prefixes by code (``{1: "wb"}``)
    that the flowpath keys use, which the index needs to print flowpath ids."""
    codec = IdCodec()
    fp_key = _flowpaths(source, codec, sink)
    _attributes(source, codec, fp_key, sink)
    codes = np.unique(fp_key >> NUMBER_BITS)
    del fp_key
    _network(source, codec, sink)
    return {int(code): codec.prefix(int(code)) for code in codes}


# ------------------------------------------------------------------ reading columns


def _keys(source: ColumnSource, codec: IdCodec, table: str, column: str) -> Int64Array:
    """An identifier column as int64 keys, converted batch by batch."""
    out = np.empty(source.row_count(table), dtype=np.int64)
    start = 0
    for batch in source.batches(table, column):
        keys = _batch_keys(codec, np.asarray(batch))
        out[start : start + keys.size] = keys
        start += keys.size
    _check_rows(table, column, start, out.size)
    return out


def _batch_keys(codec: IdCodec, batch: AnyArray) -> Int64Array:
    """Keys of one batch. Fixed-width text (a reader's ``text_as_bytes``) holds nulls as
    empty values: those are keyed MISSING here, so the codec sees only real ids."""
    if batch.dtype.kind not in "SU":
        return codec.keys(batch)
    keys = np.full(batch.shape, MISSING, dtype=np.int64)
    present = batch != batch.dtype.type()
    if present.any():
        keys[present] = codec.keys(batch[present])
    return keys


def _values(source: ColumnSource, table: str, column: str, dtype: np.dtype) -> AnyArray:
    """A numeric column in ``dtype``, converted batch by batch."""
    out = np.empty(source.row_count(table), dtype=dtype)
    start = 0
    for batch in source.batches(table, column):
        values = np.asarray(batch, dtype=dtype)
        out[start : start + values.size] = values
        start += values.size
    _check_rows(table, column, start, out.size)
    return out


def _check_rows(table: str, column: str, read: int, expected: int) -> None:
    if read != expected:
        raise ValueError(f"{table}.{column} gave {read} values for {expected} rows")


# ------------------------------------------------------------------ the steps


def _flowpaths(source: ColumnSource, codec: IdCodec, sink: Sink) -> Int64Array:
    """Flowpath keys, attributes, connectivity and lakes; returns the keys."""
    fp_key = _keys(source, codec, "flowpaths", "id")
    if (fp_key == MISSING).any():
        raise ValueError("flowpaths has rows without an id")
    by_id = SortedKeys(fp_key)
    duplicated = by_id.sorted[1:] == by_id.sorted[:-1]
    if duplicated.any():
        key = int(by_id.sorted[1:][duplicated][0])
        prefix = codec.prefix(key >> NUMBER_BITS)
        text = f"{prefix}-{number_of(key)}" if prefix else str(number_of(key))
        raise ValueError(f"flowpaths repeats the id {text}")
    sink("fp_key", fp_key)
    order = _values(source, "flowpaths", "order", _F8)
    sink("fp_order", np.where(np.isfinite(order), order, -1).astype(np.int64))
    del order
    sink("fp_hydroseq", _values(source, "flowpaths", "hydroseq", _F8))
    sink("fp_length_km", _values(source, "flowpaths", "lengthkm", _F8))
    by_divide = SortedKeys(_keys(source, codec, "flowpaths", "divide_id"))
    sink("divide_sorted", by_divide.sorted)
    sink("divide_order", by_divide.order.astype(np.int64))
    del by_divide
    sink("fp_down", _downstream(source, codec, by_id))
    poi = _keys(source, codec, "flowpaths", "poi_id")
    lake_pois = np.empty(0, np.int64)
    if source.has_table("lakes"):
        lake_pois = _keys(source, codec, "lakes", "poi_id")
    lake_pois = np.unique(lake_pois[lake_pois != MISSING])
    sink("fp_lake", np.isin(poi, lake_pois) & (poi != MISSING))
    sink("fp_poi", poi)
    return fp_key


def _downstream(source: ColumnSource, codec: IdCodec, by_id: SortedKeys) -> Int64Array:
    """Flowpath -> its toid nexus -> the nexus's toid flowpath (-1 at an outlet). A toid
    naming a flowpath directly is followed too."""
    toid = _keys(source, codec, "flowpaths", "toid")
    nexus_row = SortedKeys(_keys(source, codec, "nexus", "id")).first(toid)
    nexus_toid = _keys(source, codec, "nexus", "toid")
    via_nexus = np.where(nexus_row >= 0, nexus_toid[np.maximum(nexus_row, 0)], MISSING)
    del nexus_toid
    down = by_id.first(via_nexus)
    return np.where(nexus_row >= 0, down, by_id.first(toid)).astype(np.int64)


def _attributes(source: ColumnSource, codec: IdCodec, fp_key: Int64Array, sink: Sink) -> None:
    """Channel parameters aligned to flowpaths (NaN where a flowpath has no row)."""
    row = SortedKeys(_keys(source, codec, "attributes", "id")).first(fp_key)
    has_row = row >= 0
    taken = row[has_row]
    for column, field in ATTRIBUTE_COLUMNS.items():
        values = _values(source, "attributes", column, _F4)
        aligned = np.full(row.shape, np.nan, dtype=np.float32)
        aligned[has_row] = values[taken]
        del values
        sink(PARAMETER_PREFIX + field, aligned)


def _network(source: ColumnSource, codec: IdCodec, sink: Sink) -> None:
    """Network rows with a reach id, sorted by (hf_mainstem, hf_hydroseq) so a main
    stem's rows downstream of a point are one slice; and per reach id its origin row,
    the reach's first row in table order (the reference takes the first match)."""
    hf_id = _keys(source, codec, "network", "hf_id")
    mainstem = _values(source, "network", "hf_mainstem", _F8)
    hydroseq = _values(source, "network", "hf_hydroseq", _F8)
    keep = (hf_id != MISSING) & np.isfinite(mainstem) & np.isfinite(hydroseq)
    mainstem, hydroseq, hf_id = mainstem[keep], hydroseq[keep], hf_id[keep]
    by_stem = np.lexsort((hydroseq, mainstem))
    sink("net_mainstem", mainstem[by_stem])
    del mainstem
    sink("net_hydroseq", hydroseq[by_stem])
    del hydroseq
    hf_id = hf_id[by_stem]
    table_row = np.flatnonzero(keep)[by_stem]
    by_reach = np.lexsort((table_row, hf_id))
    del table_row
    reach_sorted = hf_id[by_reach]
    del hf_id
    first = np.ones(reach_sorted.size, dtype=bool)
    first[1:] = reach_sorted[1:] != reach_sorted[:-1]
    sink("reach_key", reach_sorted[first])
    sink("reach_row", by_reach[first].astype(np.int64))
    del reach_sorted, by_reach, first
    divide = _keys(source, codec, "network", "divide_id")
    sink("net_divide", divide[keep][by_stem])
