"""deploy/terraform: layout, formatting, variables and examples, checked without AWS.

terraform init/validate need the providers, which this machine cannot download; what
can be checked here is: `terraform fmt -check` (it parses every file), the module
conventions (files, descriptions, types, version pins), that every declared variable is
used, that the example tfvars set only declared variables and every required one, and
the validation rules that matter (schedule expressions) against good and bad values.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.deploy import (
    EXAMPLES,
    MODULE_NAMES,
    MODULES,
    TERRAFORM,
    module_dirs,
    named,
    parse_file,
    parse_tfvars,
    strip_comments,
    terraform,
    tf_files,
)

MODULE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}
EXAMPLE_FILES = ["dev.tfvars", "prod.tfvars"]
# Given on the command line by the runbook and CI (the commit SHA), never in a file.
COMMAND_LINE_VARIABLES = {"image_tag"}


def ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(TERRAFORM)) or "root" for path in paths]


def named_blocks(path: Path, kind: str) -> list[dict]:
    return parse_file(path).get(kind, [])


def test_terraform_fmt_check_passes_on_every_file() -> None:
    result = subprocess.run(
        [terraform(), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_fmt_rejects_a_badly_formatted_file(tmp_path: Path) -> None:
    # The check above can fail: fmt -check reports a misaligned file.
    (tmp_path / "bad.tf").write_text('variable "x" {\n  type = string\n    default = "y"\n}\n')
    result = subprocess.run(
        [terraform(), "fmt", "-check", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def test_there_is_one_module_per_concern_each_with_the_standard_files() -> None:
    assert sorted(path.name for path in MODULES.iterdir() if path.is_dir()) == sorted(MODULE_NAMES)
    for name in MODULE_NAMES:
        present = {path.name for path in (MODULES / name).iterdir()}
        assert present >= MODULE_FILES, f"{name} lacks {MODULE_FILES - present}"
        readme = (MODULES / name / "README.md").read_text()
        assert readme.startswith(f"# {name}"), f"{name}/README.md must start with its title"
    root = {path.name for path in TERRAFORM.iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= root


def test_the_root_module_calls_every_module() -> None:
    modules = named(TERRAFORM, "module")
    assert {body["source"] for body in modules.values()} == {
        f"./modules/{name}" for name in MODULE_NAMES
    }


@pytest.mark.parametrize("directory", module_dirs(), ids=ids(module_dirs()))
def test_versions_pin_terraform_and_the_aws_provider(directory: Path) -> None:
    [settings] = [block for block in named_blocks(directory / "versions.tf", "terraform")]
    required = settings["required_version"]
    assert re.fullmatch(r">= 1\.\d+\.\d+, < 2\.0\.0", required), required
    providers = settings["required_providers"][0]
    aws = providers["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r">= 6\.\d+, < 7\.0", aws["version"]), aws["version"]
    for provider in providers.values():
        assert "<" in provider["version"], f"{provider}: give an upper bound"


@pytest.mark.parametrize("directory", module_dirs(), ids=ids(module_dirs()))
def test_every_variable_has_a_description_and_a_type(directory: Path) -> None:
    variables = named(directory, "variable")
    assert variables, directory
    for name, body in variables.items():
        assert len(body.get("description", "")) >= 15, f"{name}: describe it"
        assert body.get("type"), f"{name}: give it a type"
        for rule in body.get("validation", []):
            assert f"var.{name}" in rule["condition"], f"{name}: validation must test it"
            assert len(rule["error_message"]) > 10, name


@pytest.mark.parametrize("directory", module_dirs(), ids=ids(module_dirs()))
def test_every_output_has_a_description(directory: Path) -> None:
    outputs = named(directory, "output")
    assert outputs, directory
    for name, body in outputs.items():
        assert len(body.get("description", "")) >= 10, f"{name}: describe it"


@pytest.mark.parametrize("directory", module_dirs(), ids=ids(module_dirs()))
def test_every_declared_variable_is_used(directory: Path) -> None:
    source = "\n".join(
        strip_comments(path.read_text())
        for path in tf_files(directory)
        if path.name != "variables.tf"
    )
    # A validation block may use its own variable only; that is not a use.
    unused = [
        name for name in named(directory, "variable") if not re.search(rf"\bvar\.{name}\b", source)
    ]
    assert not unused, f"declared but never used in {directory.name}: {unused}"


def test_every_module_input_the_root_passes_is_declared_and_every_required_one_given() -> None:
    for name, call in named(TERRAFORM, "module").items():
        module_dir = (TERRAFORM / call["source"]).resolve()
        declared = named(module_dir, "variable")
        given = {key for key in call if key not in {"source", "depends_on", "providers"}}
        assert given <= set(declared), f"module {name}: unknown inputs {given - set(declared)}"
        required = {key for key, body in declared.items() if "default" not in body}
        assert required <= given, f"module {name}: missing inputs {required - given}"


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_example_tfvars_set_only_declared_variables_and_every_required_one(example: str) -> None:
    declared = named(TERRAFORM, "variable")
    values = parse_tfvars(EXAMPLES / example)
    assert set(values) <= set(declared), f"unknown variables: {set(values) - set(declared)}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required - COMMAND_LINE_VARIABLES <= set(values), required - set(values)
    assert not COMMAND_LINE_VARIABLES & set(values), "image_tag comes from the command line"
    # Object variables: only attributes the type declares.
    for name, value in values.items():
        if isinstance(value, dict) and "object(" in declared[name]["type"]:
            for attribute in value:
                assert re.search(rf"\b{attribute}\s*=", declared[name]["type"]), (
                    f"{example}: {name}.{attribute} is not an attribute of its type"
                )


def test_dev_and_prod_examples_differ_where_the_issue_says() -> None:
    dev = parse_tfvars(EXAMPLES / "dev.tfvars")
    prod = parse_tfvars(EXAMPLES / "prod.tfvars")
    assert dev["environment"] == "dev" and prod["environment"] == "prod"
    assert dev["broker"]["deployment_mode"] == "SINGLE_INSTANCE"
    assert prod["broker"]["deployment_mode"] == "CLUSTER_MULTI_AZ"
    # The seed's existing bucket in dev; new buckets in prod: both modes are exercised.
    assert dev["create_buckets"] is False and prod["create_buckets"] is True
    assert prod["cache"]["num_cache_clusters"] >= 2


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_example_backend_configuration_is_s3_with_locking(environment: str) -> None:
    path = EXAMPLES / f"backend-{environment}.s3.tfbackend"
    values = parse_tfvars(path)
    assert {"bucket", "key", "region"} <= set(values)
    assert values["encrypt"] is True and values["use_lockfile"] is True
    assert environment in values["key"]
    [settings] = named_blocks(TERRAFORM / "versions.tf", "terraform")
    assert "s3" in settings["backend"][0], "the root module declares an S3 backend"


# ------------------------------------------------------------ schedule expression rule


def schedule_rule() -> re.Pattern[str]:
    variable = named(MODULES / "functions", "variable")["functions"]
    for rule in variable["validation"]:
        match = re.search(r'regex\("(.+?)", f\.schedule_expression\)', rule["condition"])
        if match:
            # HCL string escapes: \\ is one backslash.
            return re.compile(match.group(1).replace("\\\\", "\\"))
    raise AssertionError("functions has no schedule_expression validation")


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(12 hours)",
        "rate(1 day)",
        "cron(0/5 * * * ? *)",
        "cron(15 10 ? * MON-FRI *)",
        "at(2027-01-01T00:00:00)",
    ],
)
def test_valid_schedule_expressions_pass_the_validation(expression: str) -> None:
    assert schedule_rule().fullmatch(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 seconds)",
        "cron(0/5 * * * ?)",
        "*/5 * * * *",
        "every 5 minutes",
    ],
)
def test_invalid_schedule_expressions_fail_the_validation(expression: str) -> None:
    assert not schedule_rule().fullmatch(expression)


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_example_and_default_schedules_are_valid(example: str) -> None:
    rule = schedule_rule()
    default_type = named(TERRAFORM, "variable")["functions"]["type"]
    defaults = re.findall(r'_schedule\s*=\s*optional\(string,\s*"([^"]+)"\)', default_type)
    assert len(defaults) == 3, default_type
    configured = parse_tfvars(EXAMPLES / example).get("functions", {})
    schedules = [value for key, value in configured.items() if key.endswith("_schedule")]
    for expression in defaults + schedules:
        assert rule.fullmatch(expression), expression


def test_the_worker_plans_its_stop_inside_the_task_stop_timeout() -> None:
    """One number: the task's stopTimeout is the worker's WORKER_STOP_TIMEOUT_SECONDS."""
    root_type = named(TERRAFORM, "variable")["worker"]["type"]
    stop = int(re.search(r"stop_timeout_seconds\s*=\s*optional\(number,\s*(\d+)\)", root_type)[1])
    environment = (TERRAFORM / "environment.tf").read_text()
    assert re.search(
        r"WORKER_STOP_TIMEOUT_SECONDS\s*=\s*var\.worker\.stop_timeout_seconds", environment
    )
    from services.worker.settings import WorkerSettings
    from services.worker.stop_budget import StopBudget

    assert WorkerSettings.model_fields["worker_stop_timeout_seconds"].default == stop
    budget = StopBudget.within(stop)
    assert budget.total_seconds == stop
    assert budget.drain_seconds > 0
