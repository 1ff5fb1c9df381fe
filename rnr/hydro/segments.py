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
number), never as Python strings: a built index takes about 100 bytes per flowpath and
60 per network row (~0.2 GB for 1 million flowpaths; building it peaks higher, while the
reader's string columns are alive).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rnr.core.errors import PermanentError
from rnr.hydro.id_keys import MISSING, NUMBER_BITS, IdCodec, SortedKeys, number_of
from rnr.hydro.muskingum_cunge import ChannelParameters
from rnr.hydro.types import AnyArray, Float64Array, IndexArray, Int64Array

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

    def read(
        self, layer: str, columns: Sequence[str], filters: Mapping[str, Any] | None = None
    ) -> dict[str, AnyArray]: ...


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


def _integers(values: AnyArray) -> Int64Array:
    """A numeric column as int64, -1 where null."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array), array, -1).astype(np.int64)


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


class _ColumnByColumn(Mapping[str, AnyArray]):
    """A table read one column at a time, when the index asks for it.

    A national table's id columns are millions of Python strings; reading them all
    before converting any held more than a gigabyte at once. Converted one by one,
    each is freed before the next is read.
    """

    def __init__(self, reader: TableReader, layer: str, columns: Sequence[str]) -> None:
        self._reader, self._layer, self._columns = reader, layer, list(columns)

    def __getitem__(self, column: str) -> AnyArray:
        if column not in self._columns:
            raise KeyError(column)
        return self._reader.read(self._layer, [column])[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


class NetworkIndex:
    """The hydrofabric's routing topology and channel parameters, indexed once.

    Build it once per process (:meth:`from_reader`, or the constructor with tables of
    numpy arrays holding the ``*_COLUMNS`` of this module) and keep it: extraction never
    goes back to the files. Identifier columns may be strings (``wb-1``, ``29319``) or
    numbers; ``attributes`` holds ``id`` and the :data:`ATTRIBUTE_COLUMNS`.
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
        codec = IdCodec()
        self._codec = codec
        self.attributes_layer = attributes_layer

        # Flowpaths: one row each, addressed by position.
        self._fp_key = codec.keys(flowpaths["id"])
        if (self._fp_key == MISSING).any():
            raise ValueError("flowpaths has rows without an id")
        by_id = SortedKeys(self._fp_key)
        duplicated = by_id.sorted[1:] == by_id.sorted[:-1]
        if duplicated.any():
            key = by_id.sorted[1:][duplicated][0]
            raise ValueError(f"flowpaths repeats the id {self._id_text(key)}")
        self._fp_order = _integers(flowpaths["order"])
        self._fp_hydroseq = np.asarray(flowpaths["hydroseq"], dtype=np.float64)
        self._fp_length_km = np.asarray(flowpaths["lengthkm"], dtype=np.float64)
        self._by_divide = SortedKeys(codec.keys(flowpaths["divide_id"]))

        # Connectivity: flowpath -> its toid nexus -> the nexus's toid flowpath. A toid
        # naming a flowpath directly is followed too.
        toid = codec.keys(flowpaths["toid"])
        nexus_row = SortedKeys(codec.keys(nexus["id"])).first(toid)
        nexus_toid = codec.keys(nexus["toid"])
        via_nexus = np.where(nexus_row >= 0, nexus_toid[np.maximum(nexus_row, 0)], MISSING)
        down = by_id.first(via_nexus)
        self._fp_down = np.where(nexus_row >= 0, down, by_id.first(toid)).astype(np.intp)

        # Lakes: flowpaths holding a lake's poi.
        poi = codec.keys(flowpaths["poi_id"])
        lake_pois = np.empty(0, np.int64) if lakes is None else codec.keys(lakes["poi_id"])
        lake_pois = np.unique(lake_pois[lake_pois != MISSING])
        self._fp_lake = np.isin(poi, lake_pois) & (poi != MISSING)
        self._fp_poi = poi

        # Channel parameters, aligned to flowpaths (NaN where a flowpath has no row).
        row = SortedKeys(codec.keys(attributes["id"])).first(self._fp_key)
        has_row = row >= 0
        self._parameters: dict[str, npt.NDArray[np.float32]] = {}
        for column, field in ATTRIBUTE_COLUMNS.items():
            values = np.asarray(attributes[column], dtype=np.float32)
            aligned = np.full(row.shape, np.nan, dtype=np.float32)
            aligned[has_row] = values[row[has_row]]
            self._parameters[field] = aligned

        # Network rows with a reach id, sorted by (hf_mainstem, hf_hydroseq) so a
        # mainstem's rows downstream of a point are one slice.
        hf_id = codec.keys(network["hf_id"])
        mainstem = np.asarray(network["hf_mainstem"], dtype=np.float64)
        hydroseq = np.asarray(network["hf_hydroseq"], dtype=np.float64)
        keep = (hf_id != MISSING) & np.isfinite(mainstem) & np.isfinite(hydroseq)
        table_row = np.flatnonzero(keep)
        by_stem = np.lexsort((hydroseq[keep], mainstem[keep]))
        self._net_mainstem = mainstem[keep][by_stem]
        self._net_hydroseq = hydroseq[keep][by_stem]
        self._net_divide = codec.keys(network["divide_id"])[keep][by_stem]
        self._net_table_row = table_row[by_stem]
        self._by_hf_id = SortedKeys(hf_id[keep][by_stem])

    @classmethod
    def from_reader(cls, reader: TableReader, attributes_layer: str) -> NetworkIndex:
        """Read only the columns the rule needs (``lakes`` when the layer exists)."""
        lakes = reader.read("lakes", LAKE_COLUMNS) if "lakes" in reader.layers() else None
        return cls(
            network=_ColumnByColumn(reader, "network", NETWORK_COLUMNS),
            flowpaths=_ColumnByColumn(reader, "flowpaths", FLOWPATH_COLUMNS),
            nexus=_ColumnByColumn(reader, "nexus", NEXUS_COLUMNS),
            attributes=_ColumnByColumn(reader, attributes_layer, ["id", *ATTRIBUTE_COLUMNS]),
            attributes_layer=attributes_layer,
            lakes=lakes,
        )

    @property
    def flowpath_count(self) -> int:
        return int(self._fp_key.size)

    def __contains__(self, reach_id: object) -> bool:
        try:
            key = _reach_key(reach_id)  # type: ignore[arg-type]
        except ReachNotFound:
            return False
        return bool(self._reach_rows(key).size)

    def _reach_rows(self, key: int) -> IndexArray:
        low = np.searchsorted(self._by_hf_id.sorted, key, side="left")
        high = np.searchsorted(self._by_hf_id.sorted, key, side="right")
        return self._by_hf_id.order[low:high]

    def _id_text(self, key: np.int64 | int) -> str:
        prefix = self._codec.prefix(int(key) >> NUMBER_BITS)
        return f"{prefix}-{number_of(key)}" if prefix else str(number_of(key))

    def extract_segment(self, reach_id: str | int) -> Segment:
        """The segment routed from ``reach_id`` (NWPS ``reachId``, e.g. ``"3121538"``).

        Raises :class:`ReachNotFound` for an unknown reach, :class:`InvalidSegment` when
        the hydrofabric lacks the channel parameters of a flowpath on the segment.
        """
        key = _reach_key(reach_id)
        rows = self._reach_rows(key)
        if not rows.size:
            raise ReachNotFound(reach_id)
        origin_row = rows[np.argmin(self._net_table_row[rows])]  # first in table order
        mainstem = self._net_mainstem[origin_row]
        hydroseq = self._net_hydroseq[origin_row]

        stem_start = np.searchsorted(self._net_mainstem, mainstem, side="left")
        stem_end = np.searchsorted(self._net_mainstem, mainstem, side="right")
        stem_cut = stem_start + np.searchsorted(
            self._net_hydroseq[stem_start:stem_end], hydroseq, side="right"
        )
        candidates = self._by_divide.all(self._net_divide[stem_start:stem_cut])

        origin_fps = self._by_divide.all(self._net_divide[origin_row : origin_row + 1])
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
