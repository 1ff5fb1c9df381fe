"""Post-processor reads: flowpaths joined per run, against reading the whole layer.

Prints, on a synthetic hydrofabric of ``--flowpaths`` flowpaths (Parquet):

* building the flowpath lookup (once per hydrofabric version): seconds and size;
* one run's join for ``--gauges`` routed segments: bytes read and seconds from the
  lookup, against the reference system's way (read the whole ``flowpaths`` layer's id,
  length and geometry) and against an id filter pushed down on the layer itself;
* the same from the lookup in S3 (moto server) through pyarrow's S3 filesystem: bytes
  and requests that cross the wire.

Bytes read are the process's ``rchar`` (``/proc/self/io``): every byte that came
through a read call, page cache or not.

Usage: ``python bench/postproc.py [--flowpaths 1000000] [--gauges 20]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from routing import ensure_hydrofabric, progress  # noqa: E402

from rnr.hydro.segments import NetworkIndex  # noqa: E402
from rnr.hydro_io.flowpaths import build_flowpath_lookup, read_flowpaths  # noqa: E402
from rnr.hydro_io.hydrofabric import ParquetReader, attributes_layer  # noqa: E402


def bytes_read() -> int:
    with open("/proc/self/io") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("rchar:"))


def measured(action: Callable[[], Any]) -> tuple[Any, int, float]:
    before, started = bytes_read(), time.perf_counter()
    result = action()
    return result, bytes_read() - before, time.perf_counter() - started


def routed_ids(location: Path, gauges: int, seed: int = 3) -> set[int]:
    """The flowpaths of ``gauges`` segments below random reaches, as routing makes them."""
    with ParquetReader(location) as reader:
        index = NetworkIndex.from_reader(reader, attributes_layer(reader))
        reach_ids = reader.read("network", ["hf_id"])["hf_id"]
    reach_ids = reach_ids[np.isfinite(reach_ids)].astype(np.int64)
    rng = np.random.default_rng(seed)
    wanted: set[int] = set()
    found = 0
    for reach in rng.permutation(reach_ids):
        try:
            segment = index.extract_segment(str(reach))
        except Exception:  # a reach without a segment: take another
            continue
        wanted.update(int(i.removeprefix("wb-")) for i in segment.flowpath_ids)
        found += 1
        if found == gauges:
            break
    return wanted


def megabytes(count: float) -> str:
    return f"{count / 2**20:,.1f} MiB"


def requested_bytes(range_header: str | None, whole: int) -> int:
    """Bytes a GET asked for: its ``Range: bytes=a-b``, or the whole object."""
    if not range_header:
        return whole
    first, _, last = range_header.removeprefix("bytes=").partition("-")
    return min(int(last), whole - 1) - int(first) + 1 if last else whole - int(first)


def s3_figures(lookup: bytes, wanted: set[int]) -> tuple[int, int, float]:
    """Bytes and requests for the join against the lookup in a moto S3 bucket."""
    import boto3
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler

    from rnr.storage.hydrofabric_s3 import s3_filesystem

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    served = {"requests": 0, "bytes": 0}
    original = WSGIRequestHandler.log_request

    def count(handler: WSGIRequestHandler, code: Any = "-", size: Any = "-") -> None:
        if handler.command == "GET":
            served["requests"] += 1
            served["bytes"] += requested_bytes(handler.headers.get("Range"), len(lookup))

    WSGIRequestHandler.log_request = count  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server._server.server_address  # type: ignore[union-attr]
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="bench-postproc")
        s3.put_object(Bucket="bench-postproc", Key="lookup.parquet", Body=lookup)
        served.update(requests=0, bytes=0)
        started = time.perf_counter()
        found = read_flowpaths(
            "bench-postproc/lookup.parquet", wanted, s3_filesystem("us-east-1", endpoint)
        )
        seconds = time.perf_counter() - started
        assert len(found) == len(wanted)
    finally:
        server.stop()
        WSGIRequestHandler.log_request = original  # type: ignore[method-assign]
    return served["bytes"], served["requests"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowpaths", type=int, default=1_000_000)
    parser.add_argument("--gauges", type=int, default=20, help="forecast files in the run")
    args = parser.parse_args()

    location = ensure_hydrofabric(args.flowpaths)
    layer = location / "flowpaths.parquet"
    progress("extracting segments to join")
    wanted = routed_ids(location, args.gauges)

    progress("building the lookup")
    with ParquetReader(location) as reader:
        lookup, _, build_s = measured(lambda: build_flowpath_lookup(reader))
    with tempfile.TemporaryDirectory() as folder:
        lookup_path = Path(folder) / "lookup.parquet"
        lookup_path.write_bytes(lookup)

        progress("joining from the lookup")
        found, lookup_bytes, lookup_s = measured(lambda: read_flowpaths(str(lookup_path), wanted))
        assert len(found) == len(wanted), (len(found), len(wanted))

    progress("reading the whole layer (the reference's way)")
    with ParquetReader(location) as reader:
        geometry = reader.geometry_column("flowpaths") or "geometry"
        _, whole_bytes, whole_s = measured(
            lambda: reader.read("flowpaths", ["id", "lengthkm", geometry])
        )
    progress("id filter pushed down on the layer itself")
    with ParquetReader(location) as reader:
        ids = [f"wb-{i}" for i in sorted(wanted)]
        _, pushed_bytes, pushed_s = measured(
            lambda: reader.read("flowpaths", ["id", "lengthkm", geometry], {"id": ids})
        )
    progress("joining from the lookup in S3 (moto server)")
    s3_bytes, s3_requests, s3_s = s3_figures(lookup, wanted)

    print(f"post-processor flowpath join on {args.flowpaths:,} flowpaths (Parquet):")
    print(f"  layer file: {megabytes(layer.stat().st_size)}")
    print(
        f"  lookup, built once per hydrofabric version: {build_s:.1f} s, {megabytes(len(lookup))}"
    )
    print(f"  one run: {args.gauges} forecast files, {len(wanted):,} segments to join")
    print(f"  {'read':<34}{'bytes read':>14}{'seconds':>10}{'bytes vs whole':>16}")
    for name, count, seconds in (
        ("whole layer (reference)", whole_bytes, whole_s),
        ("id filter on the layer", pushed_bytes, pushed_s),
        ("lookup, local file", lookup_bytes, lookup_s),
        (f"lookup in S3 ({s3_requests} GETs)", s3_bytes, s3_s),
    ):
        print(f"  {name:<34}{megabytes(count):>14}{seconds:>10.3f}{count / whole_bytes:>16.4f}")


if __name__ == "__main__":
    main()
