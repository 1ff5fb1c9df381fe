"""Worker configuration (see the README's configuration table)."""

from pydantic import Field

from rnr.core.settings import (
    BrokerSettings,
    CommonSettings,
    HydrofabricSettings,
    OutputSettings,
    UpstreamSettings,
)


class WorkerSettings(
    CommonSettings, BrokerSettings, HydrofabricSettings, OutputSettings, UpstreamSettings
):
    # The reference takes the -ml layer where it exists (RNR_SPEC section 3).
    flowpath_attributes_layer: str = "flowpath-attributes-ml"
    worker_prefetch: int = Field(8, ge=1, le=1000)
    worker_gauge_concurrency: int = Field(4, ge=1, le=64)
    # Fargate sends SIGKILL 30 s after SIGTERM by default (the task's stopTimeout):
    # drain for less than that, leaving time to requeue what did not finish.
    worker_drain_seconds: float = Field(25.0, ge=0, le=115)
    # Injected by the ECS agent into every task's containers; unset outside ECS, where
    # scale-in protection is a no-op.
    ecs_agent_uri: str | None = None
    # How long one protection lasts if never released (renewed while busy).
    worker_scale_in_protection_minutes: int = Field(10, ge=1, le=2880)
