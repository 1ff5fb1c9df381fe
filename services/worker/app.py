"""Wiring of the worker: HTTP health app, broker connection, consumer, processor.

The HTTP app comes up at once and answers /readyz with 503 until the consumer is
active; the broker connection is retried in the background, so a worker started
before RabbitMQ waits for it instead of crash-looping.

Stopping is planned inside one budget (``services.worker.stop_budget``): at SIGTERM,
:meth:`WorkerRuntime.drain` runs while the HTTP server still serves, so ``/readyz``
turns 503 at the signal and stays reachable; a start-up still in progress is cancelled
and never begins consuming; in-flight messages finish or are requeued. Then uvicorn
shuts down and the lifespan closes the rest (scale-in protection, connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from rnr.core.emf_export import EmfExporter, PeriodicEmfExport
from rnr.core.errors import ConfigurationError
from rnr.core.health import create_http_app
from rnr.hydro.muskingum_cunge import warm_up
from rnr.hydro.segments import NetworkIndex
from rnr.messaging.connection import connect
from rnr.messaging.consumer import Consumer, ConsumerMetrics
from rnr.messaging.topology import Topology
from rnr.storage.aws import AwsClients
from rnr.storage.hydrofabric_cache import fetch_hydrofabric
from rnr.storage.index_artifact_s3 import OUTCOMES, load_network_index
from rnr.storage.s3 import ObjectStore
from rnr.storage.secrets import SecretCache
from rnr.upstream.http import UpstreamClient
from rnr.upstream.nwps import NwpsClient
from rnr.upstream.nws import NwsClient
from services.worker.processing import ReplaceAndRouteProcessor
from services.worker.settings import WorkerSettings
from services.worker.task_protection import TaskProtection

logger = logging.getLogger(__name__)

RECONNECT_MAX_SECONDS = 30.0


class WorkerRuntime:
    """Owns the long-lived objects and their order of opening and closing."""

    def __init__(self, settings: WorkerSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.consumer: Consumer | None = None
        self._metrics = ConsumerMetrics(registry)
        self._aws = AwsClients(settings)
        self._secrets = SecretCache(self._aws)
        self._stack = contextlib.AsyncExitStack()
        self._starting: asyncio.Task[None] | None = None
        self._stopping = False
        self._drained = asyncio.Event()
        self.network: NetworkIndex | None = None
        self._index_loads = Counter(
            "rnr_worker_network_index_loads_total",
            "Network index loads at start-up, by where the index came from",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self._index_loads.labels(outcome=outcome)
        self.protection = TaskProtection(
            settings.ecs_agent_uri,
            expires_minutes=settings.worker_scale_in_protection_minutes,
            registry=registry,
        )
        # In AWS the registry reaches CloudWatch as EMF lines on stdout (off at 0).
        self._emf = PeriodicEmfExport(
            EmfExporter(registry, "worker"), settings.worker_emf_interval_seconds
        )

    async def hydrofabric_readiness(self) -> None:
        if self.network is None:
            raise RuntimeError("hydrofabric not loaded yet")

    async def readiness(self) -> None:
        if self._stopping:
            raise RuntimeError("stopping: finishing in-flight messages, taking no new ones")
        if self.consumer is None:
            raise RuntimeError("not connected to RabbitMQ yet")
        if not self.consumer.is_consuming():
            raise RuntimeError("consumer inactive (RabbitMQ connection lost; reconnecting)")

    async def start(self) -> None:
        """Open clients, then connect and consume in the background."""
        settings = self.settings
        self._emf.start()
        s3 = await self._stack.enter_async_context(self._aws.client("s3"))
        session = await self._stack.enter_async_context(
            UpstreamClient.open_session(
                user_agent=settings.http_user_agent, timeout_seconds=settings.http_timeout_seconds
            )
        )
        http = UpstreamClient(
            session, retries=settings.http_retries, backoff_seconds=settings.http_backoff_seconds
        )
        self._s3 = s3
        self._http = http
        self._starting = asyncio.create_task(self._load_then_consume())
        self._starting.add_done_callback(self._report_start_failure)

    @staticmethod
    def _report_start_failure(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.critical(
                "worker could not start consuming; /readyz stays 503",
                exc_info=task.exception(),
            )

    async def _load_then_consume(self) -> None:
        await self._load_hydrofabric()
        await self._connect_and_consume()

    async def _load_hydrofabric(self) -> None:
        """Fetch the hydrofabric once and index it once; every message reuses the index."""
        settings = self.settings
        started = time.perf_counter()
        location = await fetch_hydrofabric(
            self._s3,
            settings.input_bucket,
            settings.hydrofabric_location,
            settings.hydrofabric_cache_dir,
        )
        # The index is a prebuilt artifact, memory-mapped: fetched from next to the
        # hydrofabric in the bucket, or built (and uploaded) here when it is missing.
        loaded = await load_network_index(
            self._s3,
            settings.input_bucket,
            settings.hydrofabric_location,
            location,
            settings.flowpath_attributes_layer,
            settings.hydrofabric_cache_dir,
        )
        self._index_loads.labels(outcome=loaded.outcome).inc()
        self.network = loaded.index
        await asyncio.to_thread(warm_up)
        processor = ReplaceAndRouteProcessor(
            nws=NwsClient(self._http, str(settings.nws_api_url)),
            nwps=NwpsClient(self._http, str(settings.nwps_api_url)),
            network=self.network,
            store=ObjectStore(self._s3),
            bucket=settings.output_bucket,
            prefix=settings.output_prefix,
            gauge_concurrency=settings.worker_gauge_concurrency,
            registry=self.registry,
        )
        self._processor = self.protection.guard(processor)
        logger.info(
            "hydrofabric loaded",
            extra={
                "location": settings.hydrofabric_location,
                "flowpaths": self.network.flowpath_count,
                "attributes_layer": self.network.attributes_layer,
                "index": loaded.outcome,
                "seconds": round(time.perf_counter() - started, 2),
            },
        )

    async def _connect_and_consume(self) -> None:
        delay = 1.0
        while True:
            try:
                connection = await connect(self.settings, self._secrets, name="rnr-worker")
                break
            except ConfigurationError:
                logger.critical("cannot connect to RabbitMQ: fix the configuration", exc_info=True)
                raise
            except Exception as exc:
                logger.error(
                    "RabbitMQ unreachable; retrying. Check RABBITMQ_URL/RABBITMQ_ENDPOINT, "
                    "that the broker runs, and that security groups allow port 5671/5672",
                    extra={"reason": repr(exc), "retry_in_seconds": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        self._stack.push_async_callback(connection.close)
        if self._stopping:
            return
        # Known before it starts, so a stop during start() still stops it.
        self.consumer = Consumer(
            connection,
            Topology.from_settings(self.settings),
            self._processor,
            prefetch=self.settings.worker_prefetch,
            max_attempts=self.settings.max_attempts,
            publish_timeout_seconds=self.settings.rabbitmq_publish_timeout_seconds,
            metrics=self._metrics,
        )
        await self.consumer.start()

    async def drain(self) -> None:
        """The first part of a stop, run at the signal: take nothing new, finish or
        requeue what is in flight. Idempotent."""
        if self._stopping:
            await self._drained.wait()
            return
        self._stopping = True
        budget = self.settings.stop_budget
        logger.info("stop requested: draining", extra={"drain_seconds": budget.drain_seconds})
        try:
            if self._starting is not None and not self._starting.done():
                self._starting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._starting
            if self.consumer is not None:
                await self.consumer.stop(budget.drain_seconds, budget.requeue_seconds)
        finally:
            self._drained.set()

    async def stop(self) -> None:
        await self.drain()
        await self._emf.stop()  # the last flush, the drain's outcomes included
        try:
            await asyncio.wait_for(
                self.protection.close(), timeout=self.settings.stop_budget.release_seconds
            )
        except TimeoutError:
            logger.warning("scale-in protection not released in time; it expires by itself")
        await self._stack.aclose()
        logger.info("worker stopped")


def create_app(settings: WorkerSettings) -> FastAPI:
    registry = CollectorRegistry()
    runtime = WorkerRuntime(settings, registry)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        yield
        await runtime.stop()

    app = create_http_app(
        "worker",
        registry,
        {"hydrofabric": runtime.hydrofabric_readiness, "rabbitmq_consumer": runtime.readiness},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def drain_of(app: FastAPI) -> Callable[[], Awaitable[None]]:
    """What the HTTP server runs at SIGTERM, before it stops serving."""
    runtime: WorkerRuntime = app.state.runtime
    return runtime.drain
