"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

No Docker engine is available here or in CI, so the stack is never started as a whole.
Instead these tests check what can go wrong in it:

* the compose file is valid against the compose-spec schema (check-jsonschema's
  vendored copy, no network) and every service has a health check and waits on its
  dependencies' health (or, for the one-shot bootstrap, its successful exit);
* every variable compose sets is one that a settings class or a local tool reads,
  and each project service gets what its settings class requires;
* compose runs the commands the local runner and the end-to-end tests run, and those
  commands really start: the replay server, the three Lambda-style services in
  ``serve`` mode, the scheduler and the bootstrap are run as processes on 127.0.0.1
  with compose's own environment, its hostnames swapped for local stand-ins. (The
  worker is left out: it needs the hydrofabric, and tests/e2e runs it as a process.)
* the HTTP surfaces are wired: every service container listens on 0.0.0.0 (its port
  mapping needs that), the ports are published on the host's loopback only, and the
  scheduler sends the token the services it calls require.
* the Dockerfile has the targets compose builds, runs them as a non-root user, and
  gives the worker a health check;
* Prometheus scrapes every service on the port it listens on, and Grafana is
  provisioned with that Prometheus and the repository's dashboard, from files that
  exist where compose mounts them (tests/unit/test_prometheus_config.py runs promtool on
  the scrape config, tests/e2e/test_dashboard_queries.py every panel's query).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
import yaml
from pydantic_settings import BaseSettings

from devstack.local.scheduler import parse_targets
from devstack.observability import SERVICE_JOBS
from devstack.observability.dashboard import load_dashboard, panels
from rnr.core import settings as core_settings
from tests.conftest import REPO_ROOT
from tests.support.servers import free_port, http_ok, wait_until

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

# The commands the local runner (devstack/local/run.py) and the end-to-end tests start,
# without their --host/--port arguments. Compose must run these and nothing else.
TESTED_COMMANDS = {
    ("python", "-m", "devstack.replay"),
    ("python", "-m", "devstack.local.bootstrap"),
    ("python", "-m", "devstack.local.scheduler"),
    ("python", "-m", "services.worker"),
    ("python", "-m", "services.producer", "serve"),
    ("python", "-m", "services.autoscaler", "serve"),
    ("python", "-m", "services.postproc", "serve"),
}

# Variables the local tools read themselves (devstack/local/*.py, devstack/replay/__main__.py),
# plus the AWS SDK's credentials, which no settings class holds.
LOCAL_TOOL_VARIABLES = {
    "INPUT_BUCKET",
    "BOOTSTRAP_BROKER_SECRET_NAME",
    "BOOTSTRAP_BROKER_USERNAME",
    "BOOTSTRAP_BROKER_PASSWORD",
    "SCHEDULER_TARGETS",
    "REPLAY_HOST",
    "REPLAY_PORT",
}
AWS_SDK_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

# Third-party images: the variables of theirs that this stack may set.
THIRD_PARTY_VARIABLES = {
    "rabbitmq": {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_DEFAULT_VHOST"},
    "redis": set(),
    "localstack": {"SERVICES", "DEBUG", "PERSISTENCE", "EAGER_SERVICE_LOADING"},
    "prometheus": set(),
    "grafana": {
        "GF_SECURITY_ADMIN_USER",
        "GF_SECURITY_ADMIN_PASSWORD",
        "GF_AUTH_ANONYMOUS_ENABLED",
        "GF_AUTH_ANONYMOUS_ORG_ROLE",
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
    },
}

# The settings class of each command that is not a service with a settings module.
TOOL_SETTINGS: dict[str, type[BaseSettings]] = {
    "devstack.local.bootstrap": core_settings.AwsSettings
}

# The Dockerfile targets compose builds: one image per service, as in AWS, plus tools.
LAMBDA_TARGETS = {"producer", "autoscaler", "postproc"}
IMAGE_TARGETS = {"worker", "tools"} | LAMBDA_TARGETS

PROCESS_START_TIMEOUT = 45.0
PROCESS_STOP_TIMEOUT = 10.0


# ----------------------------------------------------------------------------- helpers


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def project_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile."""
    return {name: spec for name, spec in services().items() if "build" in spec}


def interpolated(value: str) -> str:
    """A value as compose passes it to the container when the shell sets none of the
    variables it names: ``${NAME:-default}`` and ``${NAME-default}`` give the default,
    ``${NAME}`` and ``$NAME`` nothing, ``$$`` a ``$``."""
    pattern = r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)"
    return re.sub(pattern, lambda m: "$" if m.group(0) == "$$" else m.group(2) or "", value)


def raw_environment(spec: Mapping[str, Any]) -> dict[str, str]:
    """The environment as the compose file spells it, before interpolation."""
    raw = spec.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def environment(spec: Mapping[str, Any]) -> dict[str, str]:
    """What the container's process sees (with nothing overridden from the shell)."""
    return {key: interpolated(value) for key, value in raw_environment(spec).items()}


def as_argv(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


@dataclass
class Stage:
    """What a Dockerfile stage leaves in the image config (inherited from its parent)."""

    name: str
    parent: str | None
    user: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    healthcheck: str | None = None
    exposed: list[str] = field(default_factory=list)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_stages(text: str) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, args in dockerfile_instructions(text):
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert match, f"cannot parse FROM {args}"
            base, name = match.group(1), match.group(2) or f"stage{len(stages)}"
            parent = stages.get(base)
            current = Stage(name=name, parent=base if parent else None)
            if parent:
                current.user, current.healthcheck = parent.user, parent.healthcheck
                current.entrypoint, current.cmd = parent.entrypoint, parent.cmd
                current.exposed = list(parent.exposed)
            stages[name] = current
        elif current is None:
            continue
        elif keyword == "USER":
            current.user = args
        elif keyword == "ENTRYPOINT":
            current.entrypoint = json.loads(args)
            current.cmd = None  # a new ENTRYPOINT clears an inherited CMD
        elif keyword == "CMD":
            current.cmd = json.loads(args)
        elif keyword == "HEALTHCHECK":
            current.healthcheck = args
        elif keyword == "EXPOSE":
            current.exposed.extend(args.split())
    return stages


def effective_argv(spec: Mapping[str, Any], stages: Mapping[str, Stage]) -> list[str]:
    """What the container runs: compose's entrypoint/command over the image's.

    As in compose, overriding the entrypoint also drops the image's default command.
    """
    target = spec["build"]["target"]
    stage = stages[target]
    entrypoint = as_argv(spec.get("entrypoint"))
    command = as_argv(spec.get("command"))
    if entrypoint is None:
        entrypoint = stage.entrypoint or []
        if command is None:
            command = stage.cmd or []
    return [*entrypoint, *(command or [])]


def normalised(argv: list[str]) -> tuple[str, ...]:
    """The command without its --host/--port arguments."""
    kept: list[str] = []
    skip = False
    for part in argv:
        if skip:
            skip = False
        elif part in {"--host", "--port"}:
            skip = True
        elif not part.startswith(("--host=", "--port=")):
            kept.append(part)
    return tuple(kept)


def module_of(argv: list[str]) -> str:
    assert argv[:2] == ["python", "-m"], argv
    return argv[2]


def settings_classes_of(module: str) -> list[type[BaseSettings]]:
    if module in TOOL_SETTINGS:
        return [TOOL_SETTINGS[module]]
    if not module.startswith("services."):
        return []
    settings_module = importlib.import_module(f"{module}.settings")
    return [
        value
        for value in vars(settings_module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value.__module__ == settings_module.__name__
    ]


def all_settings_classes() -> list[type[BaseSettings]]:
    classes = [
        value
        for value in vars(core_settings).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value.__module__ == core_settings.__name__
    ]
    for path in sorted((REPO_ROOT / "services").glob("*/settings.py")):
        classes += settings_classes_of(f"services.{path.parent.name}")
    return classes


def env_names(settings_cls: type[BaseSettings]) -> set[str]:
    prefix = settings_cls.model_config.get("env_prefix") or ""
    names = set()
    for name, info in settings_cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif alias is not None and hasattr(alias, "choices"):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        else:
            names.add(f"{prefix}{info.alias or name}".upper())
    return names


def required_env_names(settings_cls: type[BaseSettings]) -> set[str]:
    prefix = settings_cls.model_config.get("env_prefix") or ""
    return {
        f"{prefix}{info.alias or name}".upper()
        for name, info in settings_cls.model_fields.items()
        if info.is_required()
    }


def known_variables() -> set[str]:
    names = set(LOCAL_TOOL_VARIABLES | AWS_SDK_VARIABLES)
    for settings_cls in all_settings_classes():
        names |= env_names(settings_cls)
    return names


def python_healthcheck_code(test: list[str]) -> str | None:
    """The code of a ``["CMD", "python", "-c", CODE]`` health check, else None."""
    if len(test) == 4 and test[:3] == ["CMD", "python", "-c"]:
        return test[3]
    return None


# ------------------------------------------------------------------ static compose checks


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    assert checker.exists(), f"check-jsonschema is not installed next to {sys.executable}"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stack_has_every_service_of_the_design() -> None:
    assert set(services()) == {
        "rabbitmq",
        "redis",
        "localstack",
        "replay",
        "bootstrap",
        "worker",
        "producer",
        "autoscaler",
        "postproc",
        "scheduler",
        "prometheus",
        "grafana",
    }


def test_every_service_but_the_one_shot_bootstrap_has_a_health_check() -> None:
    for name, spec in services().items():
        if name == "bootstrap":
            assert "healthcheck" not in spec, "bootstrap exits when done: no health check"
            continue
        check = spec.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        test = as_argv(check["test"])
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name}: {test}"
        code = python_healthcheck_code(test)
        if code is not None:
            compile(code, f"<{name} healthcheck>", "exec")


def test_every_dependency_waits_on_health_or_on_the_bootstrap_finishing() -> None:
    all_services = services()
    for name, spec in all_services.items():
        depends = spec.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition"
        for dependency, condition in depends.items():
            assert dependency in all_services, f"{name} depends on unknown {dependency}"
            wanted = (
                "service_completed_successfully" if dependency == "bootstrap" else "service_healthy"
            )
            assert condition.get("condition") == wanted, f"{name} -> {dependency}: {condition}"
            if wanted == "service_healthy":
                assert "healthcheck" in all_services[dependency], dependency


def test_the_project_services_start_only_after_bootstrap() -> None:
    for name in ("worker", "producer", "autoscaler", "postproc"):
        depends = services()[name]["depends_on"]
        assert depends["bootstrap"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
    scheduler = services()["scheduler"]["depends_on"]
    assert set(scheduler) == {"producer", "autoscaler", "postproc"}


def test_images_are_pinned_and_localstack_needs_no_auth_token() -> None:
    all_services = services()
    for name, spec in all_services.items():
        if "build" in spec:
            continue
        image = spec["image"]
        tag = image.partition(":")[2]
        assert tag and tag != "latest", f"{name}: pin a tag, not {image}"
        assert re.match(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin an exact release, not {image}"
    assert all_services["rabbitmq"]["image"].startswith("rabbitmq:3.13.")
    assert all_services["rabbitmq"]["image"].endswith("-management")
    assert all_services["redis"]["image"].startswith("redis:7.2.")
    localstack = all_services["localstack"]
    version = localstack["image"].partition(":")[2]
    # From 2026.03.0 (calendar versions) LocalStack refuses to start without a token.
    assert int(version.split(".")[0]) < 2026, localstack["image"]
    assert environment(localstack)["SERVICES"] == "s3,secretsmanager"
    assert "LOCALSTACK_AUTH_TOKEN" not in environment(localstack)
    assert "/_localstack/health" in " ".join(as_argv(localstack["healthcheck"]["test"]) or [])
    # Prometheus 2 (the scrape config is checked with the machine's promtool 2.x) and
    # Grafana 11 (the dashboard's schema version).
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", all_services["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:11\.\d+\.\d+", all_services["grafana"]["image"])


def test_every_project_image_is_built_from_a_dockerfile_target_with_one_tag_per_target() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    tag_of_target: dict[str, str] = {}
    for name, spec in project_services().items():
        build = spec["build"]
        assert build.get("context", ".") == ".", name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        target = build["target"]
        assert target in IMAGE_TARGETS, f"{name}: target {target}"
        assert target in stages, f"{name}: Dockerfile has no stage {target}"
        assert tag_of_target.setdefault(target, spec["image"]) == spec["image"], name
    assert len(set(tag_of_target.values())) == len(tag_of_target)


# --------------------------------------------------------------------- environment checks


def test_every_variable_compose_sets_is_read_by_something() -> None:
    known = known_variables()
    for name, spec in services().items():
        names = set(environment(spec))
        allowed = THIRD_PARTY_VARIABLES[name] if "build" not in spec else known
        assert names <= allowed, f"{name} sets variables nothing reads: {names - allowed}"


def test_local_tool_variables_are_the_ones_the_tools_read() -> None:
    sources = "".join(
        path.read_text()
        for path in [
            *(REPO_ROOT / "devstack" / "local").glob("*.py"),
            REPO_ROOT / "devstack/replay/__main__.py",
        ]
    )
    for name in LOCAL_TOOL_VARIABLES:
        assert f'"{name}"' in sources, f"no local tool reads {name}"


def test_the_shared_environment_block_has_the_agreed_values() -> None:
    shared = load_compose()["x-rnr-env"]
    assert shared == {
        "RABBITMQ_URL": "amqp://guest:guest@rabbitmq:5672/",
        "REDIS_URL": "redis://redis:6379/0",
        "AWS_ENDPOINT_URL": "http://localstack:4566",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "OUTPUT_BUCKET": "rnr-output",
        "INPUT_BUCKET": "rnr-input",
        "HYDROFABRIC_LOCATION": "hydrofabric/small/parquet",
        "NWS_API_URL": "http://replay:8090",
        "NWPS_API_URL": "http://replay:8090/nwps/v1",
        "LOG_LEVEL": "INFO",
        "HTTP_HOST": "0.0.0.0",
        "HTTP_PORT": "8080",
    }
    for name in ("worker", "producer", "autoscaler", "postproc", "bootstrap"):
        assert shared.items() <= environment(services()[name]).items(), name


def test_every_service_container_listens_beyond_its_loopback() -> None:
    # The services default to 127.0.0.1, which a port mapping or another container
    # cannot reach; each container says 0.0.0.0 itself.
    for name in ("worker", "producer", "autoscaler", "postproc"):
        assert environment(services()[name])["HTTP_HOST"] == "0.0.0.0", name


def test_the_published_ports_listen_on_the_hosts_loopback_only() -> None:
    # The containers listen on 0.0.0.0 and the development token is in this file: the
    # host publishes their ports to itself, not to its network.
    for name in ("worker", "producer", "autoscaler", "postproc", "prometheus", "grafana"):
        for mapping in services()[name]["ports"]:
            assert str(mapping).startswith("127.0.0.1:"), (name, mapping)


def test_the_scheduler_and_the_services_it_calls_share_one_invoke_token() -> None:
    called = {
        urlsplit(t.url).hostname
        for t in parse_targets(environment(services()["scheduler"])["SCHEDULER_TARGETS"])
    }
    assert called == {"producer", "autoscaler", "postproc"}
    spelled = {
        name: raw_environment(services()[name]).get("INVOKE_TOKEN")
        for name in [*called, "scheduler"]
    }
    assert len(set(spelled.values())) == 1, spelled
    [raw] = set(spelled.values())
    # A development default that a developer can override from the shell or an .env.
    match = re.fullmatch(r"\$\{INVOKE_TOKEN:-([^}]+)\}", raw or "")
    assert match, raw
    # The default is a token the services accept.
    token = core_settings.CommonSettings(invoke_token=match.group(1)).invoke_token
    assert token is not None and token.get_secret_value() == match.group(1)
    # Nothing else needs it: the worker serves no /invoke, the bootstrap no HTTP.
    for name in ("worker", "bootstrap", "replay"):
        assert "INVOKE_TOKEN" not in environment(services()[name]), name


def test_each_project_service_gets_every_setting_its_settings_class_requires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    known = known_variables()
    checked = set()
    for name, spec in project_services().items():
        env = environment(spec)
        for settings_cls in settings_classes_of(module_of(effective_argv(spec, stages))):
            missing = required_env_names(settings_cls) - set(env)
            assert not missing, f"{name} lacks {missing} required by {settings_cls.__name__}"
            # Validators (e.g. RABBITMQ_URL or endpoint+secret) must pass too.
            for variable in known:
                monkeypatch.delenv(variable, raising=False)
            for variable, value in env.items():
                monkeypatch.setenv(variable, value)
            core_settings.load_settings(settings_cls)
            checked.add(name)
    assert {"worker", "producer", "autoscaler", "postproc", "bootstrap"} <= checked


def test_the_scheduler_invokes_the_three_functions_on_their_periods() -> None:
    spec = services()["scheduler"]
    targets = parse_targets(environment(spec)["SCHEDULER_TARGETS"])
    assert [(t.name, t.url, t.period_seconds) for t in targets] == [
        ("producer", "http://producer:8080/invoke", 60.0),
        ("autoscaler", "http://autoscaler:8080/invoke", 60.0),
        ("postproc", "http://postproc:8080/invoke", 300.0),
    ]
    for target in targets:
        assert target.name in services()


def test_the_local_autoscaler_decides_but_never_acts() -> None:
    env = environment(services()["autoscaler"])
    assert env["AUTOSCALER_MODE"] == "dry-run"
    assert "ECS_CLUSTER" not in env and "ECS_SERVICE" not in env


def test_bootstrap_gets_its_buckets_and_the_broker_secret() -> None:
    env = environment(services()["bootstrap"])
    assert env["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert env["BOOTSTRAP_BROKER_SECRET_NAME"] == "rnr/local/broker"
    assert env["BOOTSTRAP_BROKER_USERNAME"] == env["BOOTSTRAP_BROKER_PASSWORD"] == "guest"
    assert {"INPUT_BUCKET", "OUTPUT_BUCKET"} <= set(env)


# ------------------------------------------------------------------ Prometheus and Grafana


def mounts(spec: Mapping[str, Any]) -> dict[str, Path]:
    """Each bind mount's path in the container, and its source in the repository."""
    found = {}
    for volume in spec.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        assert source.startswith("./"), f"{volume}: mount a file of the repository"
        found[target] = REPO_ROOT / source
    return found


def mounted_file(spec: Mapping[str, Any], container_path: str) -> Path:
    """The repository file that ``container_path`` is, through one of the mounts."""
    for target, source in mounts(spec).items():
        if container_path == target or container_path.startswith(f"{target}/"):
            return source / container_path.removeprefix(target).lstrip("/")
    raise AssertionError(f"nothing is mounted at {container_path}")


def scrape_targets(config: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }


def option(argv: list[str], name: str) -> str:
    [value] = [part.split("=", 1)[1] for part in argv if part.startswith(f"{name}=")]
    return value


def test_prometheus_scrapes_every_service_where_it_listens() -> None:
    spec = services()["prometheus"]
    config_path = mounted_file(spec, option(as_argv(spec["command"]) or [], "--config.file"))
    assert config_path.is_file(), config_path
    targets = scrape_targets(yaml.safe_load(config_path.read_text()))
    for job in SERVICE_JOBS:
        # Each service listens on HTTP_PORT inside the network, whatever the host mapping.
        port = environment(services()[job])["HTTP_PORT"]
        assert targets[job] == [f"{job}:{port}"], job
    # RabbitMQ's own metrics: the rabbitmq_prometheus plugin's port, open in the network.
    assert targets["rabbitmq"] == ["rabbitmq:15692"]
    assert "15692" in [str(port) for port in services()["rabbitmq"]["expose"]]
    assert set(targets) == {*SERVICE_JOBS, "rabbitmq", "prometheus"}


def test_grafana_is_provisioned_with_compose_prometheus_and_the_repository_dashboard() -> None:
    grafana = services()["grafana"]
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    provisioning = mounted_file(grafana, "/etc/grafana/provisioning")
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    prometheus_port = str(services()["prometheus"]["ports"][0]).rsplit(":", 1)[1]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    # The panels name the datasource by its uid.
    dashboard = load_dashboard()
    used = {
        source["uid"]
        for panel in panels(dashboard)
        for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
    }
    assert used == {datasource["uid"]}
    [provider] = yaml.safe_load((provisioning / "dashboards" / "rnr-pipeline.yaml").read_text())[
        "providers"
    ]
    folder = mounted_file(grafana, provider["options"]["path"])
    assert sorted(path.name for path in folder.glob("*.json")) == ["rnr-pipeline.json"]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounted_file(grafana, home).is_file(), home


# ------------------------------------------------------------------------ command checks


def test_compose_runs_only_commands_the_tests_run() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    run_py = (REPO_ROOT / "devstack" / "local" / "run.py").read_text()
    for command in TESTED_COMMANDS:  # the local runner starts each of them
        module = command[2]
        short = module.removeprefix("services.")
        assert f'"{module}"' in run_py or f'"{short}"' in run_py, command
    seen = set()
    for name, spec in project_services().items():
        command = normalised(effective_argv(spec, stages))
        assert command in TESTED_COMMANDS, f"{name} runs {command}, which no test runs"
        seen.add(command)
    assert seen == TESTED_COMMANDS


def test_lambda_image_services_replace_the_lambda_runtime_entrypoint() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    for name, spec in project_services().items():
        if spec["build"]["target"] in LAMBDA_TARGETS:
            assert stages[spec["build"]["target"]].entrypoint == ["python", "-m", "awslambdaric"]
            argv = effective_argv(spec, stages)
            assert "awslambdaric" not in argv, name
            assert argv == ["python", "-m", f"services.{name}", "serve", "--port", "8080"], name


# ------------------------------------------------------- the commands, run as processes


def local_argv(argv: list[str], port: int | None) -> list[str]:
    """Compose's command for this machine: this Python, 127.0.0.1, a free port."""
    out = [sys.executable if argv[0] == "python" else argv[0]]
    rest = iter(argv[1:])
    for part in rest:
        if part in {"--host", "--port"}:
            next(rest)
            continue
        out.append(part)
    if port is not None:
        out += ["--host", "127.0.0.1", "--port", str(port)]
    return out


COMPOSE_HOSTS = ("rabbitmq", "redis", "localstack", "replay", "producer", "autoscaler", "postproc")


# Local stand-ins for compose's hosts. Nothing listens on port 1: a service's
# /healthz must answer without AWS or the upstream APIs. A test whose command needs
# RabbitMQ and Redis passes the session's own (the rabbitmq_url and redis_url fixtures).
LOCAL_ENDPOINTS = {
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
    "NWS_API_URL": "http://127.0.0.1:1",
    "NWPS_API_URL": "http://127.0.0.1:1/nwps/v1",
}


def local_env(compose_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """The process environment: compose's variables with local stand-ins for its hosts."""
    known = known_variables()
    env = {key: value for key, value in os.environ.items() if key not in known}
    env |= dict(compose_env)
    replacements = LOCAL_ENDPOINTS | overrides
    env |= {key: value for key, value in replacements.items() if key in compose_env}
    env["PYTHONUNBUFFERED"] = "1"
    hosts = "|".join(COMPOSE_HOSTS)
    for key in compose_env:
        assert not re.search(rf"//(?:[^@/]*@)?(?:{hosts})[:/]", env[key]), (key, env[key])
    return env


@contextlib.contextmanager
def running(argv: list[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=dict(env), cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=PROCESS_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=PROCESS_STOP_TIMEOUT)


def wait_healthy(process: subprocess.Popen, url: str, log: Path) -> None:
    try:
        wait_until(
            lambda: process.poll() is not None or http_ok(url),
            timeout=PROCESS_START_TIMEOUT,
            interval=0.2,
            what=url,
        )
    except TimeoutError:
        pytest.fail(f"{url} did not answer 200; log:\n{log.read_text(errors='replace')[-3000:]}")
    assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()[-3000:]}"


def run_compose_healthcheck(spec: Mapping[str, Any], port: int, compose_port: int) -> None:
    """Run the service's own compose health check against the local process."""
    code = python_healthcheck_code(as_argv(spec["healthcheck"]["test"]) or [])
    assert code is not None, spec["healthcheck"]
    assert f":{compose_port}/" in code
    local_code = code.replace(f":{compose_port}/", f":{port}/")
    result = subprocess.run(
        [sys.executable, "-c", local_code], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(120)
def test_the_replay_command_serves_its_health_endpoint(tmp_path: Path) -> None:
    spec = services()["replay"]
    stages = dockerfile_stages(DOCKERFILE.read_text())
    port = free_port()
    argv = local_argv(effective_argv(spec, stages), port)
    log = tmp_path / "replay.log"
    with running(argv, local_env(environment(spec)), log) as process:
        wait_healthy(process, f"http://127.0.0.1:{port}/healthz", log)
        run_compose_healthcheck(spec, port, 8090)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["producer", "autoscaler", "postproc"])
def test_each_lambda_style_service_serves_its_health_endpoint(
    name: str, tmp_path: Path, rabbitmq_url: str, redis_url: str
) -> None:
    spec = services()[name]
    stages = dockerfile_stages(DOCKERFILE.read_text())
    port = free_port()
    argv = local_argv(effective_argv(spec, stages), port)
    env = local_env(
        environment(spec),
        OUTPUT_BUCKET="x" * 3,
        HTTP_PORT=str(port),
        RABBITMQ_URL=rabbitmq_url,
        REDIS_URL=redis_url,
    )
    log = tmp_path / f"{name}.log"
    with running(argv, env, log) as process:
        wait_healthy(process, f"http://127.0.0.1:{port}/healthz", log)
        run_compose_healthcheck(spec, port, 8080)
        # Compose's token is required: a caller without it starts no run.
        refused = httpx.post(f"http://127.0.0.1:{port}/invoke", json={}, timeout=10)
    assert refused.status_code == 401, refused.text


class _InvokeRecorder(BaseHTTPRequestHandler):
    received: list[str]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.received.append(self.path)  # type: ignore[attr-defined]
        self.server.authorization.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def invoke_recorder() -> Iterator[tuple[str, list[str], list[str | None]]]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _InvokeRecorder)
    server.received = []  # type: ignore[attr-defined]
    server.authorization = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_port}",
            server.received,  # type: ignore[attr-defined]
            server.authorization,  # type: ignore[attr-defined]
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.timeout(120)
def test_the_scheduler_command_invokes_every_target_once(tmp_path: Path) -> None:
    spec = services()["scheduler"]
    stages = dockerfile_stages(DOCKERFILE.read_text())
    compose_env = environment(spec)
    with invoke_recorder() as (url, received, authorization):
        local_targets = []
        for target in parse_targets(compose_env["SCHEDULER_TARGETS"]):
            path = urlsplit(target.url).path
            local_targets.append(f"{target.name}={url}/{target.name}{path}@{target.period_seconds}")
        env = local_env(compose_env, SCHEDULER_TARGETS=",".join(local_targets))
        argv = [*local_argv(effective_argv(spec, stages), None), "--once"]
        result = subprocess.run(
            argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(received) == ["/autoscaler/invoke", "/postproc/invoke", "/producer/invoke"]
    # The token compose gives the services, on every call.
    assert authorization == [f"Bearer {compose_env['INVOKE_TOKEN']}"] * 3


@pytest.mark.timeout(120)
def test_the_bootstrap_command_creates_the_buckets_and_the_broker_secret() -> None:
    from moto.server import ThreadedMotoServer

    spec = services()["bootstrap"]
    stages = dockerfile_stages(DOCKERFILE.read_text())
    compose_env = environment(spec)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{moto._port}"
        env = local_env(compose_env, AWS_ENDPOINT_URL=endpoint)
        argv = local_argv(effective_argv(spec, stages), None)
        for _ in range(2):  # idempotent: compose runs it on every `up`
            result = subprocess.run(
                argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, result.stdout + result.stderr
        arn = json.loads(result.stdout.strip().splitlines()[-1])["secret_arn"]

        session = boto3.Session(
            aws_access_key_id=compose_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=compose_env["AWS_SECRET_ACCESS_KEY"],
            region_name=compose_env["AWS_REGION"],
        )
        s3 = session.client("s3", endpoint_url=endpoint)
        for bucket in (compose_env["INPUT_BUCKET"], compose_env["OUTPUT_BUCKET"]):
            s3.head_bucket(Bucket=bucket)
            assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        secrets = session.client("secretsmanager", endpoint_url=endpoint)
        secret = secrets.get_secret_value(SecretId=compose_env["BOOTSTRAP_BROKER_SECRET_NAME"])
        assert secret["ARN"] == arn
        assert json.loads(secret["SecretString"]) == {
            "username": compose_env["BOOTSTRAP_BROKER_USERNAME"],
            "password": compose_env["BOOTSTRAP_BROKER_PASSWORD"],
        }
    finally:
        moto.stop()


# ---------------------------------------------------------------------- the Dockerfile


def test_dockerfile_has_the_targets_compose_builds_each_run_as_a_non_root_user() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    targets = {spec["build"]["target"] for spec in project_services().values()}
    assert targets == IMAGE_TARGETS
    for target in targets:
        user = stages[target].user
        assert user, f"{target} runs as root"
        uid = user.split(":")[0]
        assert uid not in {"root", "0"}, f"{target} runs as {user}"
        assert uid == "10001", f"{target} runs as {user}"


def test_dockerfile_targets_default_to_their_own_commands() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    assert stages["worker"].cmd == ["python", "-m", "services.worker"]
    assert stages["worker"].entrypoint is None
    for target in LAMBDA_TARGETS:
        assert stages[target].entrypoint == ["python", "-m", "awslambdaric"]
        assert stages[target].cmd == [f"services.{target}.handler.handler"]
    assert normalised(stages["tools"].cmd or []) == ("python", "-m", "devstack.replay")
    assert "8080" in stages["worker"].exposed


def test_the_worker_image_checks_readiness_with_python() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    check = stages["worker"].healthcheck
    assert check, "the worker target has no HEALTHCHECK"
    options, _, command = check.partition("CMD ")
    test = json.loads(command)
    assert test[:2] == ["python", "-c"], test
    assert "/readyz" in test[2]
    compile(test[2], "<worker HEALTHCHECK>", "exec")
    assert "--interval=" in options and "--timeout=" in options


def test_dockerfile_builds_the_project_into_a_venv_from_a_pinned_base() -> None:
    text = DOCKERFILE.read_text()
    assert "pip install --no-cache-dir -c constraints.txt ." in text
    assert "/opt/venv" in text
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert len(bases) == 1, "one ARG PYTHON_IMAGE names the base image"
    image, _, digest = bases[0].partition("@")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest
    for keyword, args in dockerfile_instructions(text):
        if keyword == "FROM":
            assert "latest" not in args, args


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    entries = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".pytest_cache", ".hypothesis", "bench/out", ".local-run"} <= entries
