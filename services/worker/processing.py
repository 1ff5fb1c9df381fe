"""What the worker does with one HML product: Replace and Route every gauge in it.

product text -> gauge ids -> per gauge, concurrently and bounded: NWPS forecast and
gate -> segment from the hydrofabric -> route -> NetCDF to S3. Every gauge ends with
one outcome, decided at the gauge so that one bad gauge costs only itself:

* ``routed``: its NetCDF is written;
* ``skipped`` with a reason: not flooding, unknown reach, ... or ``invalid_data: <why>``
  for input that can never be routed (a malformed series, an id that is not one, an
  NWPS answer that stayed garbled through the product's last attempt);
* ``failed``: a transient failure (NWPS 5xx or timeout, S3 error); the whole product
  retries once the other gauges are done, and the outputs already written are simply
  overwritten then, since their keys depend only on gauge and t0;
* ``failed`` with reason ``bug: ...``: an exception of no expected type. It is logged
  with its traceback at the gauge, the other gauges still finish, and the exception is
  raised again once the record is written, so the consumer dead-letters the product at
  once (a retry cannot fix a bug).

A JSON record per product lists every gauge's outcome, next to the outputs; it is
written whatever the outcomes. A redelivered product whose record is already complete
(same product, no failed gauge) is acknowledged as a duplicate without re-routing: a
Redis loss makes the producer publish every listed product again, and this keeps that
to one S3 read per product.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from rnr.core.errors import PermanentError, TransientError
from rnr.core.logging import log_context
from rnr.hydro.forecast import RfcForecast, Skipped, SkipReason
from rnr.hydro.hml import Sites, extract_lids
from rnr.hydro.segments import NetworkIndex, ReachNotFound, Segment
from rnr.hydro_io.routed_forecast import route_to_netcdf
from rnr.messaging.consumer import Delivery, Handled
from rnr.messaging.models import ProductMessage
from rnr.storage.output_layout import output_key, product_record_key
from rnr.storage.s3 import ObjectStore
from rnr.upstream.http import UpstreamGarbled
from rnr.upstream.nwps import NwpsClient
from rnr.upstream.nws import NwsClient

logger = logging.getLogger(__name__)

NETCDF_CONTENT_TYPE = "application/x-netcdf"
RECORD_SCHEMA_VERSION = 2
# The fields of a product record that identify the product it records.
_RECORDED_PRODUCT_FIELDS = ("product_id", "issuance_time", "issuing_office", "wmo_collective_id")
_REASON_CHARACTERS = 300
# Routing one gauge takes milliseconds on a short segment and seconds on a long main stem.
ROUTING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GaugesFailed(TransientError):
    """Some gauges of a product failed in a way a retry may fix."""


class UnroutableForecast(PermanentError):
    """Routing or encoding refused a forecast that passed the gate; the reason says why."""


@dataclass(frozen=True)
class GaugeOutcome:
    lid: str
    outcome: str  # routed | skipped | failed
    reason: str = ""
    key: str = ""
    segments: int = 0

    def as_record(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in ("", 0)}

    @property
    def label(self) -> str:
        """The metric's bounded reason label: the part before any detail."""
        return self.reason.split(":")[0]


def _record_of(product: ProductMessage, sites: Sites, outcomes: list[GaugeOutcome]) -> bytes:
    record = {
        "schema_version": RECORD_SCHEMA_VERSION,
        "product_id": product.id,
        "issuance_time": product.issuance_time.isoformat(),
        "issuing_office": product.issuing_office,
        "wmo_collective_id": product.wmo_collective_id,
        "lids": sites.lids,
        "complete": all(outcome.outcome != "failed" for outcome in outcomes),
        "gauges": [outcome.as_record() for outcome in outcomes],
    }
    return json.dumps(record).encode()


def _records_product(record_bytes: bytes, product: ProductMessage) -> bool:
    """True when a stored record is complete and about this very product."""
    try:
        record = json.loads(record_bytes)
    except ValueError:
        return False
    if not isinstance(record, dict) or record.get("complete") is not True:
        return False
    expected = json.loads(_record_of(product, Sites([], []), []))
    return all(record.get(field) == expected[field] for field in _RECORDED_PRODUCT_FIELDS)


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
        self._gauge_concurrency = gauge_concurrency
        self._gauges = Counter(
            "rnr_worker_gauges_total",
            "Gauges of processed products, by outcome and reason",
            ["outcome", "reason"],
            registry=registry,
        )
        self._gauges.labels("routed", "")
        for reason in SkipReason:
            self._gauges.labels("skipped", reason.value)
        for failure in ("transient", "bug"):
            self._gauges.labels("failed", failure)
        # Apart from the whole message's time (rnr_worker_processing_seconds), which the
        # upstream calls and S3 dominate: this is the CPU cost a larger segment raises.
        self._routing_seconds = Histogram(
            "rnr_worker_routing_seconds",
            "Time to route one gauge's forecast down its segment and encode the NetCDF, "
            "for every gauge the router ran on (refused forecasts included)",
            registry=registry,
            buckets=ROUTING_BUCKETS,
        )

    async def __call__(self, delivery: Delivery) -> Handled:
        product = delivery.product
        key = product_record_key(self._prefix, product.id, product.issuance_time)
        existing = await self._store.get_bytes_if_exists(self._bucket, key)
        if existing is not None and _records_product(existing, product):
            logger.info(
                "product already processed; acknowledged as a duplicate", extra={"key": key}
            )
            return Handled.DUPLICATE
        text = await self._nws.product_text(product.id)
        # Parsing is CPU work: keep it off the event loop so heartbeats keep flowing.
        sites = await asyncio.to_thread(extract_lids, text)
        # The bound is per product (README): each message in flight routes its own gauges.
        slots = asyncio.Semaphore(self._gauge_concurrency)
        results = await asyncio.gather(*(self._gauge(lid, delivery, slots) for lid in sites.lids))
        outcomes = [outcome for outcome, _ in results]
        for rejected in sites.rejected:
            outcomes.append(
                GaugeOutcome(rejected.site_id, "skipped", f"invalid_data: {rejected.reason}")
            )
            self._gauges.labels("skipped", SkipReason.INVALID_DATA.value).inc()
        await self._store.put_bytes(
            self._bucket, key, _record_of(product, sites, outcomes), content_type="application/json"
        )
        failed = [outcome for outcome in outcomes if outcome.outcome == "failed"]
        logger.info(
            "product processed",
            extra={
                "key": key,
                "gauges": len(outcomes),
                "routed": sum(outcome.outcome == "routed" for outcome in outcomes),
                "skipped": sum(outcome.outcome == "skipped" for outcome in outcomes),
                "failed": len(failed),
            },
        )
        bug = next((error for _, error in results if error is not None), None)
        if bug is not None:
            raise bug
        if failed:
            raise GaugesFailed(
                "; ".join(f"{outcome.lid}: {outcome.reason}" for outcome in failed)[:900]
            )
        return Handled.PROCESSED

    async def _gauge(
        self, lid: str, delivery: Delivery, slots: asyncio.Semaphore
    ) -> tuple[GaugeOutcome, Exception | None]:
        """One gauge's outcome, and the exception to re-raise if it met a bug."""
        product = delivery.product
        bug: Exception | None = None
        async with slots:
            with log_context(product.id, product.id):
                try:
                    outcome = await self._route_gauge(lid, product)
                except UpstreamGarbled as exc:
                    if not delivery.is_last_attempt:
                        outcome = self._failed(lid, exc)
                    else:
                        outcome = self._invalid(lid, f"NWPS answers stayed garbled: {exc}")
                except TransientError as exc:
                    outcome = self._failed(lid, exc)
                except PermanentError as exc:
                    outcome = self._invalid(lid, str(exc))
                except Exception as exc:
                    bug = exc
                    outcome = GaugeOutcome(
                        lid, "failed", f"bug: {type(exc).__name__}: {exc}"[:_REASON_CHARACTERS]
                    )
                    logger.exception(
                        "unexpected error routing a gauge: a bug; the product is dead-lettered",
                        extra={"lid": lid, "error_type": type(exc).__name__},
                    )
                if outcome.outcome == "failed":
                    self._gauges.labels("failed", "bug" if bug else "transient").inc()
                else:
                    self._gauges.labels(outcome.outcome, outcome.label).inc()
                return outcome, bug

    @staticmethod
    def _failed(lid: str, exc: Exception) -> GaugeOutcome:
        logger.warning(
            "gauge failed; the product will be retried", extra={"lid": lid, "reason": str(exc)}
        )
        return GaugeOutcome(lid, "failed", str(exc)[:_REASON_CHARACTERS])

    @staticmethod
    def _invalid(lid: str, reason: str) -> GaugeOutcome:
        logger.error("gauge data unusable; skipped", extra={"lid": lid, "reason": reason})
        return GaugeOutcome(lid, "skipped", f"invalid_data: {reason}"[:_REASON_CHARACTERS])

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
        data = await asyncio.to_thread(self._timed_route_and_write, forecast, segment, product)
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

    def _timed_route_and_write(
        self, forecast: RfcForecast, segment: Segment, product: ProductMessage
    ) -> bytes:
        """In the worker thread, so that the time is the routing's, not the wait for it."""
        with self._routing_seconds.time():
            return self._route_and_write(forecast, segment, product)

    @staticmethod
    def _route_and_write(forecast: RfcForecast, segment: Segment, product: ProductMessage) -> bytes:
        """CPU-bound: runs in a worker thread (numpy releases the GIL in its loops).

        Raises:
            UnroutableForecast: routing or the NetCDF writer refused the forecast's
                values (a ``ValueError`` or arithmetic error on this input).
        """
        try:
            return route_to_netcdf(
                forecast, segment, issuance_time=product.issuance_time, product_id=product.id
            ).netcdf
        except (ValueError, ArithmeticError) as exc:
            raise UnroutableForecast(f"the forecast cannot be routed: {exc}") from exc

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
        reason = skipped.reason.value
        if skipped.reason is SkipReason.INVALID_DATA:
            reason = f"{reason}: {skipped.detail}"[:_REASON_CHARACTERS]
        return GaugeOutcome(skipped.lid, "skipped", reason)
