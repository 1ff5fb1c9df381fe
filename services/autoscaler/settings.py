"""Autoscaler configuration (see the README's configuration table)."""

from typing import Literal, Self

from pydantic import Field, model_validator

from rnr.autoscaling.policy import PolicyConfig
from rnr.core.settings import AwsSettings, BrokerSettings, CommonSettings, RedisSettings


class AutoscalerSettings(CommonSettings, BrokerSettings, AwsSettings, RedisSettings):
    # direct: set the ECS desired count; metric: publish BacklogPerTask for a
    # target-tracking policy; dry-run: decide and log only (the local stack).
    autoscaler_mode: Literal["direct", "metric", "dry-run"] = "dry-run"
    ecs_cluster: str | None = None
    ecs_service: str | None = None
    rabbitmq_management_url: str | None = None
    autoscaler_min_tasks: int = Field(0, ge=0, le=1000)
    autoscaler_max_tasks: int = Field(10, ge=1, le=1000)
    autoscaler_target_per_task: int = Field(25, ge=1)
    autoscaler_activation_threshold: int = Field(1, ge=1)
    autoscaler_stabilization_seconds: int = Field(300, ge=0, le=3600)
    autoscaler_scale_in_step: int = Field(2, ge=1)
    autoscaler_metric_namespace: str = "rnr-pipeline"
    autoscaler_state_key_prefix: str = "rnr:autoscaler:"

    @model_validator(mode="after")
    def _ecs_named_when_acting(self) -> Self:
        if self.autoscaler_mode != "dry-run" and not (self.ecs_cluster and self.ecs_service):
            raise ValueError(
                f"AUTOSCALER_MODE={self.autoscaler_mode} needs ECS_CLUSTER and ECS_SERVICE"
            )
        if self.autoscaler_min_tasks > self.autoscaler_max_tasks:
            raise ValueError("AUTOSCALER_MIN_TASKS must not exceed AUTOSCALER_MAX_TASKS")
        return self

    def policy(self) -> PolicyConfig:
        return PolicyConfig(
            min_tasks=self.autoscaler_min_tasks,
            max_tasks=self.autoscaler_max_tasks,
            target_per_task=self.autoscaler_target_per_task,
            activation_threshold=self.autoscaler_activation_threshold,
            stabilization_seconds=self.autoscaler_stabilization_seconds,
            scale_in_step=self.autoscaler_scale_in_step,
        )
