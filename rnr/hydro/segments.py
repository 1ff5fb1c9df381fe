"""The river segment a gauge's forecast is routed down (RNR_SPEC section 3).

Pure numerics: the hydrofabric tables come in as numpy arrays (through
:meth:`NetworkIndex.from_reader`, which only asks a reader for columns) and are indexed
once; each :meth:`NetworkIndex.extract_segment` is then a handful of binary searches on
sorted arrays plus a walk down the segment, with no scan of the tables, so it stays in
the sub-millisecond range on a national hydrofabric.

The rule, from the reference system:

1. origin rows = ``network`` rows whose ``hf_id`` (NWM reach id) is the gauge's reach;
2. candidate rows = ``network`` rows with the origin's ``hf_mainstem`` and
   ``hf_hydroseq <=`` the origin's (hydroseq decreases downstream);
3. keep the ``flowpaths`` whose ``divide_id`` is among the candidates' and whose
   ``order`` equals the origin flowpath's;
4. order them upstream to downstream by following ``flowpaths.toid`` -> ``nexus.toid``
   from the origin flowpath; a kept flowpath the walk never reaches cannot receive the
   routed forecast (forcing enters at the origin only) and is left out;
5. stop at the upstream-most lake (a flowpath whose ``poi_id`` is in ``lakes``), that
   flowpath included, as the reference keeps every row down to the lake's.

Identifiers like ``wb-2418120`` are held as int64 keys (a code for the prefix and the
number), never as Python strings: a built index takes about 105 bytes per flowpath and
40 per network row (~0.6 GB for 3 million flowpaths). It is built column by column
(:mod:`rnr.hydro.index_build`), and its arrays can be written once as an artifact and
memory-mapped (:mod:`rnr.hydro_io.index_artifact`), so a worker holds in memory only the
pages its extractions touch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rnr.core.errors import PermanentError
from rnr.hydro.id_keys import NUMBER_BITS, number_of
from rnr.hydro.index_build import (
    ATTRIBUTE_COLUMNS,
    FLOWPATH_COLUMNS,
    LAKE_COLUMNS,
    NETWORK_COLUMNS,
    NEXUS_COLUMNS,
    PARAMETER_PREFIX,
    TablesSource,
    build_index_arrays,
    check_index_arrays,
    rows_of_keys,
)
from rnr.hydro.muskingum_cunge import ChannelParameters
from rnr.hydro.types import AnyArray, Float64Array, IndexArray, Int64Array

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "FLOWPATH_COLUMNS",
    "LAKE_COLUMNS",
    "NETWORK_COLUMNS",
    "NEXUS_COLUMNS",
    "InvalidSegment",
    "NetworkIndex",
    "ReachNotFound",
    "Segment",
    "SegmentError",
    "TableReader",
]

# Rows per batch when the index is built from a reader: small enough that a batch of
# identifier strings costs tens of megabytes, large enough that the per-batch overhead
# is noise.
READ_BATCH_ROWS = 262_144


class SegmentError(PermanentError):
    """No routable segment for a reach: retrying with the same hydrofabric cannot help."""


class ReachNotFound(SegmentError, KeyError):
    """The reach id is not an ``hf_id`` of the hydrofabric's network."""

    def __init__(self, reach_id: object) -> None:
        super().__init__(f"reach id {reach_id!r} is not in the hydrofabric network (hf_id)")
        self.reach_id = reach_id

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class InvalidSegment(SegmentError, ValueError):
    """The hydrofabric has the reach but not what routing it needs (e.g. attributes)."""


class TableReader(Protocol):
    """What :meth:`NetworkIndex.from_reader` needs of a hydrofabric reader."""

    def layers(self) -> list[str]: ...

    def row_count(self, layer: str) -> int: ...

    def read_batches(
        self, layer: str, column: str, batch_rows: int, *, text_as_bytes: bool = False
    ) -> Iterator[AnyArray]: ...


class ReaderSource:
    """A hydrofabric reader as the build's :class:`~rnr.hydro.index_build.ColumnSource`:
    the ``attributes`` role is the chosen attributes layer, ``lakes`` is optional."""

    def __init__(
        self, reader: TableReader, attributes_layer: str, batch_rows: int = READ_BATCH_ROWS
    ) -> None:
        self._reader, self._batch_rows = reader, batch_rows
        self._layers = {
            "network": "network",
            "flowpaths": "flowpaths",
            "nexus": "nexus",
            "attributes": attributes_layer,
        }
        if "lakes" in reader.layers():
            self._layers["lakes"] = "lakes"

    def has_table(self, table: str) -> bool:
        return table in self._layers

    def row_count(self, table: str) -> int:
        return self._reader.row_count(self._layers[table])

    def batches(self, table: str, column: str) -> Iterator[AnyArray]:
        return self._reader.read_batches(
            self._layers[table], column, self._batch_rows, text_as_bytes=True
        )


@dataclass(frozen=True)
class Segment:
    """Flowpaths to route, upstream (the origin, index 0) to downstream.

    Arrays have shape (n,). ``downstream[i]`` is i+1, and -1 for the last flowpath.
    ``cumulative_length_km[i]`` runs from the origin's upstream end to the downstream
    end of flowpath i (the origin's own length at index 0).
    """

    reach_id: str
    origin_id: str
    flowpath_ids: tuple[str, ...]
    feature_ids: Int64Array
    stream_order: int
    length_km: Float64Array
    cumulative_length_km: Float64Array
    downstream: IndexArray
    parameters: ChannelParameters
    attributes_layer: str
    lake_poi_id: int | None  # the lake the segment stops at, if any

    @property
    def size(self) -> int:
        return len(self.flowpath_ids)


def _parse_reach_id(reach_id: str | int) -> int:
    if isinstance(reach_id, int | np.integer):
        return int(reach_id)
    text = str(reach_id).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ReachNotFound(reach_id) from None
    if not number.is_integer():
        raise ReachNotFound(reach_id)
    return int(number)


def _reach_key(reach_id: str | int) -> int:
    """The network key of an NWM reach id; ReachNotFound when it cannot be one."""
    key = _parse_reach_id(reach_id)
    if not 0 <= key < (1 << NUMBER_BITS):
        raise ReachNotFound(reach_id)
    return key


class NetworkIndex:
    """The hydrofabric's routing topology and channel parameters, indexed once.

    Build it once per process and keep it: extraction never goes back to the files.
    :meth:`from_reader` reads a hydrofabric; the constructor takes tables of numpy
    arrays holding the ``*_COLUMNS`` of this module (identifier columns may be strings,
    ``wb-1``, ``29319``, or numbers; ``attributes`` holds ``id`` and the
    :data:`ATTRIBUTE_COLUMNS`); :meth:`from_arrays` adopts arrays already built, such as
    an artifact's memory-mapped files, without copying them.
    """

    def __init__(
        self,
        *,
        network: Mapping[str, AnyArray],
        flowpaths: Mapping[str, AnyArray],
        nexus: Mapping[str, AnyArray],
        attributes: Mapping[str, AnyArray],
        attributes_layer: str,
        lakes: Mapping[str, AnyArray] | None = None,
    ) -> None:
        tables = {
            "network": network,
            "flowpaths": flowpaths,
            "nexus": nexus,
            "attributes": attributes,
            "lakes": lakes,
        }
        arrays: dict[str, AnyArray] = {}
        prefixes = build_index_arrays(TablesSource(tables), arrays.__setitem__)
        self._adopt(arrays, prefixes, attributes_layer)

    @classmethod
    def from_reader(cls, reader: TableReader, attributes_layer: str) -> NetworkIndex:
        """Read only the columns the rule needs (``lakes`` when the layer exists), one
        column at a time in batches (a national table's id strings held whole would
        take gigabytes)."""
        arrays: dict[str, AnyArray] = {}
        source = ReaderSource(reader, attributes_layer)
        prefixes = build_index_arrays(source, arrays.__setitem__)
        return cls.from_arrays(arrays, prefixes, attributes_layer)

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, AnyArray], prefixes: Mapping[int, str], attributes_layer: str
    ) -> NetworkIndex:
        """The index over arrays that :func:`build_index_arrays` made (ValueError when
        they are not exactly those)."""
        index = cls.__new__(cls)
        index._adopt(arrays, prefixes, attributes_layer)
        return index

    def _adopt(
        self, arrays: Mapping[str, AnyArray], prefixes: Mapping[int, str], attributes_layer: str
    ) -> None:
        check_index_arrays(arrays)
        # np.asarray: a plain view (of a memory map, say), so indexing yields ndarrays.
        self._arrays = {name: np.asarray(array) for name, array in arrays.items()}
        self._prefixes = dict(prefixes)
        self.attributes_layer = attributes_layer
        a = self._arrays
        self._fp_key, self._fp_order = a["fp_key"], a["fp_order"]
        self._fp_hydroseq, self._fp_length_km = a["fp_hydroseq"], a["fp_length_km"]
        self._fp_down, self._fp_lake, self._fp_poi = a["fp_down"], a["fp_lake"], a["fp_poi"]
        self._divide_sorted, self._divide_order = a["divide_sorted"], a["divide_order"]
        self._net_mainstem, self._net_hydroseq = a["net_mainstem"], a["net_hydroseq"]
        self._net_divide = a["net_divide"]
        self._reach_key, self._reach_row = a["reach_key"], a["reach_row"]
        self._parameters = {
            field: a[PARAMETER_PREFIX + field] for field in ATTRIBUTE_COLUMNS.values()
        }

    @property
    def arrays(self) -> dict[str, AnyArray]:
        """The index's arrays by name (what an artifact stores)."""
        return dict(self._arrays)

    @property
    def prefixes(self) -> dict[int, str]:
        """Identifier prefix by code, for the flowpath keys (``{1: "wb"}``)."""
        return dict(self._prefixes)

    @property
    def flowpath_count(self) -> int:
        return int(self._fp_key.size)

    def __contains__(self, reach_id: object) -> bool:
        try:
            key = _reach_key(reach_id)  # type: ignore[arg-type]
        except ReachNotFound:
            return False
        return self._origin_row(key) >= 0

    def _origin_row(self, key: int) -> int:
        """The network row (in ``net_*`` order) a reach's segment starts from, or -1."""
        position = int(np.searchsorted(self._reach_key, key))
        if position < self._reach_key.size and self._reach_key[position] == key:
            return int(self._reach_row[position])
        return -1

    def _flowpaths_in(self, divides: Int64Array) -> IndexArray:
        return rows_of_keys(self._divide_sorted, self._divide_order, divides)

    def _id_text(self, key: np.int64 | int) -> str:
        prefix = self._prefixes[int(key) >> NUMBER_BITS]
        return f"{prefix}-{number_of(key)}" if prefix else str(number_of(key))

    def extract_segment(self, reach_id: str | int) -> Segment:
        """The segment routed from ``reach_id`` (NWPS ``reachId``, e.g. ``"3121538"``).

        Raises :class:`ReachNotFound` for an unknown reach, :class:`InvalidSegment` when
        the hydrofabric lacks the channel parameters of a flowpath on the segment.
        """
        key = _reach_key(reach_id)
        origin_row = self._origin_row(key)
        if origin_row < 0:
            raise ReachNotFound(reach_id)
        mainstem = self._net_mainstem[origin_row]
        hydroseq = self._net_hydroseq[origin_row]

        stem_start = np.searchsorted(self._net_mainstem, mainstem, side="left")
        stem_end = np.searchsorted(self._net_mainstem, mainstem, side="right")
        stem_cut = stem_start + np.searchsorted(
            self._net_hydroseq[stem_start:stem_end], hydroseq, side="right"
        )
        candidates = self._flowpaths_in(self._net_divide[stem_start:stem_cut])

        origin_fps = self._flowpaths_in(self._net_divide[origin_row : origin_row + 1])
        if not origin_fps.size:
            raise InvalidSegment(f"reach {reach_id!r} lies in a divide that has no flowpath")
        origin = int(origin_fps[np.argmax(self._fp_hydroseq[origin_fps])])  # upstream-most
        order = int(self._fp_order[origin])
        kept = set(candidates[self._fp_order[candidates] == order].tolist())
        kept.discard(origin)

        chain = [origin]
        lake_poi: int | None = None
        while True:
            current = chain[-1]
            if self._fp_lake[current]:
                lake_poi = number_of(self._fp_poi[current])
                break
            following = int(self._fp_down[current])
            if following not in kept:  # also ends at an outlet (-1)
                break
            kept.discard(following)  # a cycle in bad data cannot loop forever
            chain.append(following)
        return self._segment(str(key), chain, order, lake_poi)

    def _segment(self, reach_id: str, chain: list[int], order: int, lake: int | None) -> Segment:
        positions = np.asarray(chain, dtype=np.intp)
        ids = tuple(self._id_text(k) for k in self._fp_key[positions])
        try:
            parameters = ChannelParameters(
                **{field: values[positions] for field, values in self._parameters.items()}
            )
        except ValueError as error:
            raise InvalidSegment(
                f"reach {reach_id}: channel parameters from {self.attributes_layer!r} "
                f"for {ids[0]}..{ids[-1]} are unusable: {error}"
            ) from error
        length_km = self._fp_length_km[positions]
        downstream = np.arange(1, positions.size + 1, dtype=np.intp)
        downstream[-1] = -1
        return Segment(
            reach_id=reach_id,
            origin_id=ids[0],
            flowpath_ids=ids,
            feature_ids=np.array([number_of(k) for k in self._fp_key[positions]], np.int64),
            stream_order=order,
            length_km=length_km,
            cumulative_length_km=np.cumsum(length_km),
            downstream=downstream,
            parameters=parameters,
            attributes_layer=self.attributes_layer,
            lake_poi_id=lake,
        )
