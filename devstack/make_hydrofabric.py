"""Generate a synthetic NextGen hydrofabric v2.2, as a GeoPackage and as Parquet.

``python -m devstack.make_hydrofabric --out DIR [--flowpaths N] [--formats ...]``
writes ``DIR/hydrofabric.gpkg``, ``DIR/parquet/<layer>.parquet`` and
``DIR/manifest.json``. The output is a pure function of the arguments (seeded
generator, no clock), so the committed sample in ``devstack/data/small/`` can be
checked by regenerating it.

Why: the worker needs a hydrofabric to extract segments from in tests and local runs,
and the benchmarks need a national-sized one; the real files are ~1 GB and not
redistributable here. The layers, columns and SQL types copy the v2.2 files (including
their quirks: ``hf_id`` REAL, ``flowpaths.poi_id`` TEXT, ``order`` REAL; geometry
column ``geom`` in the GeoPackage, ``geometry`` in Parquet; EPSG:5070).

Every output holds one hand-built "feature" basin exercising the segment rule
(RNR_SPEC section 3), with the NWM reach ids of the replay fixtures:

- a main stem of 34 flowpaths ``wb-100001`` (top) .. ``wb-100034`` (outlet): 30 of
  order 4, then 4 of order 5 below the confluence with an order-4 tributary
  (``wb-100201``..``wb-100203``);
- a lake (``lakes`` row, poi on ``wb-100015``, main stem position 14);
- an order-2 tributary ``wb-100101``..``wb-100108`` (two order-1 headwaters) joining
  at ``wb-100023``; its confluence flowpath also holds an NHD reach of the main stem's
  ``hf_mainstem`` (as real divides do), so the hf_mainstem/hf_hydroseq test alone
  would take it into PRLL1's segment (its order and the toid walk keep it out);
- reach 3121538 (HPDT2) on main stem position 2, 1479611 (TRKT2) on position 8, both
  above the lake; 18786543 (PRLL1) on position 20, below it; 21771164 (ILRO2) on the
  tributary's fourth flowpath.

With ``--flowpaths N`` above the feature basin's 45, random independent basins (trees
of 40..1500 flowpaths, Strahler orders, mainstems by drainage area, gauges and lakes)
fill the rest; everything is vectorised numpy/pyarrow and Parquet is written in row
chunks: 3,000,000 flowpaths (8 million network rows, 0.9 GB of Parquet) take ~50 s
and 2.5 GB of memory. The GeoPackage writer goes row by row through sqlite3 and is meant
for small and medium outputs (``--formats auto`` skips it above 200,000 flowpaths).

Expected segments of the replay reaches (see ``manifest.json``): 3121538 -> 13
flowpaths (wb-100003..wb-100015, ends at the lake), 1479611 -> 7 (wb-100009..wb-100015,
lake), 18786543 -> 10 (wb-100021..wb-100030, order 5 below), 21771164 -> 5
(wb-100104..wb-100108, the tributary down to the confluence).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devstack import SAMPLE_HYDROFABRIC
from rnr.hydro_io.geoparquet import EPSG_5070_PROJJSON

GPKG_NAME = "hydrofabric.gpkg"
PARQUET_DIR = "parquet"
MANIFEST_NAME = "manifest.json"
DEFAULT_SEED = 20250505
SRS_ID = 5070
FORMATS = ("both", "parquet", "gpkg", "auto")
AUTO_GPKG_LIMIT = 200_000  # flowpaths above which "auto" writes Parquet only

IntArray = npt.NDArray[np.int64]
IndexArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_CHUNK_ROWS = 1_000_000
_HF_SLOTS = 8  # hf_hydroseq = flowpath hydroseq * 8 + slot; slot 7 is the decoy row
_HYDROSEQ_BASE = 10_000
_TERMINAL_BASE = 1_000_000_000
_RANDOM_FLOWPATH_BASE = 1_000_000
_RANDOM_HF_ID_BASE = 100_000_000
_FEATURE_HF_ID_BASE = 90_000_001
_RANDOM_POI_BASE = 1_000_001
_FEATURE_POI_BASE = 50_001
_LAKE_ID_BASE = 7_000_001
_USGS_BASE = 9_000_001
_LAST_CHANGE = "2025-05-05T00:00:00.000Z"
_HF_SOURCE = "NOAA Reference Fabric"
_VPUS = ("01", "02", "03N", "03S", "03W", "04", "05", "06", "07", "08", "09", "10L", "10U")
_VPUS += ("11", "12", "13", "14", "15", "16", "17", "18")


# ------------------------------------------------------------------ the feature basin


@dataclass(frozen=True)
class ReplayReach:
    """A gauge of the replay fixtures placed on the feature basin."""

    lid: str
    reach_id: int
    flowpath: str  # label: m<i> main stem, t<i> order-2 tributary, u<i> order-4 tributary
    usgs_site: str
    slot: int = 0  # which of the flowpath's NHD reaches (0 = upstream-most)


REPLAY_REACHES = (
    ReplayReach("HPDT2", 3121538, "m2", "08111500", slot=1),
    ReplayReach("TRKT2", 1479611, "m8", "09000002"),
    ReplayReach("PRLL1", 18786543, "m20", "09000003"),
    ReplayReach("ILRO2", 21771164, "t3", "09000004"),
)
LAKE_FLOWPATH = "m14"
MAIN_STEM_LENGTH = 34
FEATURE_FLOWPATHS = MAIN_STEM_LENGTH + 8 + 3
MAIN_STEM_ORDER_4 = 30  # positions 30.. are order 5
TRIBUTARY_JOINS = "m22"  # the order-2 tributary drains into this flowpath's top
ORDER_4_TRIBUTARY_JOINS = "m30"
# Expected segments (labels, upstream to downstream) by the rule of RNR_SPEC section 3.
EXPECTED_SEGMENTS = {
    3121538: [f"m{i}" for i in range(2, 15)],  # stops at the lake
    1479611: [f"m{i}" for i in range(8, 15)],  # stops at the lake
    18786543: [f"m{i}" for i in range(20, 30)],  # order 5 from m30 on
    21771164: [f"t{i}" for i in range(3, 8)],  # to the confluence
}


@dataclass
class _Feature:
    """The hand-built basin: topology and the parts of it the tests look for."""

    labels: list[str]
    number: IntArray
    down: IndexArray
    order: IntArray
    angle: FloatArray
    target_km: FloatArray
    extra_area_km2: FloatArray
    width_m: FloatArray  # bottom width before jitter

    def index(self, label: str) -> int:
        return self.labels.index(label)


def _feature_basin(rng: np.random.Generator) -> _Feature:
    main = [f"m{i}" for i in range(MAIN_STEM_LENGTH)]
    trib = [f"t{i}" for i in range(8)]
    big = [f"u{i}" for i in range(3)]
    labels = main + trib + big
    position = {label: i for i, label in enumerate(labels)}
    number = np.array(
        [100_001 + i for i in range(len(main))]
        + [100_101 + i for i in range(len(trib))]
        + [100_201 + i for i in range(len(big))],
        dtype=np.int64,
    )
    down = np.full(len(labels), -1, dtype=np.intp)
    for i in range(len(main) - 1):
        down[i] = i + 1
    down[position["t0"]] = down[position["t1"]] = position["t2"]
    for i in range(2, 7):
        down[position[f"t{i}"]] = position[f"t{i + 1}"]
    down[position["t7"]] = position[TRIBUTARY_JOINS]
    down[position["u0"]], down[position["u1"]] = position["u1"], position["u2"]
    down[position["u2"]] = position[ORDER_4_TRIBUTARY_JOINS]
    order = np.array(
        [4] * MAIN_STEM_ORDER_4
        + [5] * (len(main) - MAIN_STEM_ORDER_4)
        + [1, 1, 2, 2, 2, 2, 2, 2]
        + [4, 4, 4],
        dtype=np.int64,
    )
    angle = np.concatenate(
        [
            2.0 + rng.normal(0.0, 0.25, len(main)),
            2.9 + rng.normal(0.0, 0.25, len(trib)),
            1.1 + rng.normal(0.0, 0.25, len(big)),
        ]
    )
    target_km = np.concatenate(
        [rng.uniform(0.6, 4.8, len(main)), rng.uniform(0.5, 3.0, len(labels) - len(main))]
    )
    extra = np.zeros(len(labels))
    extra[position["m0"]] = 3000.0  # the basin above the subset drains into the top
    extra[position["u0"]] = 1500.0
    width = np.concatenate(
        [
            np.linspace(10.0, 60.0, len(main)),
            [3.0, 3.0, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5],
            [22.0, 24.0, 26.0],
        ]
    )
    return _Feature(labels, number, down, order, angle, target_km, extra, width)


# ------------------------------------------------------------------ tree algorithms


def _path_sum(down: IndexArray, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sum of ``values`` over each flowpath and everything downstream of it.

    Pointer jumping: log2(longest path) vectorised rounds instead of a walk per node.
    """
    total = values.copy()
    ancestor = down.copy()
    while True:
        jumping = np.flatnonzero(ancestor >= 0)
        if not jumping.size:
            return total
        target = ancestor[jumping]
        total[jumping] = total[jumping] + total[target]
        ancestor[jumping] = ancestor[target]


def _levels(depth: IntArray) -> list[IndexArray]:
    """Flowpath indices grouped by depth, deepest (upstream) first."""
    order = np.argsort(-depth, kind="stable")
    bounds = np.flatnonzero(np.diff(depth[order])) + 1
    return np.split(order, bounds)


def _accumulate(down: IndexArray, values: FloatArray, levels: list[IndexArray]) -> FloatArray:
    """Each flowpath's value plus everything upstream of it (e.g. drainage area)."""
    total = values.copy()
    for level in levels:
        level = level[down[level] >= 0]
        np.add.at(total, down[level], total[level])
    return total


def _strahler(down: IndexArray, levels: list[IndexArray]) -> IntArray:
    """Strahler order: 1 at headwaters; +1 where two of the highest order meet."""
    order = np.zeros(down.size, dtype=np.int64)
    highest = np.zeros(down.size, dtype=np.int64)
    count = np.zeros(down.size, dtype=np.int64)
    for level in levels:  # a node's children all sit on the level above it
        order[level] = np.where(highest[level] == 0, 1, highest[level] + (count[level] >= 2))
        level = level[down[level] >= 0]
        parent = down[level]
        np.maximum.at(highest, parent, order[level])
        np.add.at(count, parent, (order[level] == highest[parent]).astype(np.int64))
    return order


def _mainstem_roots(down: IndexArray, drainage_km2: FloatArray) -> IndexArray:
    """For each flowpath, the outlet flowpath of its mainstem (level path).

    At each confluence the mainstem continues up the branch draining the most area.
    """
    size = down.size
    children = np.flatnonzero(down >= 0)
    targets = down[children]
    ranked = np.lexsort((children, -drainage_km2[children], targets))
    first = np.ones(ranked.size, dtype=bool)
    first[1:] = targets[ranked][1:] != targets[ranked][:-1]
    main_child = children[ranked][first]
    root = np.arange(size, dtype=np.intp)
    root[main_child] = down[main_child]
    while True:
        following = root[root]
        if np.array_equal(following, root):
            return root
        root = following


# ------------------------------------------------------------------ the forest


@dataclass
class _Forest:
    """Every flowpath of the output, feature basin first; arrays of one length."""

    number: IntArray
    down: IndexArray
    basin: IntArray
    order: IntArray
    hydroseq: IntArray
    root: IndexArray
    reaches: IntArray  # NHD reaches (network rows) per flowpath, 1..3
    length_m: FloatArray
    area_km2: FloatArray
    drainage_km2: FloatArray
    upstream_xy: FloatArray  # (n, 2), EPSG:5070 metres
    downstream_xy: FloatArray
    middle_xy: FloatArray
    vpuid: npt.NDArray[np.str_]
    channel: dict[str, FloatArray]
    channel_ml: dict[str, FloatArray]
    gauge_site: IntArray  # USGS-like site number, -1 = no gauge
    lake: BoolArray
    poi_id: IntArray  # -1 = none
    feature: _Feature
    basin_count: int
    terminal: IntArray = field(init=False)  # terminal nexus number per flowpath (outlets)

    def __post_init__(self) -> None:
        self.terminal = np.where(self.down < 0, _TERMINAL_BASE + self.basin, -1)

    @property
    def size(self) -> int:
        return int(self.number.size)


def _random_topology(rng: np.random.Generator, total: int) -> tuple[IndexArray, IntArray, int]:
    """Independent random trees of 40..1500 flowpaths: (down, basin, basin count).

    Inside a basin flowpath 0 is the outlet and flowpath j drains into one of the six
    before it, which gives long branching chains like river networks.
    """
    sizes: list[int] = []
    remaining = total
    while remaining > 0:
        size = min(int(rng.integers(40, 1501)), remaining)
        sizes.append(size)
        remaining -= size
    counts = np.array(sizes, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    basin = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    local = np.arange(total, dtype=np.int64) - starts[basin]
    step = 1 + np.floor(rng.random(total) * np.minimum(local, 6)).astype(np.int64)
    down = np.where(local == 0, -1, starts[basin] + local - step).astype(np.intp)
    return down, basin, int(counts.size)


def _channel(
    rng: np.random.Generator, width_m: FloatArray, lower: FloatArray, upper: FloatArray
) -> dict[str, FloatArray]:
    """Channel geometry and roughness around a bottom width (clipped to its range)."""
    size = width_m.size
    bottom = np.clip(width_m * rng.uniform(0.85, 1.15, size), lower, upper)
    top = bottom * rng.uniform(1.3, 2.5, size)
    n = rng.uniform(0.03, 0.06, size)
    side = rng.uniform(0.5, 3.0, size)
    return {
        "BtmWdth": bottom,
        "TopWdth": top,
        "TopWdthCC": top * rng.uniform(2.7, 3.3, size),
        "n": n,
        "nCC": 2.0 * n,
        "ChSlp": side,
        "Y": (top - bottom) * side / 2.0,  # bankfull depth (RNR_SPEC section 4)
    }


def _build_forest(seed: int, flowpaths: int) -> _Forest:
    feature_rng = np.random.default_rng([seed, 0])
    random_rng = np.random.default_rng([seed, 1])
    feature = _feature_basin(feature_rng)
    extra = flowpaths - len(feature.labels)
    if extra < 0:
        raise ValueError(f"--flowpaths must be at least {len(feature.labels)}")
    own = len(feature.labels)

    r_down, r_basin, r_basins = _random_topology(random_rng, extra)
    number = np.concatenate(
        [feature.number, _RANDOM_FLOWPATH_BASE + np.arange(extra, dtype=np.int64)]
    )
    down = np.concatenate([feature.down, np.where(r_down >= 0, r_down + own, -1)]).astype(np.intp)
    basin = np.concatenate([np.zeros(own, np.int64), r_basin + 1])
    size = number.size

    depth = _path_sum(down, np.ones(size, np.int64)) - 1
    levels = _levels(depth)
    hydroseq = np.empty(size, np.int64)
    hydroseq[np.lexsort((np.arange(size), depth, basin))] = _HYDROSEQ_BASE + np.arange(size)
    order = _strahler(down, levels)
    order[:own] = feature.order

    # Lengths, areas, widths: the feature basin's from its design, the rest by order.
    r_order = order[own:]
    target_km = np.concatenate([feature.target_km, random_rng.uniform(0.5, 4.9, extra)])
    area = target_km * np.concatenate(
        [feature_rng.uniform(3.0, 8.0, own), random_rng.uniform(2.0, 9.0, extra)]
    )
    area[:own] += feature.extra_area_km2
    drainage = _accumulate(down, area, levels)
    root = _mainstem_roots(down, drainage)

    typical_width = 2.5 * np.power(r_order.astype(np.float64), 1.6)
    on_main_stem = np.zeros(own, bool)
    on_main_stem[:MAIN_STEM_LENGTH] = True
    lower = np.concatenate([np.where(on_main_stem, 10.0, 1.0), np.full(extra, 1.0)])
    upper = np.concatenate([np.where(on_main_stem, 60.0, 40.0), np.full(extra, 400.0)])
    widths = np.concatenate([feature.width_m, typical_width])
    slope = np.exp(
        np.concatenate(
            [
                feature_rng.uniform(np.log(1e-4), np.log(5e-3), own),
                random_rng.uniform(np.log(1e-4), np.log(5e-3), extra),
            ]
        )
    )
    feature_channel = _channel(feature_rng, widths[:own], lower[:own], upper[:own])
    random_channel = _channel(random_rng, widths[own:], lower[own:], upper[own:])
    feature_ml = _channel(
        feature_rng, widths[:own] * feature_rng.uniform(0.7, 1.3, own), lower[:own], upper[:own]
    )
    random_ml = _channel(
        random_rng, widths[own:] * random_rng.uniform(0.7, 1.3, extra), lower[own:], upper[own:]
    )
    channel = {k: np.concatenate([feature_channel[k], random_channel[k]]) for k in feature_channel}
    channel_ml = {k: np.concatenate([feature_ml[k], random_ml[k]]) for k in feature_ml}
    channel["So"] = channel_ml["So"] = slope

    # Geometry: each flowpath a 3-vertex line from its upstream end down to the top of
    # the flowpath it drains into; basin outlets on a grid over CONUS (EPSG:5070).
    angle = np.concatenate(
        [
            feature.angle,
            random_rng.uniform(0, 2 * math.pi, r_basins)[r_basin]
            + random_rng.normal(0, 0.6, extra),
        ]
    )
    vector = (target_km * 1000.0)[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    columns = max(1, math.ceil(math.sqrt(r_basins * 1.6)))
    rows = max(1, math.ceil(r_basins / columns))
    cell = np.arange(r_basins)
    outlets = np.vstack(
        [
            [[30_000.0, 650_000.0]],
            np.column_stack(
                [
                    -2_300_000.0 + (cell % columns + 0.5) * 4_500_000.0 / columns,
                    300_000.0 + (cell // columns + 0.5) * 2_800_000.0 / rows,
                ]
            ),
        ]
    )
    upstream_xy = outlets[basin] + _path_sum(down, vector)
    downstream_xy = np.where((down >= 0)[:, None], upstream_xy[np.maximum(down, 0)], outlets[basin])
    offset = np.concatenate(
        [feature_rng.uniform(-0.03, 0.03, own), random_rng.uniform(-0.03, 0.03, extra)]
    )
    chord = downstream_xy - upstream_xy
    middle_xy = (upstream_xy + downstream_xy) / 2 + offset[:, None] * np.column_stack(
        [-chord[:, 1], chord[:, 0]]
    )
    length_m = np.hypot(*(middle_xy - upstream_xy).T) + np.hypot(*(downstream_xy - middle_xy).T)
    channel["Length_m"] = channel_ml["Length_m"] = length_m

    reaches = np.concatenate(
        [feature_rng.integers(1, 4, own), random_rng.integers(1, 4, extra)]
    ).astype(np.int64)
    gauge = np.full(size, -1, np.int64)
    lake = np.zeros(size, bool)
    for reach in REPLAY_REACHES:
        position = feature.index(reach.flowpath)
        gauge[position] = int(reach.usgs_site)
        reaches[position] = max(reaches[position], reach.slot + 1)
    lake[feature.index(LAKE_FLOWPATH)] = True
    draw = random_rng.random(extra)
    random_gauge = (draw < 1 / 50) & (r_down >= 0)
    random_lake = (draw > 1 - 1 / 400) & (r_down >= 0)
    gauge[own:][random_gauge] = _USGS_BASE + np.arange(int(random_gauge.sum()))
    lake[own:] = random_lake
    has_poi = (gauge >= 0) | lake
    poi = np.full(size, -1, np.int64)
    feature_poi = np.flatnonzero(has_poi[:own])
    poi[feature_poi] = _FEATURE_POI_BASE + np.arange(feature_poi.size)
    random_poi = own + np.flatnonzero(has_poi[own:])
    poi[random_poi] = _RANDOM_POI_BASE + np.arange(random_poi.size)

    vpuid = np.array(_VPUS)[(basin - 1) % len(_VPUS)]
    vpuid[:own] = "12"
    return _Forest(
        number=number,
        down=down,
        basin=basin,
        order=order,
        hydroseq=hydroseq,
        root=root,
        reaches=reaches,
        length_m=length_m,
        area_km2=area,
        drainage_km2=drainage,
        upstream_xy=upstream_xy,
        downstream_xy=downstream_xy,
        middle_xy=middle_xy,
        vpuid=vpuid,
        channel=channel,
        channel_ml=channel_ml,
        gauge_site=gauge,
        lake=lake,
        poi_id=poi,
        feature=feature,
        basin_count=r_basins + 1,
    )


# ------------------------------------------------------------------ tables


_LINESTRING_WKB = np.dtype(
    [("byte_order", "u1"), ("type", "<u4"), ("count", "<u4"), ("xy", "<f8", (6,))]
)
_POINT_WKB = np.dtype([("byte_order", "u1"), ("type", "<u4"), ("xy", "<f8", (2,))])


def _binary(records: npt.NDArray[np.void]) -> pa.Array:
    """Fixed-size records as an Arrow binary array, without a Python object per row."""
    offsets = np.arange(records.size + 1, dtype=np.int64) * records.dtype.itemsize
    if offsets[-1] >= 2**31:
        raise ValueError("geometry chunk too large for a 32-bit offset binary array")
    buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(records.tobytes())]
    return pa.Array.from_buffers(pa.binary(), records.size, buffers)


def _linestrings(vertices: FloatArray) -> pa.Array:
    """WKB LINESTRINGs (little-endian) from vertices of shape (n, 3, 2)."""
    records = np.zeros(vertices.shape[0], dtype=_LINESTRING_WKB)
    records["byte_order"], records["type"], records["count"] = 1, 2, 3
    records["xy"] = vertices.reshape(-1, 6)
    return _binary(records)


def _points(xy: FloatArray) -> pa.Array:
    records = np.zeros(xy.shape[0], dtype=_POINT_WKB)
    records["byte_order"], records["type"] = 1, 1
    records["xy"] = xy
    return _binary(records)


def _text(prefix: str, numbers: IntArray, valid: BoolArray | None = None) -> pa.Array:
    """``prefix`` + number as Arrow strings (null where not ``valid``)."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    digits = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64), mask=mask), pa.string())
    return pc.binary_join_element_wise(prefix, digits, "") if prefix else digits


def _strings(values: npt.NDArray[np.str_]) -> pa.Array:
    return pa.array(np.asarray(values).astype(object), type=pa.string())


def _floats(values: npt.ArrayLike, valid: BoolArray | None = None) -> pa.Array:
    array = np.asarray(values, dtype=np.float64)
    return pa.array(array, mask=None if valid is None else ~np.asarray(valid, dtype=bool))


def _constant(value: str | None, size: int, valid: BoolArray | None = None) -> pa.Array:
    if value is None:
        return pa.nulls(size, pa.string())
    array = pa.array(np.full(size, value).astype(object), type=pa.string())
    return (
        array if valid is None else pc.if_else(pa.array(valid), array, pa.nulls(size, pa.string()))
    )


Builder = Callable[[int, int], pa.Table]


@dataclass(frozen=True)
class _Layer:
    """One output layer, built in row ranges so huge layers never sit in memory whole."""

    name: str
    rows: int
    build: Builder
    geometry_type: str | None = None  # GeoPackage type name; column "geometry" (WKB)


class _Tables:
    """The v2.2 layers of a forest. Network and nexus rows are laid out here once."""

    def __init__(self, forest: _Forest, seed: int) -> None:
        self.f = forest
        size = forest.size
        feature = forest.feature
        own = len(feature.labels)
        has_down = forest.down >= 0
        safe_down = np.maximum(forest.down, 0)
        self.mainstem = (forest.hydroseq[forest.root] * _HF_SLOTS).astype(np.float64)
        self.toid_terminal = ~has_down
        self.toid_number = np.where(has_down, forest.number[safe_down], forest.terminal)
        self.alt = 5.0 + _path_sum(forest.down, forest.channel["So"] * forest.length_m)
        self.alt -= forest.channel["So"] * forest.length_m  # elevation at the outlet end

        # Nexus: one "nex-<downstream wb number>" per flowpath with something upstream,
        # one terminal "tnx-" per outlet.
        receives = np.zeros(size, bool)
        receives[forest.down[has_down]] = True
        targets = np.flatnonzero(receives)
        outlets = np.flatnonzero(~has_down)
        poi_at = np.full(size, -1, np.int64)
        np.maximum.at(poi_at, forest.down[has_down], forest.poi_id[has_down])
        self.nexus_terminal = np.concatenate(
            [np.zeros(targets.size, bool), np.ones(outlets.size, bool)]
        )
        self.nexus_number = np.concatenate([forest.number[targets], forest.terminal[outlets]])
        self.nexus_toid = np.concatenate([forest.number[targets], np.zeros(outlets.size, np.int64)])
        self.nexus_xy = np.vstack([forest.upstream_xy[targets], forest.downstream_xy[outlets]])
        self.nexus_poi = np.concatenate([poi_at[targets], forest.poi_id[outlets]])
        self.nexus_vpuid = forest.vpuid[np.concatenate([targets, outlets])]

        # Network rows: one per NHD reach of each flowpath (upstream reach first), the
        # replay gauges' reaches again with a second hydrolocation, the decoy reach of
        # the main stem inside the tributary's confluence divide, then the nexus rows.
        reach_fp = np.repeat(np.arange(size), forest.reaches)
        first_row = np.cumsum(forest.reaches) - forest.reaches
        slot = np.arange(reach_fp.size) - first_row[reach_fp]
        hf_id = np.where(
            reach_fp < own,
            _FEATURE_HF_ID_BASE + np.arange(reach_fp.size),
            _RANDOM_HF_ID_BASE + np.arange(reach_fp.size),
        ).astype(np.float64)
        hl_site = np.where((slot == 0), forest.gauge_site[reach_fp], -1)
        for reach in REPLAY_REACHES:
            row = first_row[feature.index(reach.flowpath)] + reach.slot
            hf_id[row] = reach.reach_id
            hl_site[first_row[feature.index(reach.flowpath)]] = -1
            hl_site[row] = int(reach.usgs_site)
        hf_hydroseq = (
            forest.hydroseq[reach_fp] * _HF_SLOTS + (forest.reaches[reach_fp] - 1 - slot)
        ).astype(np.float64)
        replay_rows = np.array(
            [first_row[feature.index(r.flowpath)] + r.slot for r in REPLAY_REACHES]
        )
        decoy_fp = feature.index("t7")
        decoy_hydroseq = forest.hydroseq[feature.index("m21")] * _HF_SLOTS + _HF_SLOTS - 1
        self.row_fp = np.concatenate([reach_fp, reach_fp[replay_rows], [decoy_fp]])
        self.row_hf_id = np.concatenate([hf_id, hf_id[replay_rows], [_FEATURE_HF_ID_BASE - 1]])
        self.row_hf_hydroseq = np.concatenate(
            [hf_hydroseq, hf_hydroseq[replay_rows], [float(decoy_hydroseq)]]
        )
        self.row_hf_mainstem = self.mainstem[self.row_fp].copy()
        self.row_hf_mainstem[-1] = self.mainstem[feature.index("m21")]
        self.row_hf_lengthkm = forest.length_m[self.row_fp] / 1000.0 / forest.reaches[self.row_fp]
        self.row_hl_site = np.concatenate([hl_site, np.full(replay_rows.size + 1, -1)])
        self.row_huc12 = np.concatenate(
            [np.full(reach_fp.size, -1), 120701010901 + np.arange(replay_rows.size), [-1]]
        )
        self.reach_rows = self.row_fp.size
        self.network_rows = self.reach_rows + self.nexus_number.size
        self.lake_hf_id = np.full(size, np.nan)
        last_slot = slot == forest.reaches[reach_fp] - 1
        self.lake_hf_id[reach_fp[last_slot]] = hf_id[last_slot]
        self.first_hf_id = hf_id[first_row]
        self.replay_hf_id = {feature.index(r.flowpath): float(r.reach_id) for r in REPLAY_REACHES}

        self.lakes = np.flatnonzero(forest.lake)
        self.lake_id = _LAKE_ID_BASE + np.arange(self.lakes.size)
        lake_of = np.full(size, -1, np.int64)
        lake_of[self.lakes] = self.lake_id
        self.lake_of = lake_of
        self.pois = np.flatnonzero(forest.poi_id >= 0)
        self.gauges = np.flatnonzero(forest.gauge_site >= 0)
        lake_rng = np.random.default_rng([seed, 2])
        count = self.lakes.size
        self.lake_weir_height = lake_rng.uniform(3.0, 8.0, count)
        self.lake_area = lake_rng.uniform(1.0, 50.0, count)
        self.lake_headroom = lake_rng.uniform(1.0, 5.0, count)
        self.lake_weir_length = lake_rng.uniform(10.0, 60.0, count)
        self.lake_orifice_area = lake_rng.uniform(0.5, 5.0, count)
        self.lake_dam_length = lake_rng.uniform(50.0, 500.0, count)

    # -- flowpath-keyed helpers
    def _fp_ids(self, rows: IndexArray) -> pa.Array:
        return _text("wb-", self.f.number[rows])

    def _toids(self, rows: IndexArray) -> pa.Array:
        terminal = self.toid_terminal[rows]
        return pc.if_else(
            pa.array(terminal),
            _text("tnx-", self.toid_number[rows]),
            _text("nex-", self.toid_number[rows]),
        )

    def _vpuid(self, rows: IndexArray) -> pa.Array:
        return pa.array(self.f.vpuid[rows].astype(object), type=pa.string())

    def layers(self) -> list[_Layer]:
        f = self.f
        return [
            _Layer("flowpaths", f.size, self.flowpaths, "LINESTRING"),
            _Layer("nexus", self.nexus_number.size, self.nexus, "POINT"),
            _Layer("network", self.network_rows, self.network),
            _Layer("pois", self.pois.size, self.poi_table),
            _Layer("hydrolocations", self.gauges.size + self.lakes.size, self.hydrolocations),
            _Layer("lakes", self.lakes.size, self.lake_table),
            # -ml first, as in the v2.2 GeoPackage (the reference's lookup takes it)
            _Layer("flowpath-attributes-ml", f.size, self.attributes_ml),
            _Layer("flowpath-attributes", f.size, self.attributes),
        ]

    def flowpaths(self, start: int, stop: int) -> pa.Table:
        f = self.f
        rows = np.arange(start, stop)
        vertices = np.stack([f.upstream_xy[rows], f.middle_xy[rows], f.downstream_xy[rows]], axis=1)
        poi = f.poi_id[rows]
        return pa.table(
            {
                "id": self._fp_ids(rows),
                "toid": self._toids(rows),
                "mainstem": _floats(self.mainstem[rows]),
                "order": _floats(f.order[rows]),
                "hydroseq": pa.array(f.hydroseq[rows]),
                "lengthkm": _floats(f.length_m[rows] / 1000.0),
                "areasqkm": _floats(f.area_km2[rows]),
                "tot_drainage_areasqkm": _floats(f.drainage_km2[rows]),
                "has_divide": pa.array(np.ones(rows.size, bool)),
                "divide_id": _text("cat-", f.number[rows]),
                "poi_id": _text("", poi, poi >= 0),
                "vpuid": self._vpuid(rows),
                "geometry": _linestrings(vertices),
            }
        )

    def nexus(self, start: int, stop: int) -> pa.Table:
        rows = np.arange(start, stop)
        terminal = self.nexus_terminal[rows]
        number = self.nexus_number[rows]
        poi = self.nexus_poi[rows]
        return pa.table(
            {
                "id": pc.if_else(pa.array(terminal), _text("tnx-", number), _text("nex-", number)),
                "toid": _text("wb-", self.nexus_toid[rows]),
                "type": _strings(np.where(terminal, "terminal", "nexus")),
                "vpuid": _strings(self.nexus_vpuid[rows]),
                "poi_id": _floats(poi, poi >= 0),
                "geometry": _points(self.nexus_xy[rows]),
            }
        )

    def network(self, start: int, stop: int) -> pa.Table:
        f = self.f
        reach_stop = min(stop, self.reach_rows)
        reach = np.arange(start, reach_stop) if start < reach_stop else np.arange(0)
        nexus = np.arange(max(start, self.reach_rows), stop) - self.reach_rows
        fp = self.row_fp[reach]
        n_reach, n_nexus = reach.size, nexus.size
        size = n_reach + n_nexus
        is_reach = np.concatenate([np.ones(n_reach, bool), np.zeros(n_nexus, bool)])
        nexus_terminal = self.nexus_terminal[nexus]
        nexus_number = self.nexus_number[nexus]

        def both(reach_values: pa.Array, nexus_values: pa.Array) -> pa.Array:
            return pa.concat_arrays([reach_values, nexus_values])

        def reach_floats(values: FloatArray) -> pa.Array:
            return both(_floats(values), pa.nulls(n_nexus, pa.float64()))

        site = self.row_hl_site[reach]
        huc = self.row_huc12[reach]
        hl_uri = pc.coalesce(_text("gages-", site, site >= 0), _text("huc12-", huc, huc >= 0))
        poi = f.poi_id[fp]
        nexus_ids = pc.if_else(
            pa.array(nexus_terminal), _text("tnx-", nexus_number), _text("nex-", nexus_number)
        )
        reach_type = np.where(self.toid_terminal[fp], "terminal", "nexus")
        nexus_type = np.where(nexus_terminal, "terminal", "nexus")
        vpuid = np.concatenate([f.vpuid[fp], self.nexus_vpuid[nexus]])
        return pa.table(
            {
                "id": both(self._fp_ids(fp), nexus_ids),
                "toid": both(self._toids(fp), _text("wb-", self.nexus_toid[nexus])),
                "divide_id": both(_text("cat-", f.number[fp]), pa.nulls(n_nexus, pa.string())),
                "ds_id": pa.nulls(size, pa.float64()),
                "mainstem": reach_floats(self.mainstem[fp]),
                "hydroseq": reach_floats(f.hydroseq[fp]),
                "hf_source": _constant(_HF_SOURCE, size, is_reach),
                "hf_id": reach_floats(self.row_hf_id[reach]),
                "lengthkm": reach_floats(f.length_m[fp] / 1000.0),
                "areasqkm": reach_floats(f.area_km2[fp]),
                "tot_drainage_areasqkm": reach_floats(f.drainage_km2[fp]),
                "type": _strings(np.concatenate([reach_type, nexus_type])),
                "vpuid": _strings(vpuid),
                "hf_hydroseq": reach_floats(self.row_hf_hydroseq[reach]),
                "hf_lengthkm": reach_floats(self.row_hf_lengthkm[reach]),
                "hf_mainstem": reach_floats(self.row_hf_mainstem[reach]),
                "topo": _constant("fl-nex", size),
                "poi_id": both(_floats(poi, poi >= 0), pa.nulls(n_nexus, pa.float64())),
                "hl_uri": both(hl_uri, pa.nulls(n_nexus, pa.string())),
            }
        )

    def poi_table(self, start: int, stop: int) -> pa.Table:
        rows = self.pois[start:stop]
        return pa.table(
            {
                "poi_id": pa.array(self.f.poi_id[rows]),
                "id": self._fp_ids(rows),
                "nex_id": self._toids(rows),
                "vpuid": self._vpuid(rows),
            }
        )

    def hydrolocations(self, start: int, stop: int) -> pa.Table:
        f = self.f
        rows = np.concatenate([self.gauges, self.lakes])[start:stop]
        is_lake = np.concatenate([np.zeros(self.gauges.size, bool), np.ones(self.lakes.size, bool)])
        is_lake = is_lake[start:stop]
        hf_id = np.where(is_lake, self.lake_hf_id[rows], self.first_hf_id[rows])
        for position, reach_id in self.replay_hf_id.items():
            hf_id[(rows == position) & ~is_lake] = reach_id
        link = np.where(is_lake, self.lake_of[rows], f.gauge_site[rows])
        links = pc.if_else(
            pa.array(is_lake),
            _text("", link),
            pc.utf8_lpad(_text("", link), width=8, padding="0"),
        )
        reference = _strings(np.where(is_lake, "reservoirs", "gages"))
        xy = f.downstream_xy[rows]
        return pa.table(
            {
                "poi_id": pa.array(f.poi_id[rows]),
                "id": self._fp_ids(rows),
                "nex_id": self._toids(rows),
                "hf_id": _floats(hf_id),
                "hl_link": links,
                "hl_reference": reference,
                "hl_uri": pc.binary_join_element_wise(reference, links, "-"),
                "hl_source": _constant("synthetic", rows.size),
                "hl_x": _floats(xy[:, 0]),
                "hl_y": _floats(xy[:, 1]),
                "vpuid": self._vpuid(rows),
            }
        )

    def lake_table(self, start: int, stop: int) -> pa.Table:
        rows = self.lakes[start:stop]
        size = rows.size
        alt = self.alt[rows]
        weir = alt + self.lake_weir_height[start:stop]
        return pa.table(
            {
                "poi_id": pa.array(self.f.poi_id[rows]),
                "hf_id": _floats(self.lake_hf_id[rows]),
                "lake_id": pa.array(self.lake_id[start:stop]),
                "LkArea": _floats(self.lake_area[start:stop]),
                "LkMxE": _floats(weir + self.lake_headroom[start:stop]),
                "WeirC": _floats(np.full(size, 0.4)),
                "WeirL": _floats(self.lake_weir_length[start:stop]),
                "WeirE": _floats(weir),
                "OrificeC": _floats(np.full(size, 0.1)),
                "OrificeA": _floats(self.lake_orifice_area[start:stop]),
                "OrificeE": _floats(alt + 1.0),
                "ifd": _floats(np.full(size, 0.9)),
                "Dam_Length": _floats(self.lake_dam_length[start:stop]),
                "vpuid": self._vpuid(rows),
            }
        )

    def _attribute_columns(
        self, rows: IndexArray, channel: dict[str, FloatArray]
    ) -> dict[str, pa.Array]:
        f = self.f
        site = f.gauge_site[rows]
        lake = self.lake_of[rows]
        return {
            "id": self._fp_ids(rows),
            "toid": self._toids(rows),
            "vpuid": self._vpuid(rows),
            "Length_m": _floats(channel["Length_m"][rows]),
            "alt": _floats(self.alt[rows]),
            "So": _floats(channel["So"][rows]),
            "MusX": _floats(np.full(rows.size, 0.2)),
            "MusK": _floats(np.full(rows.size, 3600.0)),
            "gage": pc.utf8_lpad(_text("", site, site >= 0), width=8, padding="0"),
            "WaterbodyID": _text("", lake, lake >= 0),
            "n": _floats(channel["n"][rows]),
            "BtmWdth": _floats(channel["BtmWdth"][rows]),
            "TopWdth": _floats(channel["TopWdth"][rows]),
            "ChSlp": _floats(channel["ChSlp"][rows]),
            "nCC": _floats(channel["nCC"][rows]),
            "TopWdthCC": _floats(channel["TopWdthCC"][rows]),
            "Y": _floats(channel["Y"][rows]),
        }

    def attributes(self, start: int, stop: int) -> pa.Table:
        return pa.table(self._attribute_columns(np.arange(start, stop), self.f.channel))

    def attributes_ml(self, start: int, stop: int) -> pa.Table:
        rows = np.arange(start, stop)
        columns = self._attribute_columns(rows, self.f.channel_ml)
        channel = self.f.channel_ml
        top_cc, top = channel["TopWdthCC"][rows], channel["TopWdth"][rows]
        columns["YCC"] = _floats(channel["Y"][rows] * (1.0 + top / top_cc))
        columns["dingman_r"] = _floats(2.0 + 40.0 * channel["n"][rows])
        return pa.table(columns)


# ------------------------------------------------------------------ writers

_WKT_4326 = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
    'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
    'AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)
_WKT_5070 = (
    'PROJCS["NAD83 / Conus Albers",GEOGCS["NAD83",DATUM["North_American_Datum_1983",'
    'SPHEROID["GRS 1980",6378137,298.257222101,AUTHORITY["EPSG","7019"]],'
    'AUTHORITY["EPSG","6269"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4269"]],'
    'PROJECTION["Albers_Conic_Equal_Area"],PARAMETER["latitude_of_center",23],'
    'PARAMETER["longitude_of_center",-96],PARAMETER["standard_parallel_1",29.5],'
    'PARAMETER["standard_parallel_2",45.5],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["metre",1,AUTHORITY["EPSG","9001"]],'
    'AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","5070"]]'
)
_SRS_ROWS = [
    (
        "Undefined Cartesian SRS",
        -1,
        "NONE",
        -1,
        "undefined",
        "undefined Cartesian coordinate reference system",
    ),
    (
        "Undefined geographic SRS",
        0,
        "NONE",
        0,
        "undefined",
        "undefined geographic coordinate reference system",
    ),
    (
        "WGS 84 geodetic",
        4326,
        "EPSG",
        4326,
        _WKT_4326,
        "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid",
    ),
    ("NAD83 / Conus Albers", SRS_ID, "EPSG", SRS_ID, _WKT_5070, None),
]
# GeoPackage 1.3 core tables (clause 1.1.2, 1.1.3, 2.1.5).
_GPKG_CORE_DDL = """
CREATE TABLE gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
"""
_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10300  # 1.3.0
_GP_HEADER = np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs_id", "<i4")])
_GP_HEADER_XY = np.dtype(
    [
        ("magic", "S2"),
        ("version", "u1"),
        ("flags", "u1"),
        ("srs_id", "<i4"),
        ("envelope", "<f8", (4,)),
    ]
)


def _chunks(rows: int) -> Iterator[tuple[int, int]]:
    yield from ((start, min(start + _CHUNK_ROWS, rows)) for start in range(0, rows, _CHUNK_ROWS))
    if rows == 0:
        yield 0, 0


def _geo_metadata(geometry_type: str) -> bytes:
    kind = {"LINESTRING": "LineString", "POINT": "Point"}[geometry_type]
    column = {"encoding": "WKB", "geometry_types": [kind], "crs": EPSG_5070_PROJJSON}
    document = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return json.dumps(document, sort_keys=True).encode()


def _write_parquet(layer: _Layer, path: Path) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for start, stop in _chunks(layer.rows):
            table = layer.build(start, stop)
            if writer is None:
                metadata = (
                    {b"geo": _geo_metadata(layer.geometry_type)} if layer.geometry_type else None
                )
                writer = pq.ParquetWriter(
                    path, table.schema.with_metadata(metadata), compression="zstd"
                )
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
    finally:
        if writer is not None:
            writer.close()


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "INTEGER"
    if pa.types.is_floating(arrow_type):
        return "REAL"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "TEXT"
    return "BLOB"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _gpkg_blobs(wkb: pa.Array, geometry_type: str) -> tuple[list[bytes], FloatArray]:
    """GeoPackage geometry blobs for WKB values, and their bounds (minx, miny, maxx, maxy)."""
    import shapely  # only the GeoPackage writer needs it

    values = wkb.to_pylist()
    bounds = shapely.bounds(shapely.from_wkb(np.array(values, dtype=object))).reshape(-1, 4)
    if geometry_type == "POINT":  # no envelope: the point is its own
        header = np.zeros(len(values), dtype=_GP_HEADER)
        header["flags"] = 0b0000_0001  # little-endian, no envelope
    else:
        header = np.zeros(len(values), dtype=_GP_HEADER_XY)
        header["flags"] = 0b0000_0011  # little-endian, envelope [minx, maxx, miny, maxy]
        header["envelope"] = bounds[:, [0, 2, 1, 3]]
    header["magic"], header["version"], header["srs_id"] = b"GP", 0, SRS_ID
    raw = header.tobytes()
    width = header.dtype.itemsize
    blobs = [raw[i * width : (i + 1) * width] + value for i, value in enumerate(values)]
    return blobs, bounds


def _write_gpkg_layer(connection: sqlite3.Connection, layer: _Layer) -> None:
    table_name = _quote(layer.name)
    bounds = np.array([np.inf, np.inf, -np.inf, -np.inf])
    created = False
    for start, stop in _chunks(layer.rows):
        table = layer.build(start, stop)
        names = [name for name in table.schema.names if name != "geometry"]
        if not created:
            columns = ['"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL']
            if layer.geometry_type:
                columns.append(f'"geom" {layer.geometry_type}')
            columns += [f"{_quote(n)} {_sql_type(table.schema.field(n).type)}" for n in names]
            connection.execute(f"CREATE TABLE {table_name} ({', '.join(columns)})")
            created = True
        values = [table.column(name).to_pylist() for name in names]
        targets = [_quote(n) for n in names]
        if layer.geometry_type:
            blobs, chunk_bounds = _gpkg_blobs(
                table.column("geometry").combine_chunks(), layer.geometry_type
            )
            if len(blobs):
                bounds[:2] = np.minimum(bounds[:2], chunk_bounds[:, :2].min(axis=0))
                bounds[2:] = np.maximum(bounds[2:], chunk_bounds[:, 2:].max(axis=0))
            values.insert(0, blobs)
            targets.insert(0, '"geom"')
        marks = ", ".join("?" * len(targets))
        connection.executemany(
            f"INSERT INTO {table_name} ({', '.join(targets)}) VALUES ({marks})",
            zip(*values, strict=True),
        )
    if layer.geometry_type:
        extent = [float(v) for v in bounds] if np.isfinite(bounds).all() else [None] * 4
        connection.execute(
            "INSERT INTO gpkg_contents VALUES (?, 'features', ?, '', ?, ?, ?, ?, ?, ?)",
            (layer.name, layer.name, _LAST_CHANGE, *extent, SRS_ID),
        )
        connection.execute(
            "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
            (layer.name, layer.geometry_type, SRS_ID),
        )
    else:
        connection.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
            "last_change) VALUES (?, 'attributes', ?, '', ?)",
            (layer.name, layer.name, _LAST_CHANGE),
        )


def _write_geopackage(layers: Sequence[_Layer], path: Path) -> None:
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA application_id = {_GPKG_APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {_GPKG_USER_VERSION}")
        connection.executescript(_GPKG_CORE_DDL)
        connection.executemany(
            "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", _SRS_ROWS
        )
        for layer in layers:
            _write_gpkg_layer(connection, layer)
        connection.commit()
    finally:
        connection.close()


# ------------------------------------------------------------------ entry points


def _manifest(forest: _Forest, tables: _Tables, seed: int, formats: list[str]) -> dict[str, Any]:
    """What the output holds, for tests and benchmarks to look up instead of guessing."""
    feature = forest.feature

    def wb(label: str) -> str:
        return f"wb-{int(feature.number[feature.index(label)])}"

    lake = feature.index(LAKE_FLOWPATH)
    reaches = {}
    for reach in REPLAY_REACHES:
        labels = EXPECTED_SEGMENTS[reach.reach_id]
        reaches[str(reach.reach_id)] = {
            "lid": reach.lid,
            "flowpath": wb(reach.flowpath),
            "segment": [wb(label) for label in labels],
            "stream_order": int(forest.order[feature.index(reach.flowpath)]),
            "lake_poi_id": int(forest.poi_id[lake]) if labels[-1] == LAKE_FLOWPATH else None,
        }
    return {
        "generator": "devstack.make_hydrofabric",
        "seed": seed,
        "flowpaths": forest.size,
        "basins": forest.basin_count,
        "network_rows": tables.network_rows,
        "srs": f"EPSG:{SRS_ID}",
        "formats": formats,
        "layers": [layer.name for layer in tables.layers()],
        "main_stem": [wb(f"m{i}") for i in range(MAIN_STEM_LENGTH)],
        "order_2_tributary": [wb(f"t{i}") for i in range(8)],
        "order_4_tributary": [wb(f"u{i}") for i in range(3)],
        "lake": {
            "flowpath": wb(LAKE_FLOWPATH),
            "main_stem_position": int(LAKE_FLOWPATH[1:]),
            "poi_id": int(forest.poi_id[lake]),
            "lake_id": int(tables.lake_of[lake]),
        },
        "reaches": reaches,
    }


def generate(
    out_dir: str | Path,
    *,
    flowpaths: int = FEATURE_FLOWPATHS,
    seed: int = DEFAULT_SEED,
    formats: str = "auto",
) -> dict[str, Any]:
    """Write the hydrofabric under ``out_dir`` and return its manifest.

    ``formats``: ``both``, ``parquet``, ``gpkg``, or ``auto`` (both up to
    200,000 flowpaths, Parquet only above). ``out_dir/parquet`` is replaced.
    """
    if formats not in FORMATS:
        raise ValueError(f"formats must be one of {FORMATS}, got {formats!r}")
    if formats == "auto":
        formats = "both" if flowpaths <= AUTO_GPKG_LIMIT else "parquet"
    written = ["gpkg", "parquet"] if formats == "both" else [formats]
    forest = _build_forest(seed, flowpaths)
    tables = _Tables(forest, seed)
    layers = tables.layers()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "parquet" in written:
        folder = out / PARQUET_DIR
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for layer in layers:
            _write_parquet(layer, folder / f"{layer.name}.parquet")
    if "gpkg" in written:
        _write_geopackage(layers, out / GPKG_NAME)
    manifest = _manifest(forest, tables, seed, written)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=SAMPLE_HYDROFABRIC,
        help=f"output folder (default {SAMPLE_HYDROFABRIC})",
    )
    parser.add_argument(
        "--flowpaths",
        type=int,
        default=FEATURE_FLOWPATHS,
        help=f"total flowpaths (default {FEATURE_FLOWPATHS}: the feature basin alone)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--formats", choices=FORMATS, default="auto")
    args = parser.parse_args(argv)
    manifest = generate(args.out, flowpaths=args.flowpaths, seed=args.seed, formats=args.formats)
    print(
        f"wrote {manifest['flowpaths']} flowpaths in {manifest['basins']} basins, "
        f"{manifest['network_rows']} network rows ({', '.join(manifest['formats'])}) to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
