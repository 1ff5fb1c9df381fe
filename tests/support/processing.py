"""The worker's processor run in process, on the replay server, moto and a network index."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aioboto3
from prometheus_client import CollectorRegistry

from rnr.hydro.segments import NetworkIndex
from rnr.messaging.consumer import Delivery, Handled
from rnr.messaging.models import ProductMessage
from rnr.storage.output_layout import product_record_key
from rnr.storage.s3 import ObjectStore
from rnr.upstream.http import UpstreamClient
from rnr.upstream.nwps import NwpsClient
from rnr.upstream.nws import NwsClient
from services.worker.processing import ReplaceAndRouteProcessor
from tests.conftest import Replay

PREFIX = "replace_and_route"


@dataclass
class Worker:
    process: Callable[..., object]
    s3: object
    bucket: str
    registry: CollectorRegistry

    async def keys(self) -> list[str]:
        listed = await self.s3.list_objects_v2(Bucket=self.bucket)  # type: ignore[attr-defined]
        return sorted(item["Key"] for item in listed.get("Contents", []))

    async def record(self, product: ProductMessage) -> dict:
        answer = await self.s3.get_object(  # type: ignore[attr-defined]
            Bucket=self.bucket, Key=product_record_key(PREFIX, product.id, product.issuance_time)
        )
        async with answer["Body"] as body:
            return json.loads(await body.read())

    def gauges(self, outcome: str, reason: str) -> float:
        labels = {"outcome": outcome, "reason": reason}
        return self.registry.get_sample_value("rnr_worker_gauges_total", labels) or 0.0


@asynccontextmanager
async def processor_for(
    replay: Replay, moto_endpoint: str, bucket: str, network: NetworkIndex
) -> AsyncIterator[Worker]:
    """The real processor on the replay server and moto, with ``network`` as its index."""
    session = aioboto3.Session(region_name="us-east-1")
    async with (
        session.client("s3", endpoint_url=moto_endpoint) as s3,
        UpstreamClient.open_session(user_agent="rnr-tests", timeout_seconds=10) as http_session,
    ):
        http = UpstreamClient(http_session, retries=1, backoff_seconds=0.01)
        registry = CollectorRegistry()
        processor = ReplaceAndRouteProcessor(
            nws=NwsClient(http, replay.nws_api_url),
            nwps=NwpsClient(http, replay.nwps_api_url),
            network=network,
            store=ObjectStore(s3),
            bucket=bucket,
            prefix=PREFIX,
            gauge_concurrency=2,
            registry=registry,
        )

        async def process(product: ProductMessage, attempt: int = 1) -> Handled:
            return await processor(Delivery(product, attempt, max_attempts=3))

        yield Worker(process, s3, bucket, registry)
