"""Worker configuration (see the README's configuration table)."""

from pydantic import Field

from rnr.core.settings import (
    BrokerSettings,
    CommonSettings,
    HydrofabricSettings,
    OutputSettings,
    UpstreamSettings,
)
from services.worker.stop_budget import MIN_STOP_TIMEOUT_SECONDS, StopBudget


class WorkerSettings(
    CommonSettings, BrokerSettings, HydrofabricSettings, OutputSettings, UpstreamSettings
):
    # The reference takes the -ml layer where it exists (RNR_SPEC section 3).
    flowpath_attributes_layer: str = "flowpath-attributes-ml"
    worker_prefetch: int = Field(8, ge=1, le=1000)
    worker_gauge_concurrency: int = Field(4, ge=1, le=64)
    # Seconds from SIGTERM to SIGKILL: the task definition's stopTimeout (Fargate's
    # default and Terraform's is 30). Every wait of the stop is planned inside it.
    worker_stop_timeout_seconds: float = Field(30.0, ge=MIN_STOP_TIMEOUT_SECONDS, le=120)
    # Injected by the ECS agent into every task's containers; unset outside ECS, where
    # scale-in protection is a no-op.
    ecs_agent_uri: str | None = None
    # How long one protection lasts if never released (renewed while busy).
    worker_scale_in_protection_minutes: int = Field(10, ge=1, le=2880)
    # Seconds between EMF flushes of the metrics to stdout (CloudWatch, via the task's
    # logs); 0 = off, the local default, where /metrics is scraped. Terraform sets 60.
    worker_emf_interval_seconds: float = Field(0, ge=0, le=3600)

    @property
    def stop_budget(self) -> StopBudget:
        return StopBudget.within(self.worker_stop_timeout_seconds)
