"""Configuration from environment variables, validated once at start-up.

Every variable has one name across the services, docker-compose.yml, the Terraform
definitions and the README's configuration table. Groups of variables are mixins;
each service's settings class combines the groups it needs, so a service never
demands a variable it does not read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rnr.core.errors import ConfigurationError


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)


INVOKE_TOKEN_MIN_LENGTH = 16


class CommonSettings(_EnvSettings):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Where /healthz, /readyz, /metrics (and /invoke) listen: this machine only, unless
    # a container sets 0.0.0.0 so that its port mapping or task network reaches it.
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    # The bearer token POST /invoke requires. Unset, /invoke answers on a loopback
    # HTTP_HOST only (rnr.core.lambda_entry).
    invoke_token: SecretStr | None = None

    @field_validator("http_host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if not value or any(c.isspace() or c in "/[]" for c in value):
            raise ValueError("give an address or host name to listen on, e.g. 127.0.0.1 or 0.0.0.0")
        return value

    @field_validator("invoke_token")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if len(token) < INVOKE_TOKEN_MIN_LENGTH or not all("!" <= c <= "~" for c in token):
            raise ValueError(
                f"give at least {INVOKE_TOKEN_MIN_LENGTH} visible ASCII characters without "
                "spaces (e.g. the output of `openssl rand -hex 32`), or leave it unset"
            )
        return value


class BrokerSettings(_EnvSettings):
    """RabbitMQ: a URL locally, or an endpoint plus a Secrets Manager secret in AWS."""

    rabbitmq_url: SecretStr | None = None
    rabbitmq_endpoint: str | None = None
    rabbitmq_secret_arn: str | None = None
    rabbitmq_exchange: str = "rnr"
    rabbitmq_queue: str = "rnr.products"
    rabbitmq_queue_type: Literal["auto", "quorum", "classic"] = "auto"
    rabbitmq_publish_timeout_seconds: float = Field(10.0, gt=0)
    retry_delays_seconds: Annotated[tuple[float, ...], NoDecode] = (5.0, 30.0, 120.0, 600.0)
    max_attempts: int = Field(5, ge=1, le=50)

    @field_validator("retry_delays_seconds", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not parts:
                raise ValueError("give at least one delay, e.g. '5,30,120,600'")
            return tuple(float(part) for part in parts)
        return value

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not all(math.isfinite(delay) and delay >= 0.001 for delay in value):
            raise ValueError("every retry delay must be a finite number of seconds >= 0.001")
        return value

    @model_validator(mode="after")
    def _one_credential_source(self) -> Self:
        has_url = self.rabbitmq_url is not None
        has_secret = self.rabbitmq_endpoint is not None or self.rabbitmq_secret_arn is not None
        if has_url and has_secret:
            raise ValueError(
                "set RABBITMQ_URL, or RABBITMQ_ENDPOINT with RABBITMQ_SECRET_ARN, not both"
            )
        if not has_url and not (self.rabbitmq_endpoint and self.rabbitmq_secret_arn):
            raise ValueError(
                "set RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5672/), or both "
                "RABBITMQ_ENDPOINT and RABBITMQ_SECRET_ARN"
            )
        return self


class RedisSettings(_EnvSettings):
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    dedupe_claim_seconds: int = Field(300, ge=1)
    # Several environments may share one Redis: keep their keys apart.
    dedupe_key_prefix: str = "rnr:product:"


class AwsSettings(_EnvSettings):
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None


class OutputSettings(_EnvSettings):
    output_bucket: str = Field(min_length=3)
    output_prefix: str = "replace_and_route"

    @field_validator("output_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")


class HydrofabricSettings(AwsSettings):
    """Where the hydrofabric lives: the worker reads all of it, the post-processor the
    flowpaths it joins with."""

    input_bucket: str = Field(min_length=3)
    # A .gpkg key, or a prefix holding one <layer>.parquet object per layer.
    hydrofabric_location: str = Field(min_length=1)
    hydrofabric_cache_dir: Path = Path("/tmp/rnr-hydrofabric")


class UpstreamSettings(_EnvSettings):
    """The public NOAA APIs (or the replay server standing in for them)."""

    nws_api_url: HttpUrl = HttpUrl("https://api.weather.gov")
    nwps_api_url: HttpUrl = HttpUrl("https://api.water.noaa.gov/nwps/v1")
    http_user_agent: str = "rnr-pipeline (https://github.com/rnr-pipeline/rnr-pipeline)"
    http_timeout_seconds: float = Field(10.0, gt=0)
    http_retries: int = Field(3, ge=0, le=10)
    http_backoff_seconds: float = Field(0.5, ge=0)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """Build settings from the environment or raise one error naming the bad variables.

    Rules across variables (the RabbitMQ credential sources) are checked once every
    variable is valid on its own, so they may show up on the next start.
    """
    try:
        return settings_cls()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "configuration"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigurationError(
            f"invalid configuration for {settings_cls.__name__}: " + "; ".join(problems)
        ) from None
