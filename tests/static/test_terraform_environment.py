"""Every environment variable a service reads is set in its Terraform definition, under
the name of the README's configuration table, and docker-compose.yml uses the same
names.

What a service reads is derived at test time from its settings classes (pydantic
``model_fields``, aliases and prefixes included), so a setting added to a service without
a Terraform definition fails here.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest
from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

from tests.conftest import REPO_ROOT
from tests.support.deploy import TERRAFORM, locals_of, named
from tests.unit.test_compose import env_names, environment, services, settings_classes_of

SERVICES = ("worker", "producer", "autoscaler", "postproc")
LAMBDAS = ("producer", "autoscaler", "postproc")

# Read by the settings classes but deliberately not set in AWS, and why.
NOT_SET_IN_AWS = {
    "RABBITMQ_URL": "local credentials; in AWS RABBITMQ_ENDPOINT with RABBITMQ_SECRET_ARN",
    "AWS_ENDPOINT_URL": "an emulator (LocalStack, moto); unset in AWS",
    "ECS_AGENT_URI": "injected by the ECS agent into every task's containers",
    "INVOKE_TOKEN": "guards /invoke of `serve`, which AWS never runs (awslambdaric has none)",
}
# Read by the Lambdas' settings but not set for them: under awslambdaric they serve no HTTP.
NOT_SET_FOR_LAMBDAS = {
    "HTTP_HOST": "only `serve` listens (locally); in AWS a Lambda listens on nothing",
}
# Terraform defaults that differ from a service's own on purpose.
DELIBERATE_DEFAULTS = {
    "autoscaler_mode": "the service defaults to dry-run (the local stack); in AWS it acts",
}
# Reserved by the Lambda runtime, which sets them itself (Lambda rejects them).
LAMBDA_RESERVED = re.compile(
    r"_HANDLER|_X_AMZN_TRACE_ID|AWS_REGION|AWS_DEFAULT_REGION|AWS_EXECUTION_ENV|AWS_LAMBDA_.*"
    r"|AWS_ACCESS_KEY(_ID)?|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|LAMBDA_TASK_ROOT"
    r"|LAMBDA_RUNTIME_DIR|AWS_XRAY_.*|AWS_CONTAINER_.*"
)

# Compose-only: credentials for LocalStack, which AWS roles replace.
COMPOSE_ONLY = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def settings_of(service: str) -> list[type[BaseSettings]]:
    classes = settings_classes_of(f"services.{service}")
    assert classes, f"services/{service}/settings.py defines no settings class"
    return classes


def read_by(service: str) -> set[str]:
    names: set[str] = set()
    for settings_cls in settings_of(service):
        names |= env_names(settings_cls)
    return names


def terraform_environment() -> dict[str, set[str]]:
    """Service -> the variable names its Terraform environment sets (environment.tf)."""
    scope = locals_of(TERRAFORM)
    result = {}
    for service, expression in scope["environment"].items():
        match = re.fullmatch(r"\$\{merge\(([^()]*)\)\}", expression)
        assert match, f"environment.{service} must be merge(local.env_...): {expression}"
        names: set[str] = set()
        for part in match.group(1).split(","):
            group = re.fullmatch(r"\s*local\.(env_\w+)\s*", part)
            assert group, f"environment.{service}: {part!r} is not a local.env_* group"
            names |= set(scope[group.group(1)])
        result[service] = names
    return result


def readme_table_names() -> set[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.M))


def test_terraform_defines_an_environment_for_each_service() -> None:
    assert set(terraform_environment()) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_the_service_reads_is_set_in_terraform(service: str) -> None:
    expected = read_by(service) - set(NOT_SET_IN_AWS)
    if service in LAMBDAS:
        expected = {name for name in expected if not LAMBDA_RESERVED.fullmatch(name)}
        expected -= set(NOT_SET_FOR_LAMBDAS)
    missing = expected - terraform_environment()[service]
    assert not missing, f"{service} reads {sorted(missing)} but deploy/terraform does not set them"


@pytest.mark.parametrize("service", SERVICES)
def test_terraform_sets_nothing_the_service_does_not_read(service: str) -> None:
    extra = terraform_environment()[service] - read_by(service)
    assert not extra, f"deploy/terraform sets {sorted(extra)} for {service}, which reads none"


@pytest.mark.parametrize("service", LAMBDAS)
def test_lambda_environments_hold_no_reserved_variable(service: str) -> None:
    reserved = {n for n in terraform_environment()[service] if LAMBDA_RESERVED.fullmatch(n)}
    assert not reserved, f"Lambda sets {reserved} itself and rejects them"


def test_every_name_terraform_sets_is_in_the_configuration_table() -> None:
    table = readme_table_names()
    assert len(table) > 20, "the README configuration table was not found"
    for service, names in terraform_environment().items():
        unknown = names - table
        assert not unknown, f"{service}: {sorted(unknown)} are not in the README's table"


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_the_service_reads_is_in_the_configuration_table(service: str) -> None:
    missing = read_by(service) - readme_table_names()
    assert not missing, f"{service} reads {sorted(missing)}, absent from the README's table"


def test_the_worker_listens_on_the_task_network_and_no_service_gets_an_invoke_token() -> None:
    scope = locals_of(TERRAFORM)
    # The services' default is 127.0.0.1; the ECS health check and any sidecar reach
    # the worker over the task's network interface.
    assert scope["env_worker"]["HTTP_HOST"] == "0.0.0.0"
    environments = terraform_environment()
    assert "HTTP_HOST" in environments["worker"]
    for service in LAMBDAS:
        assert "HTTP_HOST" not in environments[service], service
    for service, names in environments.items():
        assert "INVOKE_TOKEN" not in names, f"{service}: nothing serves /invoke in AWS"


def test_each_service_gets_its_own_environment() -> None:
    modules = named(TERRAFORM, "module")
    assert modules["compute"]["environment"] == "${local.environment.worker}"
    for service in LAMBDAS:
        function = modules["functions"]["functions"][service]
        assert function["environment"] == f"${{local.environment.{service}}}", service


def test_compose_and_terraform_use_the_same_names() -> None:
    tf = terraform_environment()
    for service in SERVICES:
        spec = services()[service]
        compose = set(environment(spec)) - COMPOSE_ONLY - set(NOT_SET_IN_AWS)
        used = compose & read_by(service)
        if service in LAMBDAS:
            used = {name for name in used if not LAMBDA_RESERVED.fullmatch(name)}
            used -= set(NOT_SET_FOR_LAMBDAS)
        assert used <= tf[service], f"{service}: compose sets {sorted(used - tf[service])}"
        # A name compose sets for this service that Terraform spells differently would
        # show up here as read by neither.
        unread = compose - read_by(service) - {n for names in tf.values() for n in names}
        unread -= {"INPUT_BUCKET", "HYDROFABRIC_LOCATION"}  # the bootstrap's, shared env
        assert not unread, f"{service}: compose sets {sorted(unread)}, unknown to Terraform"


def optional_defaults(type_expression: str) -> dict[str, Any]:
    """attribute -> default of ``optional(type, default)`` entries of an object type."""
    defaults = {}
    for name, literal in re.findall(
        r"(\w+)\s*=\s*optional\((?:string|number|bool|list\(number\)),\s*(.+?)\)(?=\s*[,}\n]|\s*\w+\s*=)",
        type_expression,
    ):
        defaults[name] = ast.literal_eval(literal.replace("true", "True").replace("false", "False"))
    return defaults


def test_terraform_setting_defaults_are_the_services_own() -> None:
    type_expression = named(TERRAFORM, "variable")["settings"]["type"]
    defaults = optional_defaults(type_expression)
    assert len(defaults) >= 25, defaults
    compared = 0
    for service in SERVICES:
        for settings_cls in settings_of(service):
            for field_name, info in settings_cls.model_fields.items():
                if field_name not in defaults or info.is_required():
                    continue
                if field_name in DELIBERATE_DEFAULTS:
                    continue
                # Our default, read as the service would read it, equals the service's.
                ours = TypeAdapter(info.annotation).validate_python(defaults[field_name])
                assert ours == info.default, (
                    f"settings.{field_name}: Terraform {defaults[field_name]!r}, "
                    f"{settings_cls.__name__} {info.default!r}"
                )
                compared += 1
    assert compared >= 20
