"""What the worker does with one product, before the hydrology plugs in.

Fetch the product text, extract its gauge ids, and write one JSON record to the
output bucket. The key depends only on the product, so a redelivered message
overwrites its own record and never adds a second one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from rnr.hydro.hml import extract_lids
from rnr.messaging.models import ProductMessage
from rnr.storage.s3 import ObjectStore
from rnr.upstream.nws import NwsClient

logger = logging.getLogger(__name__)


def gauge_record_key(prefix: str, product: ProductMessage) -> str:
    day = product.issuance_time.astimezone(dt.UTC).strftime("%Y/%m/%d")
    return f"{prefix}/gauges/{day}/{product.id}.json"


class GaugeListProcessor:
    def __init__(
        self,
        *,
        nws: NwsClient,
        store: ObjectStore,
        bucket: str,
        prefix: str,
        registry: CollectorRegistry,
    ) -> None:
        self._nws = nws
        self._store = store
        self._bucket = bucket
        self._prefix = prefix
        self._gauges = Counter(
            "rnr_worker_gauges_total", "Gauge ids found in processed products", registry=registry
        )

    async def __call__(self, product: ProductMessage) -> None:
        text = await self._nws.product_text(product.id)
        # Parsing is CPU work: keep it off the event loop so heartbeats keep flowing.
        lids = await asyncio.to_thread(extract_lids, text)
        record: dict[str, Any] = {
            "schema_version": 1,
            "product_id": product.id,
            "issuance_time": product.issuance_time.isoformat(),
            "issuing_office": product.issuing_office,
            "wmo_collective_id": product.wmo_collective_id,
            "lids": lids,
        }
        key = gauge_record_key(self._prefix, product)
        await self._store.put_bytes(
            self._bucket, key, json.dumps(record).encode(), content_type="application/json"
        )
        self._gauges.inc(len(lids))
        logger.info("gauge list written", extra={"key": key, "gauges": len(lids)})
