"""Routing throughput, segment extraction and worker memory (issues #3 and #14).

Prints:

* routing, 1152 five-minute steps (4 days), against T-Route's Fortran kernel measured
  on this machine class (the ``TROUTE_*`` anchor below) and against this project's
  one-segment-at-a-time kernel (``_mc_compiled.route_compiled``, the form the kernel had
  before the lanes) measured in the same run: 100,000 segments (independent chains of
  50 with channel attributes in the v2.2 ranges), 10,000 segments (the real HPDT2 chain
  tiled 200 times, from ``$RNR_SHARED_DIR/conformance/hpdt2``; synthetic chains if that
  is absent, said so in the output) and HPDT2 alone per call; one thread, and two
  threads on the two large cases;
* segment extraction on a synthetic hydrofabric of ``--flowpaths`` flowpaths: cold
  (read the columns and build the index, as a worker does at start-up, then extract
  once) and warm (median over many reach ids on the built index);
* peak resident memory of a process holding that hydrofabric's index after routing a
  forecast, i.e. what a worker task needs.

Usage: ``python bench/routing.py [--flowpaths 1000000] [--steps 1152] [--runs 3]
[--routing-only]``. The synthetic hydrofabric is generated once into ``bench/out/``
(about 20 s for a million flowpaths).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rnr.hydro._mc_compiled import route_compiled  # noqa: E402
from rnr.hydro.muskingum_cunge import ChannelParameters, route, warm_up  # noqa: E402

CHAIN = 50
# Issue 14's targets: segment-steps per second at 100,000 segments, ms per HPDT2 call.
TARGET_SEGMENT_STEPS_PER_S = 5_400_000
TARGET_HPDT2_MS = 8.0
# The anchor (issue 14): T-Route's own Fortran Muskingum-Cunge kernel (the NGWPC fork
# version that produced the shared HPDT2 reference), driven by a C loop that mirrors its
# Cython mc_reach, serial, 1152 five-minute steps, on a 2 vCPU AMD EPYC of this machine
# class. (low, high) of its runs: its -O2 build, and its newest kernel at -O3
# -march=native. Segment-steps per second for the networks, ms per call for HPDT2.
TROUTE_O2 = {"100,000": (2.64e6, 2.71e6), "10,000": (2.65e6, 2.74e6), "HPDT2": (19.1, 20.0)}
TROUTE_NATIVE = {"100,000": (3.31e6, 3.44e6), "10,000": (3.40e6, 3.56e6), "HPDT2": (15.3, 15.7)}


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def chains(segments: int, seed: int = 7) -> tuple[ChannelParameters, np.ndarray, np.ndarray]:
    """Independent chains of 50 with channel attributes in the v2.2 ranges."""
    rng = np.random.default_rng(seed)
    bottom = rng.uniform(10, 60, segments)
    top = bottom * rng.uniform(1.2, 2.5, segments)
    params = ChannelParameters(
        length_m=rng.uniform(500, 5000, segments),
        bottom_width_m=bottom,
        top_width_m=top,
        floodplain_top_width_m=top * 3,
        manning_n=rng.uniform(0.03, 0.06, segments),
        floodplain_manning_n=rng.uniform(0.06, 0.12, segments),
        side_slope=rng.uniform(0.5, 3, segments),
        bed_slope=10 ** rng.uniform(-4, np.log10(5e-3), segments),
    )
    downstream = np.arange(1, segments + 1)
    downstream[CHAIN - 1 :: CHAIN] = -1
    downstream[-1] = -1
    return params, downstream, rng.uniform(100, 3000, (segments + CHAIN - 1) // CHAIN)


class RoutingCase:
    """One network and its forcing, in the kernel's argument form."""

    def __init__(self, params, downstream, lateral, flow, depth, note: str = "") -> None:
        self.params, self.downstream, self.note = params, np.asarray(downstream), note
        self.lateral = np.ascontiguousarray(lateral, dtype=np.float32)
        size = self.downstream.size
        self.flow = np.broadcast_to(np.asarray(flow, np.float32), (size,)).copy()
        self.depth = np.broadcast_to(np.asarray(depth, np.float32), (size,)).copy()

    @property
    def segment_steps(self) -> int:
        return self.lateral.size

    def lanes(self, threads: int = 1) -> float:
        """Seconds for route() (the lane kernel)."""
        started = time.perf_counter()
        route(self.params, self.downstream, self.lateral, self.flow, self.depth, threads=threads)
        return time.perf_counter() - started

    def scalar(self) -> float:
        """Seconds for the one-segment-at-a-time kernel, outputs allocated as route() does."""
        started = time.perf_counter()
        p = self.params
        out = [np.empty(self.lateral.shape, np.float32) for _ in range(3)]
        route_compiled(
            p.length_m, p.bottom_width_m, p.top_width_m, p.floodplain_top_width_m, p.manning_n,
            p.floodplain_manning_n, p.side_slope, p.bed_slope, self.downstream.astype(np.int64),
            self.lateral, self.flow.copy(), self.depth.copy(), np.float32(300.0), *out,
        )  # fmt: skip
        return time.perf_counter() - started


def synthetic_case(segments: int, steps: int, note: str = "") -> RoutingCase:
    params, downstream, flood_m3_s = chains(segments)
    lateral = np.zeros((steps, segments), np.float32)
    heads = np.arange(0, segments, CHAIN)
    lateral[:, heads] = np.linspace(0.3, 1.0, steps)[:, None] * flood_m3_s[: heads.size]
    return RoutingCase(params, downstream, lateral, 100.0, 0.0, note)


def hpdt2_case(copies: int, steps: int) -> RoutingCase:
    """The HPDT2 conformance case's kernel inputs (T-Route's forcing held 36 steps per
    3-hourly value, its initial state), the chain repeated ``copies`` times."""
    shared = os.environ.get("RNR_SHARED_DIR")
    folder = Path(shared or "/nonexistent") / "conformance" / "hpdt2"
    if not folder.is_dir():
        note = "synthetic chains: RNR_SHARED_DIR holds no conformance/hpdt2"
        return synthetic_case(CHAIN * copies, steps, note)
    from tests.support.hpdt2 import channel, read_rows

    case = channel(folder)
    by_key = {int(float(row["key"])): row for row in read_rows(folder / "kernel_input_q0.csv")}
    q0 = np.array([float(by_key[key]["qd0"]) for key in case.keys])
    h0 = np.array([float(by_key[key]["h0"]) for key in case.keys])
    lateral_rows = read_rows(folder / "kernel_input_qlats.csv")
    by_lateral = {int(float(row["key"])): row for row in lateral_rows}
    columns = [name for name in lateral_rows[0] if name != "key"]
    intervals = np.array([[float(by_lateral[k][c]) for c in columns] for k in case.keys]).T
    lateral = np.repeat(intervals, 36, axis=0)[:steps]
    size = len(case.keys)
    fields = ChannelParameters.__dataclass_fields__
    params = ChannelParameters(**{f: np.tile(getattr(case.params, f), copies) for f in fields})
    offsets = np.repeat(np.arange(copies) * size, size)
    downstream = np.where(
        np.tile(case.downstream, copies) >= 0, np.tile(case.downstream, copies) + offsets, -1
    )
    return RoutingCase(
        params, downstream, np.tile(lateral, copies), np.tile(q0, copies), np.tile(h0, copies)
    )


def median_seconds(measure, runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def routing_section(steps: int, runs: int) -> None:
    """The routing table: each case's median over ``runs`` of every variant, measured in
    the same run, with ratios against the same-run scalar kernel and the anchor."""
    cases = [
        ("100,000", synthetic_case(100_000, steps)),
        ("10,000", hpdt2_case(200, steps)),
        ("HPDT2", hpdt2_case(1, steps)),
    ]
    print(f"routing, {steps} steps of 300 s; median of {runs} runs; one thread unless said")
    print(
        f"  {'case':<40}{'lanes':>12}{'scalar':>12}{'÷ scalar':>10}{'÷ T-Route -O2':>15}"
        f"{'÷ -O3 native':>14}{'2 threads ÷ 1':>15}"
    )
    for name, case in cases:
        progress(f"routing {name}")
        per_call = name == "HPDT2"
        lanes = median_seconds(case.lanes, runs * 10 if per_call else runs)
        scalar = median_seconds(case.scalar, runs * 10 if per_call else runs)
        o2, native = sum(TROUTE_O2[name]) / 2, sum(TROUTE_NATIVE[name]) / 2
        if per_call:
            figures = f"{lanes * 1e3:>9.2f} ms{scalar * 1e3:>9.2f} ms{scalar / lanes:>10.2f}"
            versus = f"{o2 / (lanes * 1e3):>15.2f}{native / (lanes * 1e3):>14.2f}"
            threaded, label = "", f"HPDT2 alone, per call (target ≤ {TARGET_HPDT2_MS:g} ms)"
        else:
            rate, base = case.segment_steps / lanes, case.segment_steps / scalar
            figures = f"{rate / 1e6:>10.2f} M{base / 1e6:>10.2f} M{rate / base:>10.2f}"
            versus = f"{rate / o2:>15.2f}{rate / native:>14.2f}"
            two = median_seconds(lambda case=case: case.lanes(threads=2), runs)
            threaded, label = f"{lanes / two:>15.2f}", f"{name} segments"
        print(f"  {label:<40}{figures}{versus}{threaded}")
        if case.note:
            print(f"    ({case.note})")
    print(
        f"  lanes and scalar in segment-steps/s (M = million) or ms per call; target at"
        f" 100,000 segments ≥ {TARGET_SEGMENT_STEPS_PER_S / 1e6:g} M on one thread"
    )


def ensure_hydrofabric(flowpaths: int) -> Path:
    folder = REPO_ROOT / "bench" / "out" / f"hydrofabric-{flowpaths}"
    if not (folder / "parquet" / "network.parquet").exists():
        from devstack.make_hydrofabric import generate

        progress(f"generating a {flowpaths:,}-flowpath hydrofabric into {folder}")
        generate(folder, flowpaths=flowpaths, formats="parquet")
    return folder / "parquet"


# Run in a fresh process so peak memory is the worker's, not this script's.
_HOLD_INDEX = """
import json, resource, sys, time
import numpy as np
from rnr.hydro.muskingum_cunge import warm_up
from rnr.hydro.replace_and_route import route_forecast
from rnr.hydro.segments import NetworkIndex
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric
import datetime as dt
started = time.perf_counter()
with open_hydrofabric(sys.argv[1]) as reader:
    index = NetworkIndex.from_reader(reader, attributes_layer(reader))
    reach_ids = reader.read("network", ["hf_id"])["hf_id"]
build = time.perf_counter() - started
reach_ids = [str(int(r)) for r in reach_ids[np.isfinite(reach_ids)]]
rng = np.random.default_rng(1)
picks = rng.choice(len(reach_ids), size=min(300, len(reach_ids)), replace=False)
first = time.perf_counter()
segment = None
for i in picks:
    try:
        segment = index.extract_segment(reach_ids[i])
        break
    except Exception:
        continue
first_s = time.perf_counter() - first
timings = []
found = 0
for i in picks:
    t = time.perf_counter()
    try:
        candidate = index.extract_segment(reach_ids[i])
        found += 1
        if candidate.size > segment.size:
            segment = candidate
    except Exception:
        pass
    timings.append(time.perf_counter() - t)
warm_up()
t0 = dt.datetime(2025, 5, 5, 21, tzinfo=dt.UTC)
times = [t0 + dt.timedelta(hours=3 * k) for k in range(40)]
route_forecast(segment.parameters, segment.downstream, times, np.linspace(100, 2000, 40), 100.0)
print(json.dumps({
    "build_s": build, "first_extract_s": first_s,
    "warm_median_ms": 1000 * float(np.median(timings)),
    "warm_max_ms": 1000 * float(np.max(timings)), "extracted": found,
    "longest_segment": segment.size, "flowpaths": index.flowpath_count,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowpaths", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=1152, help="5-minute steps (1152 = 4 days)")
    parser.add_argument("--runs", type=int, default=3, help="routing runs per figure (median)")
    parser.add_argument("--routing-only", action="store_true", help="skip extraction and memory")
    args = parser.parse_args()

    progress("compiling (or loading) the kernel")
    warm_up()
    routing_section(args.steps, args.runs)
    if args.routing_only:
        return

    location = ensure_hydrofabric(args.flowpaths)
    progress("building the index in a fresh process")
    finished = subprocess.run(
        [sys.executable, "-c", _HOLD_INDEX, str(location)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    print(f"segment extraction on {figures['flowpaths']:,} flowpaths (Parquet):")
    print(
        f"  cold: read + index {figures['build_s']:.1f} s, first extraction "
        f"{figures['first_extract_s'] * 1000:.1f} ms"
    )
    print(
        f"  warm: median {figures['warm_median_ms']:.2f} ms, max {figures['warm_max_ms']:.2f} ms"
        f" over {figures['extracted']} reaches (target < 50 ms)"
    )
    print(
        f"worker peak memory with that index loaded and one forecast routed: "
        f"{figures['peak_rss_mib']:.0f} MiB (target < 1536 MiB)"
    )


if __name__ == "__main__":
    main()
