"""A worker on a national hydrofabric: start to ready, memory and extraction (issue #14.4).

For each size (``--flowpaths``, default 1,000,000 and 3,000,000 synthetic flowpaths,
generated once into ``bench/out/``), in one run:

* **old path**: today's cold index build as it was before the artifact (the
  ``rnr/hydro/segments.py`` of commit ``OLD_COMMIT``, read with ``git show``): read the
  columns and index them, in a fresh process; seconds and peak RSS;
* **artifact build**: ``build_artifact`` from the local Parquet files, fresh process;
* the **real worker** (``python -m services.worker``, a private RabbitMQ node from
  ``devstack.brokers``, moto server holding the hydrofabric), three starts: with no
  artifact anywhere (it builds and uploads it), with a fresh cache (it downloads it),
  and with the cache already filled (the target: hydrofabric and artifact local). Each:
  process start to ``/readyz`` 200, and the process's peak RSS (``VmHWM``);
* **warm extraction**: a fresh process memory-maps the cached artifact as the worker
  does and extracts the segments of 2,000 random reach ids twice; the median of the
  second pass, and the process's peak RSS.

The numba cache is filled first (as the worker image's build does), so the starts do
not compile. Usage: ``python bench/national_scale.py [--flowpaths 1000000 3000000]``.
Progress on stderr, figures on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

OLD_COMMIT = "2c614da"  # the last commit indexing the hydrofabric at every start-up
OUT = REPO_ROOT / "bench" / "out"
LOCATION = "hydrofabric/national"
LAYER = "flowpath-attributes-ml"
TARGET_READY_S, TARGET_RSS_MIB, TARGET_EXTRACT_MS = 5.0, 1024.0, 1.0


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_hydrofabric(flowpaths: int) -> Path:
    folder = OUT / f"hydrofabric-{flowpaths}"
    if not (folder / "parquet" / "network.parquet").exists():
        from devstack.make_hydrofabric import generate

        progress(f"generating a {flowpaths:,}-flowpath hydrofabric into {folder}")
        generate(folder, flowpaths=flowpaths, formats="parquet")
    return folder / "parquet"


def run_json(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its last stdout line is a JSON object."""
    finished = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"subprocess failed:\n{finished.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


_OLD_BUILD = """
import importlib.util, json, resource, sys, time
spec = importlib.util.spec_from_file_location("old_segments", sys.argv[1])
old = importlib.util.module_from_spec(spec)
sys.modules["old_segments"] = old
spec.loader.exec_module(old)
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric
started = time.perf_counter()
with open_hydrofabric(sys.argv[2]) as reader:
    index = old.NetworkIndex.from_reader(reader, attributes_layer(reader))
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_ARTIFACT_BUILD = """
import json, resource, sys, time
from pathlib import Path
from rnr.hydro_io.index_artifact import build_artifact, identify_source
source = identify_source(Path(sys.argv[1]), "flowpath-attributes-ml")
started = time.perf_counter()
folder = build_artifact(source, Path(sys.argv[2]))
size = sum(p.stat().st_size for p in folder.iterdir())
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": size,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_EXTRACT = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
from rnr.hydro.id_keys import number_of
from rnr.hydro.segments import SegmentError
from rnr.hydro_io.index_artifact import open_artifact
folder = Path(sys.argv[1])
started = time.perf_counter()
index = open_artifact(folder, folder.name)
open_s = time.perf_counter() - started
keys = index.arrays["reach_key"]
picks = np.random.default_rng(5).choice(keys.size, size=2000, replace=False)
reaches = [str(number_of(keys[i])) for i in picks]
passes = []
for _ in range(2):
    timings = []
    for reach in reaches:
        t = time.perf_counter()
        try:
            index.extract_segment(reach)
        except SegmentError:
            pass
        timings.append(time.perf_counter() - t)
    passes.append(timings)
print(json.dumps({"open_ms": 1000 * open_s,
                  "first_median_ms": 1000 * float(np.median(passes[0])),
                  "warm_median_ms": 1000 * float(np.median(passes[1])),
                  "warm_p99_ms": 1000 * float(np.percentile(passes[1], 99)),
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Stack:
    """moto server and a private RabbitMQ node, for the worker starts."""

    def __init__(self, base: Path) -> None:
        from devstack.brokers import private_brokers

        self.base = base
        self._brokers = private_brokers(rabbitmq=True, redis=False)
        node = self._brokers.__enter__().rabbitmq
        assert node is not None
        self.amqp_url = node.amqp_url
        self.moto_port = free_port()
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def stop(self) -> None:
        self.moto.terminate()
        self.moto.wait(10)
        self._brokers.__exit__(None, None, None)


def worker_start(stack: Stack, bucket: str, cache: Path, numba_cache: Path) -> dict[str, Any]:
    """Start the real worker; seconds to /readyz 200, its VmHWM, where its index came from."""
    port = free_port()
    env = {
        **os.environ,
        "RABBITMQ_URL": stack.amqp_url,
        "RABBITMQ_QUEUE": f"bench.{port}",
        "AWS_ENDPOINT_URL": stack.endpoint,
        "INPUT_BUCKET": bucket,
        "OUTPUT_BUCKET": bucket,
        "HYDROFABRIC_LOCATION": LOCATION,
        "HYDROFABRIC_CACHE_DIR": str(cache),
        "HTTP_PORT": str(port),
        "NUMBA_CACHE_DIR": str(numba_cache),
        "LOG_LEVEL": "WARNING",
    }
    log = (stack.base / f"worker-{port}.log").open("w")
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.worker"], env=env, cwd=REPO_ROOT, stdout=log, stderr=log
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if worker.poll() is not None or time.perf_counter() - started > 600:
                raise RuntimeError(f"worker did not become ready; see {log.name}")
            time.sleep(0.02)
        ready_s = time.perf_counter() - started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
        outcome = next(
            line.split('outcome="')[1].split('"')[0]
            for line in metrics.splitlines()
            if line.startswith("rnr_worker_network_index_loads_total{") and line.endswith(" 1.0")
        )
        return {"ready_s": ready_s, "peak_mib": vm_hwm_mib(worker.pid), "index": outcome}
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()


def upload_hydrofabric(stack: Stack, bucket: str, parquet: Path) -> None:
    s3 = stack.s3()
    s3.create_bucket(Bucket=bucket)
    for path in sorted(parquet.glob("*.parquet")):
        s3.upload_file(str(path), bucket, f"{LOCATION}/{path.name}")


def cache_without_index(filled: Path, target: Path) -> Path:
    """A worker cache holding the hydrofabric (hard links) and its .etag files only."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(filled, target, copy_function=os.link, ignore=shutil.ignore_patterns("index"))
    return target


def measure(flowpaths: int, stack: Stack, work: Path, numba_cache: Path) -> dict[str, Any]:
    parquet = ensure_hydrofabric(flowpaths)
    old_source = work / "old_segments.py"
    old_source.write_text(
        subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:rnr/hydro/segments.py"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    figures: dict[str, Any] = {"flowpaths": flowpaths}
    progress(f"{flowpaths:,}: the old path, a cold index build (fresh process)")
    figures["old"] = run_json(_OLD_BUILD, str(old_source), str(parquet))
    progress(f"{flowpaths:,}: building the artifact (fresh process)")
    figures["build"] = run_json(_ARTIFACT_BUILD, str(parquet), str(work / f"local-{flowpaths}"))
    bucket = f"bench-{flowpaths}"
    progress(f"{flowpaths:,}: uploading the hydrofabric to moto")
    upload_hydrofabric(stack, bucket, parquet)
    first = work / f"cache-{flowpaths}-a"
    progress(f"{flowpaths:,}: worker start, no artifact anywhere (builds and uploads it)")
    figures["worker_built"] = worker_start(stack, bucket, first, numba_cache)
    second = cache_without_index(first, work / f"cache-{flowpaths}-b")
    progress(f"{flowpaths:,}: worker start, artifact in the bucket only (downloads it)")
    figures["worker_downloaded"] = worker_start(stack, bucket, second, numba_cache)
    progress(f"{flowpaths:,}: worker start, hydrofabric and artifact in the local cache")
    figures["worker_cached"] = worker_start(stack, bucket, second, numba_cache)
    [folder] = (second / "index" / "v1").iterdir()
    progress(f"{flowpaths:,}: warm extraction on the memory-mapped artifact")
    figures["extract"] = run_json(_EXTRACT, str(folder))
    return figures


def report(f: dict[str, Any]) -> None:
    old, build, cached = f["old"], f["build"], f["worker_cached"]
    print(f"{f['flowpaths']:,} flowpaths:")
    print(
        f"  old path (cold index build, before the artifact): {old['seconds']:.1f} s, "
        f"peak {old['peak_mib']:.0f} MiB"
    )
    print(
        f"  artifact build: {build['seconds']:.1f} s, peak {build['peak_mib']:.0f} MiB, "
        f"{build['bytes'] / 2**20:.0f} MiB on disk"
    )
    for name, label in (
        ("worker_built", "no artifact (builds, uploads)"),
        ("worker_downloaded", "artifact in the bucket (downloads)"),
        ("worker_cached", "artifact in the local cache"),
    ):
        w = f[name]
        print(
            f"  worker start -> /readyz 200, {label}: {w['ready_s']:.2f} s, "
            f"VmHWM {w['peak_mib']:.0f} MiB (index {w['index']})"
        )
    e = f["extract"]
    print(
        f"  extraction on the mapped artifact: open {e['open_ms']:.1f} ms, first pass median "
        f"{e['first_median_ms']:.3f} ms, warm median {e['warm_median_ms']:.3f} ms "
        f"(p99 {e['warm_p99_ms']:.2f} ms), process peak {e['peak_mib']:.0f} MiB"
    )
    print(
        f"  vs the old path: ready {old['seconds'] / cached['ready_s']:.1f}x sooner than the "
        f"old index build alone, peak RSS {cached['peak_mib'] / old['peak_mib']:.2f} of it; "
        f"targets: ready <= {TARGET_READY_S:.0f} s "
        f"({'met' if cached['ready_s'] <= TARGET_READY_S else 'missed'}), "
        f"RSS <= {TARGET_RSS_MIB:.0f} MiB "
        f"({'met' if cached['peak_mib'] <= TARGET_RSS_MIB else 'missed'}), "
        f"extraction <= {TARGET_EXTRACT_MS:.0f} ms "
        f"({'met' if e['warm_median_ms'] <= TARGET_EXTRACT_MS else 'missed'})"
    )


def main() -> None:
    # moto needs credentials to sign with; never real ones.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowpaths", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="national-", dir=OUT))
    numba_cache = work / "numba-cache"
    progress("filling a numba cache as the worker image's build does")
    subprocess.run(
        [sys.executable, "-c", "from rnr.hydro.muskingum_cunge import warm_up; warm_up()"],
        cwd=REPO_ROOT,
        env={**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)},
        check=True,
    )
    progress("starting moto and a private RabbitMQ node")
    stack = Stack(work)
    results = []
    try:
        for flowpaths in args.flowpaths:
            results.append(measure(flowpaths, stack, work, numba_cache))
            report(results[-1])
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
