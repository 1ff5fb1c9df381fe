"""Unit tests for rnr.core.settings and the services' settings classes built from its mixins."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from rnr.core.errors import ConfigurationError, RnrError
from rnr.core.settings import (
    AwsSettings,
    BrokerSettings,
    CommonSettings,
    OutputSettings,
    RedisSettings,
    UpstreamSettings,
    load_settings,
)
from services.autoscaler.settings import AutoscalerSettings
from services.postproc.settings import PostprocSettings
from services.producer.settings import ProducerSettings
from services.worker.settings import WorkerSettings

ALL_SETTINGS: tuple[type[BaseModel], ...] = (
    CommonSettings,
    BrokerSettings,
    RedisSettings,
    AwsSettings,
    OutputSettings,
    UpstreamSettings,
    ProducerSettings,
    WorkerSettings,
    AutoscalerSettings,
    PostprocSettings,
)
URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable any settings class reads leaks in from the developer's shell or CI."""
    names = {name for cls in ALL_SETTINGS for name in cls.model_fields}
    for name in names:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def config_error(cls: type[BaseModel]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(cls)
    message = str(caught.value)
    assert message.startswith(f"invalid configuration for {cls.__name__}: ")
    return message


# ---------------------------------------------------------------------------- load_settings


def test_configuration_error_is_an_rnr_error_without_the_pydantic_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PORT", "0")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(CommonSettings)
    assert isinstance(caught.value, RnrError)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_every_bad_field_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("MAX_ATTEMPTS", "0")
    monkeypatch.setenv("RABBITMQ_QUEUE_TYPE", "stream")
    monkeypatch.setenv("RABBITMQ_PUBLISH_TIMEOUT_SECONDS", "0")
    message = config_error(BrokerSettings)
    assert "MAX_ATTEMPTS: Input should be greater than or equal to 1" in message
    assert "RABBITMQ_QUEUE_TYPE: Input should be 'auto', 'quorum' or 'classic'" in message
    assert "RABBITMQ_PUBLISH_TIMEOUT_SECONDS: Input should be greater than 0" in message
    assert message.count(";") == 2


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("rabbitmq_url", URL)
    monkeypatch.setenv("Max_Attempts", "7")
    settings = load_settings(BrokerSettings)
    assert settings.rabbitmq_url is not None
    assert settings.rabbitmq_url.get_secret_value() == URL
    assert settings.max_attempts == 7


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(CommonSettings)
    with pytest.raises(ValidationError):
        settings.http_port = 9000  # type: ignore[misc]


# ------------------------------------------------------------------------------- common


def test_common_defaults() -> None:
    settings = load_settings(CommonSettings)
    assert settings.log_level == "INFO"
    assert settings.http_port == 8080
    # This machine only, and no token: /invoke is then served on loopback alone.
    assert settings.http_host == "127.0.0.1"
    assert settings.invoke_token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "localhost", "10.0.3.7"])
def test_http_host_is_read(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("HTTP_HOST", host)
    assert load_settings(CommonSettings).http_host == host


def test_invoke_token_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "0123456789abcdef-~!"
    monkeypatch.setenv("INVOKE_TOKEN", token)
    settings = load_settings(CommonSettings)
    assert isinstance(settings.invoke_token, SecretStr)
    assert settings.invoke_token.get_secret_value() == token
    assert token not in repr(settings) and token not in str(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_LEVEL", "VERBOSE"),
        ("HTTP_PORT", "0"),
        ("HTTP_PORT", "65536"),
        ("HTTP_PORT", "eighty"),
        ("HTTP_HOST", ""),
        ("HTTP_HOST", "http://0.0.0.0"),
        ("HTTP_HOST", "[::1]"),
        ("HTTP_HOST", "0.0.0.0 "),
        ("INVOKE_TOKEN", ""),
        ("INVOKE_TOKEN", "too-short"),
        ("INVOKE_TOKEN", "sixteen chars ok"),  # a space would never survive a header
        ("INVOKE_TOKEN", "ünicode-token-of-enough-length"),
    ],
)
def test_common_rejects(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert f"{name}: " in config_error(CommonSettings)


def test_a_rejected_invoke_token_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_TOKEN", "almost a secret token")
    message = config_error(CommonSettings)
    assert "INVOKE_TOKEN: Value error, give at least 16 visible ASCII characters" in message
    assert "almost a secret" not in message


def test_every_service_reads_the_host_and_the_token() -> None:
    for cls in (ProducerSettings, WorkerSettings, AutoscalerSettings, PostprocSettings):
        assert {"http_host", "invoke_token"} <= set(cls.model_fields), cls.__name__


# ------------------------------------------------------------------------------- broker


def test_broker_defaults_with_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    settings = load_settings(BrokerSettings)
    assert isinstance(settings.rabbitmq_url, SecretStr)
    assert URL not in repr(settings)
    assert settings.rabbitmq_exchange == "rnr"
    assert settings.rabbitmq_queue == "rnr.products"
    assert settings.rabbitmq_queue_type == "auto"
    assert settings.retry_delays_seconds == (5.0, 30.0, 120.0, 600.0)
    assert settings.max_attempts == 5


def test_broker_endpoint_with_secret_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_ENDPOINT", "amqps://b-1.mq.us-east-1.amazonaws.com:5671")
    monkeypatch.setenv("RABBITMQ_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:mq")
    settings = load_settings(BrokerSettings)
    assert settings.rabbitmq_url is None
    assert settings.rabbitmq_endpoint == "amqps://b-1.mq.us-east-1.amazonaws.com:5671"
    assert settings.rabbitmq_secret_arn == "arn:aws:secretsmanager:us-east-1:1:secret:mq"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"RABBITMQ_ENDPOINT": "amqps://mq:5671"},
        {"RABBITMQ_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:mq"},
    ],
    ids=["nothing", "endpoint-only", "secret-only"],
)
def test_broker_needs_a_credential_source(monkeypatch: pytest.MonkeyPatch, env: dict) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    message = config_error(BrokerSettings)
    for name in ("RABBITMQ_URL", "RABBITMQ_ENDPOINT", "RABBITMQ_SECRET_ARN"):
        assert name in message


@pytest.mark.parametrize(
    "extra",
    [
        {"RABBITMQ_ENDPOINT": "amqps://mq:5671"},
        {"RABBITMQ_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:mq"},
        {
            "RABBITMQ_ENDPOINT": "amqps://mq:5671",
            "RABBITMQ_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:mq",
        },
    ],
    ids=["url+endpoint", "url+secret", "url+both"],
)
def test_broker_refuses_url_and_secret_together(
    monkeypatch: pytest.MonkeyPatch, extra: dict
) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    assert "not both" in config_error(BrokerSettings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7", (7.0,)),
        ("1,2,3", (1.0, 2.0, 3.0)),
        (" 1 , 2.5 ,, 3 ,", (1.0, 2.5, 3.0)),
        ("0.25,1e1", (0.25, 10.0)),
    ],
)
def test_retry_delays_comma_list(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[float, ...]
) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("RETRY_DELAYS_SECONDS", raw)
    assert load_settings(BrokerSettings).retry_delays_seconds == expected


@pytest.mark.parametrize(
    "raw",
    ["", " , ,", "5,x", "5,-1", "0", "5,0,30", "[5, 30]"],
)
def test_retry_delays_rejected(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("RETRY_DELAYS_SECONDS", raw)
    assert "RETRY_DELAYS_SECONDS: " in config_error(BrokerSettings)


@pytest.mark.parametrize("raw", ["5,nan", "5,inf"])
def test_retry_delays_must_be_finite(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("RETRY_DELAYS_SECONDS", raw)
    assert "RETRY_DELAYS_SECONDS: " in config_error(BrokerSettings)


@pytest.mark.parametrize(("value", "ok"), [("1", True), ("50", True), ("0", False), ("51", False)])
def test_max_attempts_bounds(monkeypatch: pytest.MonkeyPatch, value: str, ok: bool) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("MAX_ATTEMPTS", value)
    if ok:
        assert load_settings(BrokerSettings).max_attempts == int(value)
    else:
        assert "MAX_ATTEMPTS: " in config_error(BrokerSettings)


# ------------------------------------------------------------------- redis, aws, upstream


def test_redis_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(RedisSettings)
    assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert settings.dedupe_ttl_seconds == 7 * 24 * 3600
    assert settings.dedupe_key_prefix == "rnr:product:"
    monkeypatch.setenv("DEDUPE_TTL_SECONDS", "59")
    monkeypatch.setenv("DEDUPE_CLAIM_SECONDS", "0")
    message = config_error(RedisSettings)
    assert "DEDUPE_TTL_SECONDS: " in message
    assert "DEDUPE_CLAIM_SECONDS: " in message


def test_aws_defaults_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(AwsSettings)
    assert settings.aws_region == "us-east-1"
    assert settings.aws_endpoint_url is None
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    settings = load_settings(AwsSettings)
    assert (settings.aws_region, settings.aws_endpoint_url) == (
        "eu-west-1",
        "http://127.0.0.1:5000",
    )


def test_upstream_defaults() -> None:
    settings = load_settings(UpstreamSettings)
    assert str(settings.nws_api_url).rstrip("/") == "https://api.weather.gov"
    assert str(settings.nwps_api_url) == "https://api.water.noaa.gov/nwps/v1"
    assert settings.http_retries == 3
    assert settings.http_timeout_seconds == 10.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NWS_API_URL", "not a url"),
        ("NWPS_API_URL", "ftp://example.com"),
        ("HTTP_TIMEOUT_SECONDS", "0"),
        ("HTTP_RETRIES", "11"),
        ("HTTP_RETRIES", "-1"),
        ("HTTP_BACKOFF_SECONDS", "-0.1"),
    ],
)
def test_upstream_rejects(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert f"{name}: " in config_error(UpstreamSettings)


# --------------------------------------------------------------------------------- output


def test_output_bucket_is_required() -> None:
    assert "OUTPUT_BUCKET: Field required" in config_error(OutputSettings)


def test_output_bucket_too_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_BUCKET", "ab")
    assert "OUTPUT_BUCKET: String should have at least 3 characters" in config_error(OutputSettings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("/a/b/", "a/b"), ("rr", "rr"), ("///", ""), ("rr/", "rr")],
)
def test_output_prefix_loses_slashes(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: str
) -> None:
    monkeypatch.setenv("OUTPUT_BUCKET", "bucket")
    monkeypatch.setenv("OUTPUT_PREFIX", raw)
    assert load_settings(OutputSettings).output_prefix == expected


def test_output_prefix_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPUT_BUCKET", "bucket")
    assert load_settings(OutputSettings).output_prefix == "replace_and_route"


# ------------------------------------------------------------------------------- services

MINIMAL_ENV = {
    ProducerSettings: {"RABBITMQ_URL": URL},
    WorkerSettings: {
        "RABBITMQ_URL": URL,
        "OUTPUT_BUCKET": "bucket",
        "INPUT_BUCKET": "inputs",
        "HYDROFABRIC_LOCATION": "hydrofabric/conus.gpkg",
    },
    AutoscalerSettings: {"RABBITMQ_URL": URL},
    PostprocSettings: {
        "OUTPUT_BUCKET": "bucket",
        "INPUT_BUCKET": "input",
        "HYDROFABRIC_LOCATION": "hydrofabric/parquet",
    },
}


@pytest.mark.parametrize("cls", list(MINIMAL_ENV), ids=lambda cls: cls.__name__)
def test_service_loads_from_its_minimal_environment(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseModel]
) -> None:
    for name, value in MINIMAL_ENV[cls].items():
        monkeypatch.setenv(name, value)
    settings = load_settings(cls)
    assert settings.log_level == "INFO"  # type: ignore[attr-defined]
    assert settings.aws_region == "us-east-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cls", "missing", "named"),
    [
        (ProducerSettings, "RABBITMQ_URL", "RABBITMQ_URL"),
        (WorkerSettings, "RABBITMQ_URL", "RABBITMQ_URL"),
        (WorkerSettings, "OUTPUT_BUCKET", "OUTPUT_BUCKET: Field required"),
        (AutoscalerSettings, "RABBITMQ_URL", "RABBITMQ_URL"),
        (PostprocSettings, "OUTPUT_BUCKET", "OUTPUT_BUCKET: Field required"),
    ],
)
def test_service_names_its_missing_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseModel], missing: str, named: str
) -> None:
    for name, value in MINIMAL_ENV[cls].items():
        if name != missing:
            monkeypatch.setenv(name, value)
    assert named in config_error(cls)


def test_services_do_not_demand_what_they_do_not_read() -> None:
    assert "rabbitmq_url" not in PostprocSettings.model_fields
    assert "output_bucket" not in ProducerSettings.model_fields
    assert "output_bucket" not in AutoscalerSettings.model_fields
    assert "nws_api_url" not in AutoscalerSettings.model_fields


def test_service_settings_keep_the_mixin_validators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("OUTPUT_BUCKET", "bucket")
    monkeypatch.setenv("OUTPUT_PREFIX", "/x/")
    monkeypatch.setenv("INPUT_BUCKET", "inputs")
    monkeypatch.setenv("HYDROFABRIC_LOCATION", "hydrofabric/conus.gpkg")
    monkeypatch.setenv("RETRY_DELAYS_SECONDS", "1,2")
    worker = load_settings(WorkerSettings)
    assert worker.retry_delays_seconds == (1.0, 2.0)
    assert worker.output_prefix == "x"
    monkeypatch.setenv("RABBITMQ_ENDPOINT", "amqps://mq:5671")
    assert "not both" in config_error(WorkerSettings)


@pytest.mark.parametrize(
    ("cls", "name", "good", "bad"),
    [
        (ProducerSettings, "PRODUCER_CONCURRENCY", "256", "0"),
        (ProducerSettings, "PRODUCER_CONCURRENCY", "1", "257"),
        (WorkerSettings, "WORKER_PREFETCH", "1000", "0"),
        (WorkerSettings, "WORKER_STOP_TIMEOUT_SECONDS", "8", "7"),
        (WorkerSettings, "WORKER_STOP_TIMEOUT_SECONDS", "120", "121"),
        (AutoscalerSettings, "AUTOSCALER_TARGET_PER_TASK", "1", "0"),
        (AutoscalerSettings, "AUTOSCALER_ACTIVATION_THRESHOLD", "1", "0"),
        (AutoscalerSettings, "AUTOSCALER_SCALE_IN_STEP", "1", "0"),
        (AutoscalerSettings, "AUTOSCALER_STABILIZATION_SECONDS", "0", "3601"),
    ],
)
def test_service_specific_bounds(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseModel], name: str, good: str, bad: str
) -> None:
    for env_name, value in MINIMAL_ENV[cls].items():
        monkeypatch.setenv(env_name, value)
    monkeypatch.setenv(name, good)
    assert float(getattr(load_settings(cls), name.lower())) == float(good)
    monkeypatch.setenv(name, bad)
    assert f"{name}: " in config_error(cls)


def test_service_defaults() -> None:
    assert ProducerSettings.model_fields["producer_concurrency"].default == 16
    assert WorkerSettings.model_fields["worker_prefetch"].default == 8
    assert WorkerSettings.model_fields["worker_stop_timeout_seconds"].default == 30.0


@pytest.mark.parametrize(
    ("output_prefix", "postproc_prefix"),
    [("replace_and_route", "replace_and_route/tables"), ("out", "out"), ("", "postprocess")],
)
def test_postproc_prefix_must_not_overlap_the_outputs(
    monkeypatch: pytest.MonkeyPatch, output_prefix: str, postproc_prefix: str
) -> None:
    for name, value in MINIMAL_ENV[PostprocSettings].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OUTPUT_PREFIX", output_prefix)
    monkeypatch.setenv("POSTPROC_PREFIX", postproc_prefix)
    with pytest.raises(ConfigurationError, match="must not contain one another"):
        load_settings(PostprocSettings)


def test_autoscaler_defaults_only_log() -> None:
    settings = AutoscalerSettings(rabbitmq_url=URL)
    assert settings.autoscaler_mode == "dry-run"
    policy = settings.policy()
    assert (policy.min_tasks, policy.max_tasks, policy.target_per_task) == (0, 10, 25)
    assert (policy.activation_threshold, policy.stabilization_seconds) == (1, 300)
    assert policy.scale_in_step == 2


@pytest.mark.parametrize("mode", ["direct", "metric"])
def test_autoscaler_modes_that_act_need_the_ecs_service(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("AUTOSCALER_MODE", mode)
    assert "needs ECS_CLUSTER and ECS_SERVICE" in config_error(AutoscalerSettings)
    monkeypatch.setenv("ECS_CLUSTER", "rnr")
    monkeypatch.setenv("ECS_SERVICE", "worker")
    assert load_settings(AutoscalerSettings).autoscaler_mode == mode


def test_autoscaler_min_above_max_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    monkeypatch.setenv("AUTOSCALER_MIN_TASKS", "5")
    monkeypatch.setenv("AUTOSCALER_MAX_TASKS", "4")
    assert "AUTOSCALER_MIN_TASKS" in config_error(AutoscalerSettings)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("rnr-prod-autoscaler", True),
        ("arn:aws:lambda:us-east-1:123456789012:function:rnr-prod-autoscaler", True),
        ("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:rnr_a:live", True),
        ("123456789012:function:rnr-prod-autoscaler", True),
        ("rnr prod autoscaler", False),
        ("arn:aws:lambda:us-east-1:123456789012:rnr-prod-autoscaler", False),
        ("", False),
        ("x" * 65, False),
    ],
)
def test_autoscaler_function_name_is_a_name_or_an_arn(
    monkeypatch: pytest.MonkeyPatch, value: str, ok: bool
) -> None:
    monkeypatch.setenv("RABBITMQ_URL", URL)
    assert load_settings(ProducerSettings).autoscaler_function_name is None
    monkeypatch.setenv("AUTOSCALER_FUNCTION_NAME", value)
    if ok:
        assert load_settings(ProducerSettings).autoscaler_function_name == value
    else:
        assert "AUTOSCALER_FUNCTION_NAME: " in config_error(ProducerSettings)
