"""What the worker does with one HML product: Replace and Route every gauge in it.

product text -> gauge ids -> per gauge, concurrently and bounded: NWPS forecast and
gate -> segment from the hydrofabric -> route -> NetCDF to S3. Each gauge ends routed
or skipped with a reason (not flooding, unknown reach, ...): a skip is an answer, and
the message is acked. A gauge that failed transiently (NWPS 5xx or timeout, S3 error)
makes the whole message retry once the others are done; the outputs already written
are simply overwritten then, since their keys depend only on gauge and t0.

A JSON record per product lists every gauge's outcome, next to the outputs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from rnr.core.errors import PermanentError, TransientError
from rnr.core.logging import log_context
from rnr.hydro.forecast import RfcForecast, Skipped, SkipReason
from rnr.hydro.hml import extract_lids
from rnr.hydro.replace_and_route import route_forecast
from rnr.hydro.segments import NetworkIndex, ReachNotFound, Segment
from rnr.hydro_io.netcdf import ForecastAttributes, output_key, write_forecast_netcdf
from rnr.messaging.models import ProductMessage
from rnr.storage.s3 import ObjectStore
from rnr.upstream.nwps import NwpsClient
from rnr.upstream.nws import NwsClient

logger = logging.getLogger(__name__)

NETCDF_CONTENT_TYPE = "application/x-netcdf"


class GaugesFailed(TransientError):
    """Some gauges of a product failed in a way a retry may fix."""


def product_record_key(prefix: str, product: ProductMessage) -> str:
    day = product.issuance_time.astimezone(dt.UTC).strftime("%Y/%m/%d")
    return f"{prefix}/products/{day}/{product.id}.json"


@dataclass(frozen=True)
class GaugeOutcome:
    lid: str
    outcome: str  # routed | skipped | failed
    reason: str = ""
    key: str = ""
    segments: int = 0

    def as_record(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in ("", 0)}


class ReplaceAndRouteProcessor:
    def __init__(
        self,
        *,
        nws: NwsClient,
        nwps: NwpsClient,
        network: NetworkIndex,
        store: ObjectStore,
        bucket: str,
        prefix: str,
        gauge_concurrency: int,
        registry: CollectorRegistry,
    ) -> None:
        self._nws = nws
        self._nwps = nwps
        self._network = network
        self._store = store
        self._bucket = bucket
        self._prefix = prefix
        self._gauge_slots = asyncio.Semaphore(gauge_concurrency)
        self._gauges = Counter(
            "rnr_worker_gauges_total",
            "Gauges of processed products, by outcome and skip reason",
            ["outcome", "reason"],
            registry=registry,
        )
        self._gauges.labels("routed", "")
        for reason in SkipReason:
            self._gauges.labels("skipped", reason.value)

    async def __call__(self, product: ProductMessage) -> None:
        text = await self._nws.product_text(product.id)
        # Parsing is CPU work: keep it off the event loop so heartbeats keep flowing.
        lids = await asyncio.to_thread(extract_lids, text)
        outcomes = await asyncio.gather(*(self._gauge(lid, product) for lid in lids))
        record = {
            "schema_version": 2,
            "product_id": product.id,
            "issuance_time": product.issuance_time.isoformat(),
            "issuing_office": product.issuing_office,
            "wmo_collective_id": product.wmo_collective_id,
            "lids": lids,
            "gauges": [outcome.as_record() for outcome in outcomes],
        }
        key = product_record_key(self._prefix, product)
        await self._store.put_bytes(
            self._bucket, key, json.dumps(record).encode(), content_type="application/json"
        )
        failed = [outcome for outcome in outcomes if outcome.outcome == "failed"]
        logger.info(
            "product processed",
            extra={
                "key": key,
                "gauges": len(lids),
                "routed": sum(outcome.outcome == "routed" for outcome in outcomes),
                "skipped": sum(outcome.outcome == "skipped" for outcome in outcomes),
                "failed": len(failed),
            },
        )
        if failed:
            raise GaugesFailed(
                "; ".join(f"{outcome.lid}: {outcome.reason}" for outcome in failed)[:900]
            )

    async def _gauge(self, lid: str, product: ProductMessage) -> GaugeOutcome:
        async with self._gauge_slots:
            with log_context(product.id, product.id):
                try:
                    outcome = await self._route_gauge(lid, product)
                except TransientError as exc:
                    outcome = GaugeOutcome(lid, "failed", str(exc))
                    logger.warning(
                        "gauge failed; the product will be retried",
                        extra={"lid": lid, "reason": str(exc)},
                    )
                except PermanentError as exc:
                    outcome = GaugeOutcome(lid, "skipped", f"invalid_data: {exc}")
                    logger.error(
                        "gauge data unusable; skipped", extra={"lid": lid, "reason": str(exc)}
                    )
                if outcome.outcome != "failed":
                    self._gauges.labels(outcome.outcome, outcome.reason.split(":")[0]).inc()
                return outcome

    async def _route_gauge(self, lid: str, product: ProductMessage) -> GaugeOutcome:
        forecast = await self._nwps.rfc_forecast(lid)
        if isinstance(forecast, Skipped):
            return self._skipped(forecast)
        try:
            segment = self._network.extract_segment(forecast.reach_id)
        except ReachNotFound:
            return self._skipped(
                Skipped(
                    forecast.lid,
                    SkipReason.REACH_NOT_IN_HYDROFABRIC,
                    f"reach {forecast.reach_id} is not in the hydrofabric",
                )
            )
        data = await asyncio.to_thread(self._route_and_write, forecast, segment, product)
        key = output_key(self._prefix, forecast.lid, forecast.t0)
        await self._store.put_bytes(self._bucket, key, data, content_type=NETCDF_CONTENT_TYPE)
        logger.info(
            "gauge routed",
            extra={
                "lid": forecast.lid,
                "reach_id": forecast.reach_id,
                "segments": segment.size,
                "key": key,
                "flood_category": forecast.flood_category,
            },
        )
        return GaugeOutcome(forecast.lid, "routed", key=key, segments=segment.size)

    @staticmethod
    def _route_and_write(forecast: RfcForecast, segment: Segment, product: ProductMessage) -> bytes:
        """CPU-bound: runs in a worker thread (numpy releases the GIL in its loops)."""
        result = route_forecast(
            segment.parameters,
            segment.downstream,
            forecast.valid_times,
            forecast.flow_m3_s,
            forecast.initial_flow_m3_s,
        )
        return write_forecast_netcdf(
            result,
            feature_ids=segment.feature_ids,
            t0=forecast.t0,
            dt_s=300.0,
            attributes=ForecastAttributes.of(
                forecast, segment, issuance_time=product.issuance_time, product_id=product.id
            ),
        )

    @staticmethod
    def _skipped(skipped: Skipped) -> GaugeOutcome:
        logger.info(
            "gauge skipped",
            extra={
                "lid": skipped.lid,
                "skip_reason": skipped.reason.value,
                "detail": skipped.detail,
            },
        )
        return GaugeOutcome(skipped.lid, "skipped", skipped.reason.value)
