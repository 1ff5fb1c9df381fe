"""Post-processor run: new forecast files in, the inherited-forecast table out.

One run (RNR_SPEC section 6):

1. list ``OUTPUT_PREFIX/*/troute_output_*.nc`` and keep the objects the checkpoint has
   not seen with their current ETag, oldest first, at most
   ``POSTPROC_MAX_OBJECTS_PER_RUN``;
2. read each (bounded concurrency); a file that is not a readable forecast is copied to
   ``POSTPROC_PREFIX/quarantine/`` with a ``.reason.json`` beside it and the rest go on;
3. read the flowpaths of just the segments those files cover;
4. merge their rows into the current table (the latest reference time wins per
   segment), drop forecasts older than ``POSTPROC_MAX_FORECAST_AGE_HOURS``;
5. write the table as Parquet and CSV, timestamped under ``history/`` and as the stable
   ``latest/`` copy; then the checkpoint.

A run with no new objects and nothing expired writes nothing. Transient S3 failures
fail the run before the checkpoint moves, so the next run repeats it; repeating it
publishes the same table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from rnr.core.logging import log_context
from rnr.core.metrics import emit_emf
from rnr.core.readiness import ReadinessCheck
from rnr.hydro.inherited import (
    ForecastFileInvalid,
    InheritedRow,
    drop_expired,
    forecast_rows,
    merge_latest,
)
from rnr.hydro_io.flowpaths import read_flowpaths
from rnr.hydro_io.inherited_table import (
    from_parquet_bytes,
    rows_to_table,
    table_to_rows,
    to_csv_bytes,
    to_parquet_bytes,
)
from rnr.hydro_io.netcdf import ForecastFile, read_forecast_netcdf
from rnr.storage.aws import AwsClients
from rnr.storage.hydrofabric_s3 import s3_filesystem
from rnr.storage.s3 import ObjectInfo, ObjectStore
from services.postproc.checkpoint import Checkpoint
from services.postproc.lookup import ensure_flowpath_lookup
from services.postproc.settings import PostprocSettings

logger = logging.getLogger(__name__)

TABLE_NAME = "inherited_rfc_forecasts"
_FORECAST_FILE = re.compile(r"[^/]+/troute_output_[0-9]{12}\.nc")


@dataclass(frozen=True)
class TableKeys:
    """Where a run reads and writes, all under ``POSTPROC_PREFIX`` in ``OUTPUT_BUCKET``."""

    prefix: str

    @property
    def checkpoint(self) -> str:
        return f"{self.prefix}/state/checkpoint.json"

    def latest(self, extension: str) -> str:
        return f"{self.prefix}/latest/{TABLE_NAME}.{extension}"

    def history(self, run_time: dt.datetime, extension: str) -> str:
        day = run_time.strftime("%Y/%m/%d")
        stamp = run_time.strftime("%Y%m%dT%H%M%SZ")
        return f"{self.prefix}/history/{day}/{TABLE_NAME}_{stamp}.{extension}"

    def quarantine(self, key: str) -> str:
        return f"{self.prefix}/quarantine/{key}"


@dataclass
class PostprocState:
    settings: PostprocSettings
    aws: AwsClients
    objects: Counter
    table_rows: Gauge


def setup(settings: PostprocSettings, registry: CollectorRegistry) -> PostprocState:
    objects = Counter(
        "rnr_postproc_objects_total",
        "Forecast files taken in, by outcome (processed, quarantined)",
        ["outcome"],
        registry=registry,
    )
    for outcome in ("processed", "quarantined"):
        objects.labels(outcome)
    return PostprocState(
        settings=settings,
        aws=AwsClients(settings),
        objects=objects,
        table_rows=Gauge(
            "rnr_postproc_table_rows", "Rows of the last table written", registry=registry
        ),
    )


async def run(state: PostprocState, event: Mapping[str, Any]) -> dict[str, Any]:
    settings = state.settings
    bucket = settings.output_bucket
    keys = TableKeys(settings.postproc_prefix)
    run_time = dt.datetime.now(dt.UTC).replace(microsecond=0)
    async with state.aws.client("s3") as s3:
        store = ObjectStore(s3)
        listing = await _list_forecasts(store, settings)
        checkpoint_bytes = await store.get_bytes_if_exists(bucket, keys.checkpoint)
        checkpoint = Checkpoint.from_json(checkpoint_bytes) if checkpoint_bytes else Checkpoint()
        pending = checkpoint.pending(listing)
        batch = pending[: settings.postproc_max_objects_per_run]
        previous_bytes = await store.get_bytes_if_exists(bucket, keys.latest("parquet"))
        previous = table_to_rows(from_parquet_bytes(previous_bytes)) if previous_bytes else []

        intake = await _take_in(state, s3, store, batch, run_time)
        for info, data, reason in intake.rejected:
            await _quarantine(store, bucket, keys, info, data, reason)
        max_age = dt.timedelta(hours=settings.postproc_max_forecast_age_hours)
        table, expired = drop_expired(
            merge_latest(previous, *intake.rows), now=run_time, max_age=max_age
        )
        summary: dict[str, Any] = {
            "listed": len(listing),
            "pending": len(pending),
            "processed": len(intake.processed),
            "quarantined": len(intake.rejected),
            "deferred": len(pending) - len(batch),
            "expired_rows": expired,
            "table_rows": len(table),
            "written": False,
        }
        if not batch and not expired:
            logger.info("no new forecast files: nothing written", extra={"summary": summary})
            return summary
        if table != previous:
            await _write_table(store, bucket, keys, table, run_time)
            summary.update(written=True, latest_key=keys.latest("parquet"))
        for info in intake.processed:
            checkpoint.record(info, "processed")
        for info, _, _ in intake.rejected:
            checkpoint.record(info, "quarantined")
        checkpoint.forget_missing(listing)
        # Last: a run that dies before this line is repeated, with the same result.
        await store.put_bytes(
            bucket,
            keys.checkpoint,
            checkpoint.to_json(updated=run_time),
            content_type="application/json",
        )

    state.objects.labels("processed").inc(len(intake.processed))
    state.objects.labels("quarantined").inc(len(intake.rejected))
    state.table_rows.set(len(table))
    emit_emf(
        "postproc",
        {
            "ObjectsProcessed": len(intake.processed),
            "ObjectsQuarantined": len(intake.rejected),
            "ObjectsDeferred": summary["deferred"],
            "RowsExpired": expired,
            "TableRows": len(table),
        },
    )
    return summary


@dataclass
class Intake:
    """What a run made of its batch: rows per accepted file, and the rejected files
    with their bytes and the reason."""

    processed: list[ObjectInfo] = field(default_factory=list)
    rows: list[list[InheritedRow]] = field(default_factory=list)
    rejected: list[tuple[ObjectInfo, bytes, str]] = field(default_factory=list)


def _listing_prefix(output_prefix: str) -> str:
    return f"{output_prefix}/" if output_prefix else ""


async def _list_forecasts(store: ObjectStore, settings: PostprocSettings) -> list[ObjectInfo]:
    """Forecast files only: the product records beside them are not tables' input."""
    prefix = _listing_prefix(settings.output_prefix)
    return [
        info
        for info in await store.list_objects(settings.output_bucket, prefix)
        if _FORECAST_FILE.fullmatch(info.key.removeprefix(prefix))
    ]


async def _take_in(
    state: PostprocState,
    s3: Any,
    store: ObjectStore,
    batch: list[ObjectInfo],
    run_time: dt.datetime,
) -> Intake:
    intake = Intake()
    if not batch:
        return intake
    slots = asyncio.Semaphore(state.settings.postproc_concurrency)

    async def read(info: ObjectInfo) -> tuple[ObjectInfo, bytes, ForecastFile | str]:
        async with slots:
            data = await store.get_bytes(state.settings.output_bucket, info.key)
        try:
            return info, data, await asyncio.to_thread(read_forecast_netcdf, data)
        except ValueError as error:
            return info, data, str(error)

    files = await asyncio.gather(*(read(info) for info in batch))
    readable = [
        (info, data, forecast) for info, data, forecast in files if not isinstance(forecast, str)
    ]
    intake.rejected += [
        (info, data, reason) for info, data, reason in files if isinstance(reason, str)
    ]
    if not readable:
        return intake

    wanted = {int(i) for _, _, forecast in readable for i in forecast.arrays["feature_id"]}
    settings = state.settings
    lookup_key = await ensure_flowpath_lookup(s3, store, settings)
    flowpaths = await asyncio.to_thread(
        read_flowpaths,
        f"{settings.output_bucket}/{lookup_key}",
        wanted,
        s3_filesystem(settings.aws_region, settings.aws_endpoint_url),
    )
    logger.info(
        "flowpaths read",
        extra={"wanted": len(wanted), "found": len(flowpaths), "lookup": lookup_key},
    )
    for info, data, forecast in readable:
        with log_context(forecast.attributes.product_id):
            try:
                rows = forecast_rows(forecast, flowpaths, update_time=run_time)
            except ForecastFileInvalid as error:
                intake.rejected.append((info, data, str(error)))
                continue
            logger.info(
                "forecast file taken in",
                extra={"key": info.key, "lid": forecast.attributes.rfc_location, "rows": len(rows)},
            )
        intake.processed.append(info)
        intake.rows.append(rows)
    return intake


async def _quarantine(
    store: ObjectStore, bucket: str, keys: TableKeys, info: ObjectInfo, data: bytes, reason: str
) -> None:
    """A copy of the file and why it was set aside; the original stays where it is."""
    target = keys.quarantine(info.key)
    record = {
        "key": info.key,
        "etag": info.etag,
        "reason": reason,
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(),
        "action": (
            "inspect the copy; once the worker rewrites the original (a new ETag) it is "
            "taken in again, or delete the original to stop it being listed"
        ),
    }
    await store.put_bytes(bucket, target, data, content_type="application/x-netcdf")
    await store.put_bytes(
        bucket,
        f"{target}.reason.json",
        json.dumps(record, indent=1).encode(),
        content_type="application/json",
    )
    logger.warning(
        "forecast file quarantined", extra={"key": info.key, "reason": reason, "copy": target}
    )


async def _write_table(
    store: ObjectStore,
    bucket: str,
    keys: TableKeys,
    rows: list[InheritedRow],
    run_time: dt.datetime,
) -> None:
    """History first, ``latest`` after: readers of ``latest`` never see a table whose
    history copy is missing."""
    table = rows_to_table(rows)
    files = {
        "parquet": (to_parquet_bytes(table), "application/vnd.apache.parquet"),
        "csv": (to_csv_bytes(table), "text/csv"),
    }
    for extension, (body, content_type) in files.items():
        await store.put_bytes(
            bucket, keys.history(run_time, extension), body, content_type=content_type
        )
    for extension, (body, content_type) in files.items():
        await store.put_bytes(bucket, keys.latest(extension), body, content_type=content_type)
    logger.info(
        "inherited-forecast table written",
        extra={"rows": len(rows), "key": keys.latest("parquet")},
    )


def checks(state: PostprocState) -> dict[str, ReadinessCheck]:
    async def output_bucket() -> None:
        async with state.aws.client("s3") as s3:
            await s3.head_bucket(Bucket=state.settings.output_bucket)

    return {"output_bucket": output_bucket}
