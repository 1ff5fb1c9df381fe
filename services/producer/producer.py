"""One producer run: list HML products, publish each new one exactly once.

For each listed product, oldest first, with at most ``PRODUCER_CONCURRENCY`` in flight:

1. claim it in Redis (atomic ``SET NX``): a product already claimed is a duplicate;
2. publish it with a broker confirm;
3. commit the claim for ``DEDUPE_TTL_SECONDS``, or release it if the publish failed.

A failed publish leaves the product unseen, so the next run picks it up. Any failure
makes the whole run fail (Lambda error, non-zero exit) after the other products were
tried, so an operator hears about it and nothing waits behind one bad product.

After a run that published, the producer wakes the autoscaler (``AUTOSCALER_FUNCTION_NAME``,
``rnr.autoscaling.wake``) so that a service at zero tasks starts one now rather than at
the autoscaler's next scheduled run. A wake that fails only costs that wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis
from prometheus_client import CollectorRegistry, Counter, Histogram

from rnr.autoscaling.wake import wake_autoscaler
from rnr.core.errors import RnrError
from rnr.core.logging import log_context
from rnr.core.metrics import emit_emf
from rnr.core.readiness import ReadinessCheck
from rnr.messaging.connection import connect
from rnr.messaging.models import ProductMessage
from rnr.messaging.publisher import Publisher
from rnr.messaging.topology import Topology, declare_topology
from rnr.storage.aws import AwsClients
from rnr.storage.dedupe import ClaimOutcome, DedupeStore, RedisDedupeStore
from rnr.storage.secrets import SecretCache
from rnr.upstream.http import UpstreamClient
from rnr.upstream.nws import NwsClient, ProductSummary
from services.producer.settings import ProducerSettings

logger = logging.getLogger(__name__)

OUTCOMES = ("published", "duplicate", "in_progress", "failed", "invalid")


class ProducerRunFailed(RnrError):
    """Some products could not be published; they stay unseen for the next run."""

    def __init__(self, summary: dict[str, int]) -> None:
        super().__init__(
            f"{summary['failed']} of {summary['new']} new products were not published "
            f"(they will be retried next run): {summary}"
        )
        self.summary = summary


class ProducerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.products = Counter(
            "rnr_producer_products_total",
            "Listed products by outcome",
            ["outcome"],
            registry=registry,
        )
        self.runs = Counter(
            "rnr_producer_runs_total", "Producer runs by result", ["result"], registry=registry
        )
        self.run_seconds = Histogram(
            "rnr_producer_run_seconds", "Duration of a producer run", registry=registry
        )
        self.wakes = Counter(
            "rnr_producer_autoscaler_wakes_total",
            "Asynchronous invokes of the autoscaler after a run that published, by result",
            ["result"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.products.labels(outcome)
        for result in ("ok", "failed"):
            self.runs.labels(result)
            self.wakes.labels(result)


@dataclass
class RunSummary:
    listed: int = 0
    new: int = 0
    duplicate: int = 0
    in_progress: int = 0
    published: int = 0
    failed: int = 0
    invalid: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "listed": self.listed,
            "new": self.new,
            "duplicate": self.duplicate,
            "in_progress": self.in_progress,
            "published": self.published,
            "failed": self.failed,
            "invalid": self.invalid,
        }


class Producer:
    """The run logic, with its collaborators injected so tests can fail any of them.

    Products go through in batches of ``concurrency``, oldest first: one Redis round
    trip claims the batch, its publishes await their confirms concurrently, and one
    round trip commits the published and releases the refused.
    """

    def __init__(
        self,
        *,
        nws: NwsClient,
        dedupe: DedupeStore,
        publisher: Publisher,
        routing_key: str,
        concurrency: int,
        metrics: ProducerMetrics,
    ) -> None:
        self._nws = nws
        self._dedupe = dedupe
        self._publisher = publisher
        self._routing_key = routing_key
        self._batch_size = concurrency
        self._metrics = metrics

    async def run(self) -> RunSummary:
        listing = await self._nws.list_products("HML")
        summary = RunSummary(listed=len(listing.products), invalid=len(listing.invalid))
        self._metrics.products.labels("invalid").inc(len(listing.invalid))
        for start in range(0, len(listing.products), self._batch_size):
            batch = listing.products[start : start + self._batch_size]
            for outcome in await self._run_batch(batch, summary):
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                self._metrics.products.labels(outcome).inc()
        summary.new = summary.published + summary.failed
        return summary

    async def _run_batch(self, batch: list[ProductSummary], summary: RunSummary) -> list[str]:
        try:
            claims = await self._dedupe.claim_many([product.id for product in batch])
        except Exception as exc:
            for product in batch:
                self._record_failure(product, exc, summary)
            return ["failed"] * len(batch)
        outcomes: dict[str, str] = {}
        to_publish = []
        for product, claim in zip(batch, claims, strict=True):
            if claim is ClaimOutcome.PUBLISHED_BEFORE:
                outcomes[product.id] = "duplicate"
            elif claim is ClaimOutcome.IN_PROGRESS:
                outcomes[product.id] = "in_progress"
                with log_context(product.id, product.id):
                    logger.info("product claimed by a concurrent or interrupted run; skipping")
            else:
                to_publish.append(product)
        results = await asyncio.gather(
            *(self._publish(product) for product in to_publish), return_exceptions=True
        )
        published, refused = [], []
        for product, result in zip(to_publish, results, strict=True):
            if isinstance(result, BaseException):
                refused.append(product.id)
                outcomes[product.id] = "failed"
                self._record_failure(product, result, summary)
            else:
                published.append(product.id)
                outcomes[product.id] = "published"
        if published:
            # One line per batch, not per product: at INFO a line per product costs a
            # fifth of the publishing throughput (BENCHMARKS.md). Find a product with
            # Logs Insights: filter product_ids like "<product id>".
            logger.info(
                "products published", extra={"count": len(published), "product_ids": published}
            )
        try:
            await self._dedupe.release_many(refused)
        except Exception:
            logger.warning("could not release claims; they lapse by themselves", exc_info=True)
        try:
            await self._dedupe.commit_many(published)
        except Exception:
            # Published and confirmed: nothing is lost. The claims lapse and a later run
            # may publish these again, which the worker's idempotent output absorbs.
            logger.warning("published, but committing the dedupe keys failed", exc_info=True)
        return [outcomes[product.id] for product in batch]

    async def _publish(self, product: ProductSummary) -> None:
        await self._publisher.publish(
            ProductMessage.from_summary(product).to_body(),
            routing_key=self._routing_key,
            message_id=product.id,
            correlation_id=product.id,
        )

    @staticmethod
    def _record_failure(product: ProductSummary, exc: BaseException, summary: RunSummary) -> None:
        summary.failures.append({"product_id": product.id, "reason": str(exc)})
        with log_context(product.id, product.id):
            logger.error(
                "product not published; it stays unseen and the next run retries it",
                extra={"reason": str(exc), "error_type": type(exc).__name__},
            )


@dataclass
class ProducerState:
    settings: ProducerSettings
    metrics: ProducerMetrics
    secrets: SecretCache
    aws: AwsClients


def setup(settings: ProducerSettings, registry: CollectorRegistry) -> ProducerState:
    # One AwsClients for the secret and the wake: the SDK loads once, on first use.
    aws = AwsClients(settings)
    return ProducerState(
        settings=settings, metrics=ProducerMetrics(registry), secrets=SecretCache(aws), aws=aws
    )


async def wake(state: ProducerState, published: int) -> bool | None:
    """Wake the autoscaler after a run that published: True if Lambda took the event,
    False if the invoke failed, None if there was nothing to wake for or no function is
    configured (the local stack)."""
    function_name = state.settings.autoscaler_function_name
    if not published or function_name is None:
        return None
    woken = await wake_autoscaler(state.aws, function_name, published)
    state.metrics.wakes.labels("ok" if woken else "failed").inc()
    return woken


async def run(state: ProducerState, event: Mapping[str, Any]) -> dict[str, Any]:
    """One scheduled run. Connections are opened per run: a Lambda frozen between
    invocations would otherwise wake up holding dead sockets."""
    settings = state.settings
    topology = Topology.from_settings(settings)
    with state.metrics.run_seconds.time():
        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(
                UpstreamClient.open_session(
                    user_agent=settings.http_user_agent,
                    timeout_seconds=settings.http_timeout_seconds,
                )
            )
            http = UpstreamClient(
                session,
                retries=settings.http_retries,
                backoff_seconds=settings.http_backoff_seconds,
            )
            redis_client = redis.from_url(settings.redis_url.get_secret_value())
            stack.push_async_callback(redis_client.aclose)
            connection = await connect(settings, state.secrets, name="rnr-producer")
            stack.push_async_callback(connection.close)
            channel = await Publisher.open_channel(connection)
            declared = await declare_topology(channel, topology)
            producer = Producer(
                nws=NwsClient(http, str(settings.nws_api_url)),
                dedupe=RedisDedupeStore(
                    redis_client,
                    ttl_seconds=settings.dedupe_ttl_seconds,
                    claim_seconds=settings.dedupe_claim_seconds,
                    prefix=settings.dedupe_key_prefix,
                ),
                publisher=Publisher(
                    declared.exchange, timeout_seconds=settings.rabbitmq_publish_timeout_seconds
                ),
                routing_key=topology.routing_key,
                concurrency=settings.producer_concurrency,
                metrics=state.metrics,
            )
            try:
                summary = await producer.run()
            except Exception:
                state.metrics.runs.labels("failed").inc()
                raise
        # Also after a run that failed part-way: what it did publish is waiting.
        woken = await wake(state, summary.published)
    counts = summary.counts()
    emit_emf("producer", {**counts, "autoscaler_wake_failed": int(woken is False)})
    if summary.failed:
        state.metrics.runs.labels("failed").inc()
        raise ProducerRunFailed(counts)
    state.metrics.runs.labels("ok").inc()
    return {**counts, "autoscaler_woken": woken is True}


def checks(state: ProducerState) -> dict[str, ReadinessCheck]:
    settings = state.settings

    async def redis_ping() -> None:
        client = redis.from_url(settings.redis_url.get_secret_value(), socket_timeout=1.5)
        try:
            await client.ping()
        finally:
            await client.aclose()

    async def rabbitmq_connect() -> None:
        connection = await connect(settings, state.secrets, name="rnr-producer-readyz")
        await connection.close()

    return {"redis": redis_ping, "rabbitmq": rabbitmq_connect}
