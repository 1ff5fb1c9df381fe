"""Routing throughput, segment extraction and worker memory (issue #3 targets).

Prints:

* routing throughput in segment-timesteps per second on networks of 50, 1,000 and
  100,000 segments (independent 50-segment chains with realistic channel parameters,
  one day of 5-minute steps, one core), against the 2,000,000 target and T-Route's
  figure on this machine class (about 1.6 million on 10,000 segments);
* segment extraction on a synthetic hydrofabric of ``--flowpaths`` flowpaths: cold
  (read the columns and build the index, as a worker does at start-up, then extract
  once) and warm (median over many reach ids on the built index);
* peak resident memory of a process holding that hydrofabric's index after routing a
  forecast, i.e. what a worker task needs.

Usage: ``python bench/routing.py [--flowpaths 1000000] [--steps 288]``. The synthetic
hydrofabric is generated once into ``bench/out/`` (about 20 s for a million flowpaths).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rnr.hydro.muskingum_cunge import ChannelParameters, route, warm_up  # noqa: E402

CHAIN = 50
TARGET_SEGMENT_STEPS_PER_S = 2_000_000
TROUTE_SEGMENT_STEPS_PER_S = 1_600_000


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


def routing_rate(segments: int, steps: int) -> float:
    params, downstream, flood_m3_s = chains(segments)
    lateral = np.zeros((steps, segments), np.float32)
    heads = np.arange(0, segments, CHAIN)
    ramp = np.linspace(0.3, 1.0, steps)[:, None]
    lateral[:, heads] = ramp * flood_m3_s[: heads.size]
    started = time.perf_counter()
    route(params, downstream, lateral, 100.0)
    return segments * steps / (time.perf_counter() - started)


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
    parser.add_argument("--steps", type=int, default=288, help="5-minute steps (288 = 1 day)")
    args = parser.parse_args()

    progress("compiling (or loading) the kernel")
    warm_up()
    print(f"routing, {args.steps} steps of 300 s, chains of {CHAIN}, one core:")
    print(f"  {'segments':>9}{'segment-steps/s':>18}{'vs target':>11}{'vs T-Route':>12}")
    for segments in (50, 1_000, 100_000):
        progress(f"routing {segments:,} segments")
        rates = [routing_rate(segments, args.steps) for _ in range(3 if segments < 100_000 else 1)]
        rate = statistics.median(rates)
        print(
            f"  {segments:>9,}{rate:>18,.0f}{rate / TARGET_SEGMENT_STEPS_PER_S:>11.2f}"
            f"{rate / TROUTE_SEGMENT_STEPS_PER_S:>12.2f}"
        )

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
