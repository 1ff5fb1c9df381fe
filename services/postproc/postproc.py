"""Post-processor run: new forecast files in, the inherited-forecast table out.

One run (RNR_SPEC section 6; the rules are :mod:`rnr.hydro.inherited`'s):

1. list ``OUTPUT_PREFIX/*/troute_output_*.nc`` and the worker's product records
   (``OUTPUT_PREFIX/products/...json``) and keep the objects the checkpoint has not seen
   with their current ETag, oldest first, at most ``POSTPROC_MAX_OBJECTS_PER_RUN`` of
   each;
2. read each forecast file (bounded concurrency); a file that is not a readable
   forecast is copied to ``POSTPROC_PREFIX/quarantine/`` with a ``.reason.json`` beside
   it and the rest go on; read the flowpaths of just the segments they cover;
3. read each product record: a gauge skipped as ``not_flooding`` withdraws that gauge's
   forecasts issued no later than the record's product;
4. merge the new contributions into the state (per segment and gauge the newest
   issuance), apply the withdrawals, drop forecasts older than
   ``POSTPROC_MAX_FORECAST_AGE_HOURS``;
5. write the table derived from them (per segment the maximum flow governs) as
   GeoParquet and CSV, timestamped under ``history/`` and as the stable ``latest/``
   copy; then the contributions (``state/contributions.parquet``); then the checkpoint.

A run with no new objects and nothing expired writes nothing. Transient S3 failures
fail the run before the checkpoint moves, so the next run repeats it; repeating it
publishes the same table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from rnr.core import identifiers
from rnr.core.identifiers import InvalidIdentifier
from rnr.core.logging import log_context
from rnr.core.metrics import emit_emf
from rnr.core.readiness import ReadinessCheck
from rnr.hydro.forecast import SkipReason
from rnr.hydro.forecast_file import ForecastFile
from rnr.hydro.inherited import (
    Contribution,
    ForecastFileInvalid,
    InheritedRow,
    drop_expired,
    forecast_rows,
    merge_newest,
    segment_rows,
    withdraw,
)
from rnr.hydro_io.flowpaths import read_flowpaths
from rnr.hydro_io.inherited_table import (
    contributions_from_bytes,
    contributions_to_bytes,
    rows_to_table,
    to_table_files,
)
from rnr.hydro_io.netcdf import read_forecast_netcdf
from rnr.storage.aws import AwsClients
from rnr.storage.hydrofabric_s3 import s3_filesystem
from rnr.storage.output_layout import is_forecast_key, is_product_record_key, listing_prefix
from rnr.storage.s3 import ObjectInfo, ObjectStore
from services.postproc.checkpoint import Checkpoint
from services.postproc.lookup import ensure_flowpath_lookup
from services.postproc.settings import PostprocSettings

logger = logging.getLogger(__name__)

TABLE_NAME = "inherited_rfc_forecasts"
_TABLE_CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}


@dataclass(frozen=True)
class TableKeys:
    """Where a run reads and writes, all under ``POSTPROC_PREFIX`` in ``OUTPUT_BUCKET``."""

    prefix: str

    @property
    def checkpoint(self) -> str:
        return f"{self.prefix}/state/checkpoint.json"

    @property
    def contributions(self) -> str:
        return f"{self.prefix}/state/contributions.parquet"

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
    withdrawn_rows: Counter
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
        withdrawn_rows=Counter(
            "rnr_postproc_withdrawn_rows_total",
            "Segment forecasts withdrawn because their gauge's newer forecast no longer floods",
            registry=registry,
        ),
        table_rows=Gauge(
            "rnr_postproc_table_rows", "Rows of the last table written", registry=registry
        ),
    )


async def run(state: PostprocState, event: Mapping[str, Any]) -> dict[str, Any]:
    settings = state.settings
    bucket = settings.output_bucket
    keys = TableKeys(settings.postproc_prefix)
    run_time = dt.datetime.now(dt.UTC).replace(microsecond=0)
    limit = settings.postproc_max_objects_per_run
    async with state.aws.client("s3") as s3:
        store = ObjectStore(s3)
        forecasts, records = await _list_outputs(store, settings)
        checkpoint, previous, has_state = await _load_state(store, bucket, keys)
        pending = checkpoint.pending(forecasts)
        batch = pending[:limit]
        pending_records = checkpoint.pending(records)
        record_batch = pending_records[:limit]

        intake = await _take_in(state, s3, store, batch, run_time)
        for info, data, reason in intake.rejected:
            await _quarantine(store, bucket, keys, info, data, reason)
        await _read_withdrawals(store, bucket, record_batch, checkpoint)
        max_age = dt.timedelta(hours=settings.postproc_max_forecast_age_hours)
        checkpoint.forget_withdrawals_before(run_time - max_age)
        merged = merge_newest(previous, *intake.rows)
        kept, withdrawn = withdraw(merged, checkpoint.withdrawals)
        contributions, expired = drop_expired(kept, now=run_time, max_age=max_age)
        table = segment_rows(contributions)
        summary: dict[str, Any] = {
            "listed": len(forecasts),
            "pending": len(pending),
            "processed": len(intake.processed),
            "quarantined": len(intake.rejected),
            "deferred": len(pending) - len(batch) + len(pending_records) - len(record_batch),
            "records_read": len(record_batch),
            "withdrawn_gauges": sorted({c.rfc_location for c in withdrawn}),
            "withdrawn_rows": len(withdrawn),
            "expired_rows": expired,
            "table_rows": len(table),
            "written": False,
        }
        if not batch and not record_batch and not expired:
            logger.info("no new outputs: nothing written", extra={"summary": summary})
            return summary
        if contributions != previous or (not has_state and contributions):
            await _write_table(store, bucket, keys, table, run_time)
            await store.put_bytes(
                bucket,
                keys.contributions,
                contributions_to_bytes(contributions),
                content_type="application/vnd.apache.parquet",
            )
            summary.update(written=True, latest_key=keys.latest("parquet"))
        for info in [*intake.processed, *record_batch]:
            checkpoint.record(info, "processed")
        for info, _, _ in intake.rejected:
            checkpoint.record(info, "quarantined")
        checkpoint.forget_missing([*forecasts, *records])
        # Last: a run that dies before this line is repeated, with the same result.
        await store.put_bytes(
            bucket,
            keys.checkpoint,
            checkpoint.to_json(updated=run_time),
            content_type="application/json",
        )

    _count(state, intake, summary)
    return summary


async def _load_state(
    store: ObjectStore, bucket: str, keys: TableKeys
) -> tuple[Checkpoint, list[Contribution], bool]:
    """The checkpoint and the contributions, and whether there were any. Without both
    (a first run, or a checkpoint from before the contributions) everything is read."""
    previous_bytes = await store.get_bytes_if_exists(bucket, keys.contributions)
    checkpoint_bytes = await store.get_bytes_if_exists(bucket, keys.checkpoint)
    if previous_bytes is None or checkpoint_bytes is None:
        return Checkpoint(), [], False
    return Checkpoint.from_json(checkpoint_bytes), contributions_from_bytes(previous_bytes), True


def _count(state: PostprocState, intake: Intake, summary: Mapping[str, Any]) -> None:
    """The run's figures as Prometheus metrics and one EMF line."""
    state.objects.labels("processed").inc(len(intake.processed))
    state.objects.labels("quarantined").inc(len(intake.rejected))
    state.withdrawn_rows.inc(summary["withdrawn_rows"])
    state.table_rows.set(summary["table_rows"])
    emit_emf(
        "postproc",
        {
            "ObjectsProcessed": len(intake.processed),
            "ObjectsQuarantined": len(intake.rejected),
            "ObjectsDeferred": summary["deferred"],
            "RowsWithdrawn": summary["withdrawn_rows"],
            "RowsExpired": summary["expired_rows"],
            "TableRows": summary["table_rows"],
        },
    )


@dataclass
class Intake:
    """What a run made of its batch: rows per accepted file, and the rejected files
    with their bytes and the reason."""

    processed: list[ObjectInfo] = field(default_factory=list)
    rows: list[list[Contribution]] = field(default_factory=list)
    rejected: list[tuple[ObjectInfo, bytes, str]] = field(default_factory=list)


async def _list_outputs(
    store: ObjectStore, settings: PostprocSettings
) -> tuple[list[ObjectInfo], list[ObjectInfo]]:
    """The forecast files and the product records under the output prefix."""
    prefix = settings.output_prefix
    listed = await store.list_objects(settings.output_bucket, listing_prefix(prefix))
    return (
        [info for info in listed if is_forecast_key(prefix, info.key)],
        [info for info in listed if is_product_record_key(prefix, info.key)],
    )


async def _read_withdrawals(
    store: ObjectStore, bucket: str, records: list[ObjectInfo], checkpoint: Checkpoint
) -> None:
    """Note in the checkpoint every gauge a product record says no longer floods."""
    noted: set[str] = set()
    for info in records:
        data = await store.get_bytes(bucket, info.key)
        for lid, issued in _not_flooding(info.key, data):
            if checkpoint.withdraw(lid, issued):
                noted.add(lid)
    if noted:
        logger.info("gauges no longer flooding", extra={"lids": sorted(noted)})


def _not_flooding(key: str, data: bytes) -> list[tuple[str, dt.datetime]]:
    """(gauge, product issuance) of each gauge a record lists as skipped not flooding.

    A record that cannot be read withdraws nothing (and is logged): it is the worker's
    own output, so this is a bug or a hand edit, not a reason to stop the table.
    """
    try:
        record = json.loads(data)
        issued = dt.datetime.fromisoformat(record["issuance_time"])
        if issued.tzinfo is None:
            raise ValueError("issuance_time has no time zone")
        gauges = [
            identifiers.lid(gauge["lid"])
            for gauge in record["gauges"]
            if gauge.get("outcome") == "skipped"
            and gauge.get("reason") == SkipReason.NOT_FLOODING.value
        ]
    except (ValueError, KeyError, TypeError, AttributeError, InvalidIdentifier) as error:
        logger.warning(
            "unreadable product record: ignored", extra={"key": key, "reason": str(error)}
        )
        return []
    return [(lid, issued) for lid in gauges]


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
    files = to_table_files(rows_to_table(rows))
    for extension, body in files.items():
        await store.put_bytes(
            bucket,
            keys.history(run_time, extension),
            body,
            content_type=_TABLE_CONTENT_TYPES[extension],
        )
    for extension, body in files.items():
        await store.put_bytes(
            bucket, keys.latest(extension), body, content_type=_TABLE_CONTENT_TYPES[extension]
        )
    logger.info(
        "inherited-forecast table written",
        extra={"rows": len(rows), "key": keys.latest("parquet")},
    )


def checks(state: PostprocState) -> dict[str, ReadinessCheck]:
    async def output_bucket() -> None:
        async with state.aws.client("s3") as s3:
            await s3.head_bucket(Bucket=state.settings.output_bucket)

    return {"output_bucket": output_bucket}
