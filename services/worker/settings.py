"""Worker configuration (see the README's configuration table)."""

from pydantic import Field

from rnr.core.settings import (
    AwsSettings,
    BrokerSettings,
    CommonSettings,
    OutputSettings,
    UpstreamSettings,
)


class WorkerSettings(CommonSettings, BrokerSettings, AwsSettings, OutputSettings, UpstreamSettings):
    worker_prefetch: int = Field(8, ge=1, le=1000)
    # Fargate sends SIGKILL 30 s after SIGTERM by default (the task's stopTimeout):
    # drain for less than that, leaving time to requeue what did not finish.
    worker_drain_seconds: float = Field(25.0, ge=0, le=115)
