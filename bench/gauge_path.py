"""The worker's whole per-gauge path, stage by stage, in one worker process (issue #14, part 3).

What one gauge costs a worker, on real components on this machine: the NWPS answers
from the replay server over HTTP (uvicorn on 127.0.0.1, as tests/conftest.py starts
it), segment extraction on the synthetic 1,000,000-flowpath hydrofabric, routing,
NetCDF encoding and the S3 put to moto in server mode (127.0.0.1, as the tests start
it). Prints, on stdout:

* each stage's median time per gauge and its share of the path's time, overall and by
  segment size, timed around the very functions ``services/worker/processing.py``
  calls, in its order: ``NwpsClient.rfc_forecast``, ``NetworkIndex.extract_segment``,
  then (in a worker thread, as the worker does) ``route_forecast`` and
  ``write_forecast_netcdf``, then ``ObjectStore.put_bytes``. The worker calls the middle
  two through ``route_to_netcdf``, which has no seam between them, so they are timed
  around the same two library calls it makes, with the same arguments; every staged
  file is checked to be the file ``route_to_netcdf`` writes;
* routed gauges per second: staged, one gauge at a time; through the worker's own
  per-gauge function (``ReplaceAndRouteProcessor._gauge``), one gauge at a time, which
  the staged sum should match; and through the worker's product path (the processor
  called with a delivery, ``WORKER_GAUGE_CONCURRENCY`` = 4 gauges at a time);
* the ratio to the reference system's way, one T-Route process per gauge, counting its
  start-up alone (3.6-4.0 s for HPDT2 on this machine class).

Gauges: the replay fixtures' four routed gauges (HPDT2, TRKT2, PRLL1, ILRO2; the
generator puts their reaches into every synthetic hydrofabric, as in the local run)
plus ``--gauges`` synthetic ones. Those are gauges of the synthetic hydrofabric
(``hydrolocations`` rows of ``gages``), drawn evenly from three segment-size classes,
with NWPS answers written as replay fixtures into ``bench/out/`` (the replay server's
own fixtures plus these) and served by the replay server itself. RFC forecasts are
3-hourly; the synthetic ones span 5, 7 and 10 days in turn.

Usage: ``python bench/gauge_path.py [--flowpaths 1000000] [--gauges 24] [--rounds 5]``.
Progress goes to stderr, figures to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime as dt
import json
import logging
import math
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from routing import ensure_hydrofabric, progress  # noqa: E402

from devstack.replay.make_fixtures import DEFAULT_FIXTURES_DIR, dump_json  # noqa: E402
from devstack.replay.server import create_app  # noqa: E402
from rnr.core.logging import setup_logging  # noqa: E402
from rnr.hydro.forecast import RfcForecast  # noqa: E402
from rnr.hydro.forecast_file import ForecastAttributes  # noqa: E402
from rnr.hydro.muskingum_cunge import DT_S, warm_up  # noqa: E402
from rnr.hydro.replace_and_route import route_forecast  # noqa: E402
from rnr.hydro.segments import NetworkIndex, Segment  # noqa: E402
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric  # noqa: E402
from rnr.hydro_io.netcdf import read_forecast_netcdf, write_forecast_netcdf  # noqa: E402
from rnr.hydro_io.routed_forecast import route_to_netcdf  # noqa: E402
from rnr.messaging.consumer import Delivery, Handled  # noqa: E402
from rnr.messaging.models import ProductMessage  # noqa: E402
from rnr.storage.output_layout import output_key  # noqa: E402
from rnr.storage.s3 import ObjectStore  # noqa: E402
from rnr.upstream.http import UpstreamClient  # noqa: E402
from rnr.upstream.nwps import NwpsClient  # noqa: E402
from rnr.upstream.nws import NwsClient  # noqa: E402
from services.worker.processing import NETCDF_CONTENT_TYPE, ReplaceAndRouteProcessor  # noqa: E402
from tests.support.servers import free_port, uvicorn_in_thread  # noqa: E402

# The reference system started one T-Route process per gauge; its start-up alone (Python,
# T-Route's imports, reading the hydrofabric) took 3.6-4.0 s for HPDT2 on this machine
# class (2 vCPU AMD EPYC). Source: issue 14, part 3 (`issues show 14`), measured on this
# machine class by the session that filed it. Routing and writing come on top of that.
TROUTE_STARTUP_S = (3.6, 4.0)

# The replay fixtures' gauges that the gate routes (the others are skip cases).
REPLAY_ROUTED = ("HPDT2", "TRKT2", "PRLL1", "ILRO2")
FORECAST_DAYS = (5, 7, 10)
FORECAST_STEP_HOURS = 3
STEPS_PER_VALUE = FORECAST_STEP_HOURS * 3600 // int(DT_S)  # routed steps per forecast interval
# RFC forecasts start at the hour after the last observation; the replay's HPDT2 does.
FORECAST_T0 = dt.datetime(2025, 5, 5, 21, tzinfo=dt.UTC)
# Segment-size classes the synthetic gauges are drawn from, evenly (flowpaths).
SIZE_CLASSES = (("1-10", 1, 10), ("11-60", 11, 60), ("61+", 61, 1 << 30))
STAGES = ("fetch", "extraction", "routing", "encoding", "upload")
WORKER_GAUGE_CONCURRENCY = 4  # services/worker/settings.py's default
PREFIX = "replace_and_route"
BUCKET = "bench-gauge-path"
FIXTURES_DIR = REPO_ROOT / "bench" / "out" / "gauge-path-fixtures"


# ----------------------------------------------------------------------------- gauges


@dataclass(frozen=True)
class BenchGauge:
    lid: str
    reach_id: str
    segments: int
    values: int  # forecast values (3-hourly)
    synthetic: bool


def synthetic_lid(number: int) -> str:
    """An NWS location id no fixture uses: 'X', three letters, a digit (XAAA1, XAAB1, ...)."""
    letters = ""
    rest = number
    for _ in range(3):
        rest, letter = divmod(rest, 26)
        letters = chr(ord("A") + letter) + letters
    return f"X{letters}1"


def draw_gauged_reaches(
    index: NetworkIndex, hydrofabric: Path, count: int, seed: int
) -> list[tuple[str, int]]:
    """(reach id, segment size) of ``count`` gauges of the hydrofabric, evenly by size class.

    The synthetic hydrofabric gauges every fiftieth flowpath at random, so most of its
    gauges sit on headwaters with one- or two-flowpath segments; RFC forecast points sit
    on larger rivers (HPDT2's real segment is 50 flowpaths). Drawing evenly from three
    size classes covers both and shows where the shares change.
    """
    with open_hydrofabric(hydrofabric) as reader:
        located = reader.read("hydrolocations", ["hf_id", "hl_reference"])
    reference = np.asarray(located["hl_reference"], dtype=object)
    reach = np.asarray(located["hf_id"], dtype=np.float64)
    gauged = np.unique(reach[(reference == "gages") & np.isfinite(reach)]).astype(np.int64)
    rng = np.random.default_rng(seed)
    per_class = [count // len(SIZE_CLASSES)] * len(SIZE_CLASSES)
    for extra in range(count - sum(per_class)):
        per_class[extra] += 1
    chosen: list[list[tuple[str, int]]] = [[] for _ in SIZE_CLASSES]
    for reach_id in rng.permutation(gauged):
        if all(len(found) >= want for found, want in zip(chosen, per_class, strict=True)):
            break
        size = index.extract_segment(str(reach_id)).size
        for found, want, (_, low, high) in zip(chosen, per_class, SIZE_CLASSES, strict=True):
            if low <= size <= high and len(found) < want:
                found.append((str(reach_id), size))
    return [pick for found in chosen for pick in found]


def hydrograph_kcfs(values: int, rng: np.random.Generator) -> tuple[list[float], float]:
    """A flood forecast: a half-cosine rise to the peak, then an exponential recession."""
    base = float(rng.uniform(5, 40))
    peak = base * float(rng.uniform(3, 8))
    peak_at = max(1, round(values * float(rng.uniform(0.25, 0.45))))
    recession = values / float(rng.uniform(3, 6))
    flows = []
    for i in range(values):
        if i <= peak_at:
            flows.append(base + (peak - base) * (1 - math.cos(math.pi * i / peak_at)) / 2)
        else:
            flows.append(base + (peak - base) * math.exp(-(i - peak_at) / recession))
    return [round(q, 2) for q in flows], peak


def _stage_ft(flow_kcfs: float) -> float:
    return round(8.0 + 3.9 * math.sqrt(flow_kcfs), 2)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_fixture(
    template: dict[str, Any], lid: str, reach_id: str, values: int, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``/gauges/{lid}`` answer and the stage-flow series of one synthetic gauge.

    Built on HPDT2's answer (its shape and offices), with its own reach, a moderate
    flood and a forecast of ``values`` 3-hourly values from FORECAST_T0.
    """
    flows, peak = hydrograph_kcfs(values, rng)
    issued = FORECAST_T0 - dt.timedelta(hours=2, minutes=28)
    times = [FORECAST_T0 + dt.timedelta(hours=FORECAST_STEP_HOURS * i) for i in range(values)]
    forecast = {
        **{k: v for k, v in template["stageflow"]["forecast"].items() if k != "data"},
        "issuedTime": _iso(issued),
        "data": [
            {
                "validTime": _iso(t),
                "generatedTime": _iso(issued),
                "primary": _stage_ft(q),
                "secondary": q,
            }
            for t, q in zip(times, flows, strict=True)
        ],
    }
    observed_times = [FORECAST_T0 - dt.timedelta(hours=h) for h in range(25, 1, -1)]
    observed = np.linspace(0.9 * flows[0], flows[0], len(observed_times))
    observation = {
        **{k: v for k, v in template["stageflow"]["observation"].items() if k != "data"},
        "issuedTime": _iso(FORECAST_T0 - dt.timedelta(hours=1, minutes=54)),
        "data": [
            {
                "validTime": _iso(t),
                "generatedTime": _iso(t + dt.timedelta(minutes=6)),
                "primary": _stage_ft(float(q)),
                "secondary": round(float(q), 2),
            }
            for t, q in zip(observed_times, observed, strict=True)
        ],
    }
    gauge = copy.deepcopy(template["gauge"])
    thresholds = {"action": 0.5, "minor": 0.65, "moderate": 0.8, "major": 1.2}
    gauge.update(
        lid=lid, name=f"Synthetic river at gauge {lid}", reachId=reach_id, downstreamLid=""
    )
    gauge["flood"]["categories"] = {
        category: {"stage": _stage_ft(share * peak), "flow": round(share * peak, 2)}
        for category, share in thresholds.items()
    }
    peak_index = int(np.argmax(flows))
    gauge["status"]["observed"].update(
        primary=_stage_ft(float(observed[-1])),
        secondary=round(float(observed[-1]), 2),
        floodCategory="no_flooding",
        validTime=_iso(observed_times[-1]),
    )
    gauge["status"]["forecast"].update(
        primary=_stage_ft(flows[peak_index]),
        secondary=flows[peak_index],
        floodCategory="moderate",
        validTime=_iso(times[peak_index]),
    )
    return gauge, {"forecast": forecast, "observation": observation}


def write_bench_fixtures(reaches: Sequence[tuple[str, int]], seed: int) -> list[BenchGauge]:
    """The replay server's fixtures plus the synthetic gauges, into FIXTURES_DIR."""
    shutil.rmtree(FIXTURES_DIR, ignore_errors=True)
    shutil.copytree(DEFAULT_FIXTURES_DIR, FIXTURES_DIR)
    gauges = json.loads((FIXTURES_DIR / "gauges.json").read_text("utf-8"))
    template = {
        "gauge": gauges["HPDT2"],
        "stageflow": json.loads((FIXTURES_DIR / "stageflow" / "HPDT2.json").read_text("utf-8")),
    }
    rng = np.random.default_rng(seed)
    picked = []
    for number, (reach_id, size) in enumerate(reaches):
        lid = synthetic_lid(number)
        values = FORECAST_DAYS[number % len(FORECAST_DAYS)] * 24 // FORECAST_STEP_HOURS + 1
        gauge, series = synthetic_fixture(template, lid, reach_id, values, rng)
        gauges[lid] = gauge
        (FIXTURES_DIR / "stageflow" / f"{lid}.json").write_bytes(dump_json(series))
        picked.append(BenchGauge(lid, reach_id, size, values, synthetic=True))
    (FIXTURES_DIR / "gauges.json").write_bytes(dump_json(gauges))
    return picked


# ------------------------------------------------------------------------- the servers


@dataclass
class Stack:
    """The worker's collaborators, as the worker builds them (services/worker/app.py)."""

    nws: NwsClient
    nwps: NwpsClient
    store: ObjectStore
    s3: Any
    replay_url: str
    network: NetworkIndex


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def open_stack(network: NetworkIndex) -> AsyncIterator[Stack]:
    import aioboto3

    with (
        uvicorn_in_thread(create_app(FIXTURES_DIR), free_port()) as replay_url,
        moto_server() as moto_url,
    ):
        session = aioboto3.Session(region_name="us-east-1")
        async with (
            session.client("s3", endpoint_url=moto_url) as s3,
            UpstreamClient.open_session(user_agent="rnr-bench", timeout_seconds=10) as http_session,
        ):
            await s3.create_bucket(Bucket=BUCKET)
            # The worker's settings' defaults: 3 retries, 0.5 s first backoff.
            http = UpstreamClient(http_session, retries=3, backoff_seconds=0.5)
            yield Stack(
                nws=NwsClient(http, replay_url),
                nwps=NwpsClient(http, f"{replay_url}/nwps/v1"),
                store=ObjectStore(s3),
                s3=s3,
                replay_url=replay_url,
                network=network,
            )


# ---------------------------------------------------------------------------- measuring


@dataclass
class Timings:
    """Seconds per gauge and stage over the rounds; ``total`` is the gauge's wall time."""

    stages: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    identical_files: int = 0  # staged files byte for byte those route_to_netcdf writes

    def add(self, lid: str, stage: str, seconds: float) -> None:
        self.stages.setdefault(lid, {}).setdefault(stage, []).append(seconds)

    def median(self, lid: str, stage: str) -> float:
        return statistics.median(self.stages[lid][stage])


def _product(product_id: str, issued: dt.datetime, replay_url: str) -> ProductMessage:
    return ProductMessage(
        id=product_id,
        url=f"{replay_url}/products/{product_id}",
        wmo_collective_id="SRUS54",
        issuing_office="KFWR",
        issuance_time=issued,
        product_code="HML",
        product_name="Hydrologic Markup Language",
    )


def _route_and_encode(
    forecast: RfcForecast, segment: Segment, product: ProductMessage, timings: Timings
) -> bytes:
    """route_to_netcdf's two library calls, with its arguments, each timed (in a thread)."""
    started, started_cpu = time.perf_counter(), time.thread_time()
    result = route_forecast(
        segment.parameters,
        segment.downstream,
        forecast.valid_times,
        forecast.flow_m3_s,
        forecast.initial_flow_m3_s,
        dt_s=DT_S,
    )
    routed, routed_cpu = time.perf_counter(), time.thread_time()
    data = write_forecast_netcdf(
        result,
        feature_ids=segment.feature_ids,
        t0=forecast.t0,
        dt_s=DT_S,
        attributes=ForecastAttributes.of(
            forecast, segment, issuance_time=product.issuance_time, product_id=product.id
        ),
    )
    timings.add(forecast.lid, "routing", routed - started)
    timings.add(forecast.lid, "encoding", time.perf_counter() - routed)
    timings.add(forecast.lid, "cpu routing", routed_cpu - started_cpu)
    timings.add(forecast.lid, "cpu encoding", time.thread_time() - routed_cpu)
    return data


async def staged_gauge(stack: Stack, lid: str, product: ProductMessage, timings: Timings) -> bytes:
    """One gauge down the worker's path (ReplaceAndRouteProcessor._route_gauge), timed.

    Wall time per stage, and the CPU time of the thread doing it (``time.thread_time``):
    for fetch and upload that is the event loop's thread, the worker's own share, without
    the replay server's and moto's, which run in threads of this process.
    """
    started, started_cpu = time.perf_counter(), time.thread_time()
    forecast = await stack.nwps.rfc_forecast(lid)
    fetched, fetched_cpu = time.perf_counter(), time.thread_time()
    if not isinstance(forecast, RfcForecast):
        raise SystemExit(f"{lid}: the gate skipped a benchmark gauge: {forecast}")
    segment = stack.network.extract_segment(forecast.reach_id)
    extracted, extracted_cpu = time.perf_counter(), time.thread_time()
    data = await asyncio.to_thread(_route_and_encode, forecast, segment, product, timings)
    key = output_key(PREFIX, forecast.lid, forecast.t0)
    encoded, encoded_cpu = time.perf_counter(), time.thread_time()
    await stack.store.put_bytes(BUCKET, key, data, content_type=NETCDF_CONTENT_TYPE)
    finished, finished_cpu = time.perf_counter(), time.thread_time()
    timings.add(lid, "fetch", fetched - started)
    timings.add(lid, "extraction", extracted - fetched)
    timings.add(lid, "upload", finished - encoded)
    timings.add(lid, "total", finished - started)
    timings.add(lid, "cpu fetch", fetched_cpu - started_cpu)
    timings.add(lid, "cpu extraction", extracted_cpu - fetched_cpu)
    timings.add(lid, "cpu upload", finished_cpu - encoded_cpu)
    return data


async def check_staged_file(stack: Stack, lid: str, product: ProductMessage, data: bytes) -> bool:
    """The staged file must be the one route_to_netcdf writes, or the timing is of
    something else; True when it is so byte for byte (else its contents are compared)."""
    forecast = await stack.nwps.rfc_forecast(lid)
    assert isinstance(forecast, RfcForecast)
    segment = stack.network.extract_segment(forecast.reach_id)
    expected = route_to_netcdf(
        forecast, segment, issuance_time=product.issuance_time, product_id=product.id
    ).netcdf
    if data == expected:
        return True
    ours, theirs = read_forecast_netcdf(data), read_forecast_netcdf(expected)
    same = ours.attributes == theirs.attributes and all(
        np.array_equal(ours.arrays[name], theirs.arrays[name], equal_nan=True)
        for name in theirs.arrays
    )
    if not same:
        raise SystemExit(f"{lid}: the staged path wrote another file than route_to_netcdf")
    return False


def worker_processor(stack: Stack, concurrency: int) -> ReplaceAndRouteProcessor:
    from prometheus_client import CollectorRegistry

    return ReplaceAndRouteProcessor(
        nws=stack.nws,
        nwps=stack.nwps,
        network=stack.network,
        store=stack.store,
        bucket=BUCKET,
        prefix=PREFIX,
        gauge_concurrency=concurrency,
        registry=CollectorRegistry(),
    )


async def worker_gauge(
    processor: ReplaceAndRouteProcessor, lid: str, product: ProductMessage, timings: Timings
) -> None:
    """One gauge through the worker's own per-gauge function, end to end."""
    started = time.perf_counter()
    outcome, bug = await processor._gauge(lid, Delivery(product, 1, 5), asyncio.Semaphore(1))
    timings.add(lid, "worker", time.perf_counter() - started)
    if outcome.outcome != "routed" or bug is not None:
        raise SystemExit(f"{lid}: the worker did not route it: {outcome}")


async def worker_product(
    stack: Stack, processor: ReplaceAndRouteProcessor, lids: Sequence[str], round_number: int
) -> float:
    """Seconds for the worker to process one product naming every gauge (4 at a time)."""
    import httpx

    issued = dt.datetime(2025, 5, 6, tzinfo=dt.UTC) + dt.timedelta(minutes=round_number)
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{stack.replay_url}/_admin/products",
            json={"count": 1, "lids": list(lids), "issuance_time": issued.isoformat()},
        )
        answer.raise_for_status()
    added = answer.json()["products"][0]
    product = _product(
        added["id"], dt.datetime.fromisoformat(added["issuanceTime"]), stack.replay_url
    )
    started = time.perf_counter()
    handled = await processor(Delivery(product, 1, 5))
    seconds = time.perf_counter() - started
    if handled is not Handled.PROCESSED:
        raise SystemExit(f"the product round {round_number} was not processed: {handled}")
    return seconds


# ---------------------------------------------------------------------------- reporting


def _quantiles(values: Sequence[int]) -> str:
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    return (
        f"min {min(values)}, p25 {p25:.0f}, median {p50:.0f}, p75 {p75:.0f}, "
        f"max {max(values)} (mean {statistics.fmean(values):.1f})"
    )


def stage_table(gauges: Sequence[BenchGauge], timings: Timings) -> dict[str, float]:
    """Print, per stage, the median per gauge and the share of the path's time, wall and
    the worker's own CPU; return the wall shares."""
    wall = {stage: sum(timings.median(g.lid, stage) for g in gauges) for stage in STAGES}
    cpu = {stage: sum(timings.median(g.lid, f"cpu {stage}") for g in gauges) for stage in STAGES}
    total = sum(timings.median(g.lid, "total") for g in gauges)
    wall["other"] = max(0.0, total - sum(wall.values()))
    shares = {stage: seconds / total for stage, seconds in wall.items()}
    cpu_total = sum(cpu.values())
    for stage in STAGES:
        wall_ms = 1000 * statistics.median(timings.median(g.lid, stage) for g in gauges)
        cpu_ms = 1000 * statistics.median(timings.median(g.lid, f"cpu {stage}") for g in gauges)
        print(
            f"  {stage:<11}{wall_ms:9.2f}{100 * shares[stage]:8.1f} %"
            f"{cpu_ms:12.2f}{100 * cpu[stage] / cpu_total:8.1f} %"
        )
    print(f"  {'other':<11}{'':9}{100 * shares['other']:8.1f} %   (thread hop, key, logs)")
    median_total = statistics.median(timings.median(g.lid, "total") for g in gauges)
    print(f"  {'total':<11}{1000 * median_total:9.2f}{100.0:8.1f} %")
    return shares


def _table_header(title: str) -> None:
    print(f"{'stage':<13}{'wall ms':>7}{'share':>10}{'worker CPU ms':>14}{'share':>8}   {title}")


def report(
    gauges: Sequence[BenchGauge],
    timings: Timings,
    product_seconds: list[float],
    args: argparse.Namespace,
    flowpaths: int,
) -> None:
    synthetic = [g for g in gauges if g.synthetic]
    print(
        f"the worker's per-gauge path: {len(gauges)} gauges ({len(gauges) - len(synthetic)} "
        f"replay fixtures + {len(synthetic)} synthetic), hydrofabric of {flowpaths:,} "
        f"flowpaths, {args.rounds} rounds, one worker process"
    )
    lengths = sorted({g.values for g in gauges})
    print(
        f"  forecasts: 3-hourly, {', '.join(str(n) for n in lengths)} values "
        f"({', '.join(f'{(n - 1) * 3 / 24:.1f}' for n in lengths)} days; "
        f"{', '.join(str((n - 1) * STEPS_PER_VALUE) for n in lengths)} five-minute steps)"
    )
    print(f"  segments per gauge: {_quantiles([g.segments for g in gauges])}")
    print(
        f"  staged files equal to route_to_netcdf's: {len(gauges)} of {len(gauges)}, "
        f"{timings.identical_files} byte for byte"
    )
    print("medians per gauge; the worker's CPU excludes the replay server's and moto's")
    _table_header("(all gauges)")
    shares = stage_table(gauges, timings)
    for name, low, high in SIZE_CLASSES:
        members = [g for g in gauges if low <= g.segments <= high]
        if members:
            middle = statistics.median(g.segments for g in members)
            _table_header(f"({len(members)} gauges of {name} segments, median {middle:.0f})")
            stage_table(members, timings)

    staged_s = sum(timings.median(g.lid, "total") for g in gauges)
    worker_s = sum(timings.median(g.lid, "worker") for g in gauges)
    product_s = statistics.median(product_seconds)
    staged_rate, worker_rate = len(gauges) / staged_s, len(gauges) / worker_s
    product_rate = len(gauges) / product_s
    print("routed gauges per second, one worker process:")
    print(f"  staged, one gauge at a time (sum of the stages)            {staged_rate:8.1f}")
    print(
        f"  worker's per-gauge function (_gauge), one gauge at a time  {worker_rate:8.1f}"
        f"   staged / worker time {staged_s / worker_s:.2f}"
    )
    print(
        f"  worker's product path, {WORKER_GAUGE_CONCURRENCY} gauges at a time"
        f" (median of {len(product_seconds)})    {product_rate:8.1f}"
    )
    fastest, slowest = TROUTE_STARTUP_S
    print(
        f"reference, one T-Route process per gauge: start-up alone {fastest}-{slowest} s, at most "
        f"{1 / slowest:.2f}-{1 / fastest:.2f} gauges/s"
    )
    for label, rate in (("one at a time", worker_rate), ("product path", product_rate)):
        print(f"  ratio, worker {label}: {rate * fastest:,.0f}-{rate * slowest:,.0f} x")
    segment_steps = sum(g.segments * (g.values - 1) * STEPS_PER_VALUE for g in gauges)
    routing_cpu = sum(timings.median(g.lid, "cpu routing") for g in gauges)
    encoding_cpu = statistics.median(timings.median(g.lid, "cpu encoding") for g in gauges)
    rate = segment_steps / routing_cpu
    print(
        f"routing over the mix: {rate / 1e6:.2f} M segment-steps per CPU second; the median "
        f"encoding ({1000 * encoding_cpu:.2f} ms CPU) equals routing "
        f"{rate * encoding_cpu:,.0f} segment-steps"
    )
    largest = max((s for s in shares if s != "routing"), key=lambda s: shares[s])
    verdict = "met" if shares["routing"] >= shares[largest] else "NOT met"
    print(
        f"target, routing the largest share: {verdict} (routing {100 * shares['routing']:.1f} %"
        f", next {largest} {100 * shares[largest]:.1f} %)"
    )


# --------------------------------------------------------------------------------- main


async def measure(
    stack: Stack, gauges: Sequence[BenchGauge], rounds: int
) -> tuple[Timings, list[float]]:
    timings, warm_up_timings = Timings(), Timings()
    one_at_a_time = worker_processor(stack, 1)
    product_path = worker_processor(stack, WORKER_GAUGE_CONCURRENCY)
    product = _product(
        str(uuid.uuid5(uuid.NAMESPACE_DNS, "bench-gauge-path")), FORECAST_T0, stack.replay_url
    )
    progress("warm-up round (connections, caches), checking every staged file")
    identical = 0
    for gauge in gauges:
        data = await staged_gauge(stack, gauge.lid, product, warm_up_timings)
        identical += await check_staged_file(stack, gauge.lid, product, data)
    timings.identical_files = identical
    product_seconds = []
    for number in range(1, rounds + 1):
        progress(f"round {number}/{rounds}: staged, worker per gauge, worker product")
        for gauge in gauges:
            await staged_gauge(stack, gauge.lid, product, timings)
        for gauge in gauges:
            await worker_gauge(one_at_a_time, gauge.lid, product, timings)
        product_seconds.append(
            await worker_product(stack, product_path, [g.lid for g in gauges], number)
        )
    return timings, product_seconds


def replay_gauges(index: NetworkIndex) -> list[BenchGauge]:
    fixtures = json.loads((DEFAULT_FIXTURES_DIR / "gauges.json").read_text("utf-8"))
    picked = []
    for lid in REPLAY_ROUTED:
        series = json.loads((DEFAULT_FIXTURES_DIR / "stageflow" / f"{lid}.json").read_text())
        reach_id = fixtures[lid]["reachId"]
        size = index.extract_segment(reach_id).size
        picked.append(BenchGauge(lid, reach_id, size, len(series["forecast"]["data"]), False))
    return picked


def build_index(location: Path) -> NetworkIndex:
    """As the worker does at start-up (services/worker/app.py), with its default layer."""
    with open_hydrofabric(location) as reader:
        return NetworkIndex.from_reader(reader, attributes_layer(reader, "flowpath-attributes-ml"))


def timed(what: str, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = call()
    progress(f"{what}: {time.perf_counter() - started:.1f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowpaths", type=int, default=1_000_000)
    parser.add_argument("--gauges", type=int, default=24, help="synthetic gauges (plus 4 replay)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto signs; never real ones
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    # The worker logs at INFO; its lines are part of the path, their destination is not.
    devnull = open(os.devnull, "w")  # noqa: SIM115  (kept open for the run)
    setup_logging("bench", "INFO", stream=devnull)
    # The servers' access logs are theirs, not the worker's: keep them out of the timings.
    for server_logger in ("uvicorn", "werkzeug"):
        logging.getLogger(server_logger).setLevel(logging.WARNING)

    location = ensure_hydrofabric(args.flowpaths)
    network = timed("reading the hydrofabric and building the index", lambda: build_index(location))
    timed("compiling (or loading) the routing kernel", warm_up)
    reaches = timed(
        f"drawing {args.gauges} gauges of the hydrofabric",
        lambda: draw_gauged_reaches(network, location, args.gauges, args.seed),
    )
    gauges = replay_gauges(network) + write_bench_fixtures(reaches, args.seed)
    timings, product_seconds = asyncio.run(measure_on_stack(network, gauges, args.rounds))
    report(gauges, timings, product_seconds, args, network.flowpath_count)


async def measure_on_stack(
    network: NetworkIndex, gauges: Sequence[BenchGauge], rounds: int
) -> tuple[Timings, list[float]]:
    async with open_stack(network) as stack:
        return await measure(stack, gauges, rounds)


if __name__ == "__main__":
    main()
