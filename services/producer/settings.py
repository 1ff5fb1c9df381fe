"""Producer configuration (see the README's configuration table)."""

from pydantic import Field

from rnr.core.settings import (
    AwsSettings,
    BrokerSettings,
    CommonSettings,
    RedisSettings,
    UpstreamSettings,
)


class ProducerSettings(
    CommonSettings, BrokerSettings, RedisSettings, AwsSettings, UpstreamSettings
):
    producer_concurrency: int = Field(16, ge=1, le=256)
