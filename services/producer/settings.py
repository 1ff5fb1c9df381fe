"""Producer configuration (see the README's configuration table)."""

from pydantic import Field

from rnr.core.settings import (
    AwsSettings,
    BrokerSettings,
    CommonSettings,
    RedisSettings,
    UpstreamSettings,
)

# A function name, a partial ARN (account:function:name) or a full ARN, optionally with
# a version or alias: what Lambda's Invoke accepts as FunctionName. Checked at start-up
# so a typo stops the producer instead of failing every wake with a warning.
LAMBDA_FUNCTION = (
    r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
    r"[A-Za-z0-9_-]{1,64}(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)


class ProducerSettings(
    CommonSettings, BrokerSettings, RedisSettings, AwsSettings, UpstreamSettings
):
    producer_concurrency: int = Field(16, ge=1, le=256)
    # The autoscaler Lambda to wake after a run that published (rnr.autoscaling.wake);
    # unset, the producer wakes nothing and the autoscaler's schedule alone applies.
    autoscaler_function_name: str | None = Field(None, pattern=LAMBDA_FUNCTION)
