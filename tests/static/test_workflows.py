"""The GitHub workflows: actionlint clean, actions pinned by commit SHA, and ci.yml,
images.yml and terraform.yml doing what the deployment needs."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.support.deploy import MODULES, TERRAFORM, locals_of, named, parse_file, tool

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
NAMES = ("ci.yml", "images.yml", "terraform.yml")
FULL_SHA = re.compile(r"[0-9a-f]{40}")
RELEASE = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")
AWS_IMAGES = ["worker", "producer", "autoscaler", "postproc"]


@cache
def workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(data: dict[Any, Any]) -> Any:
    return data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as True


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if step.get("uses", "").startswith(f"{action}@")]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_the_three_workflows_exist() -> None:
    assert {path.name for path in WORKFLOWS.glob("*.yml")} >= set(NAMES)


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("actionlint"), "-no-color", *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_flags_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.no_such_context_value.x }}\n"
        "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n"
    )
    result = subprocess.run(
        [tool("actionlint"), "-no-color", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("name", NAMES)
def test_workflow_is_valid_against_the_github_workflow_schema(name: str) -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOWS / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_by_full_sha_with_its_release(name: str) -> None:
    lines = [
        line.strip().removeprefix("- ").strip()
        for line in (WORKFLOWS / name).read_text().splitlines()
        if line.strip().removeprefix("- ").startswith("uses:")
    ]
    assert lines, name
    for line in lines:
        reference = line.removeprefix("uses:").split("#")[0].strip()
        _, _, ref = reference.partition("@")
        assert FULL_SHA.fullmatch(ref), f"{name}: pin {reference} to a full commit SHA"
        assert RELEASE.search(line), f"{name}: say which release {ref} is"


def test_one_action_has_one_pin_across_workflows() -> None:
    pins: dict[str, set[str]] = {}
    for name in NAMES:
        for match in re.finditer(
            r"uses:\s*([\w./-]+)@([0-9a-f]{40})", (WORKFLOWS / name).read_text()
        ):
            pins.setdefault(match.group(1), set()).add(match.group(2))
    assert all(len(shas) == 1 for shas in pins.values()), pins


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege_timeouts_and_no_persisted_credentials(name: str) -> None:
    data = workflow(name)
    assert data["permissions"] == {"contents": "read"}
    for job_name, job in data["jobs"].items():
        assert 0 < int(job["timeout-minutes"]) <= 90, job_name
        permissions = job.get("permissions", {})
        if permissions.get("id-token") == "write":
            assert uses(job, "aws-actions/configure-aws-credentials"), (
                f"{name}/{job_name}: id-token only for the AWS OIDC login"
            )
        for step in uses(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False, job_name


# ---------------------------------------------------------------------------- images.yml


def test_images_run_on_main_only() -> None:
    data = workflow("images.yml")
    assert triggers(data) == {"push": {"branches": ["main"]}}
    [job] = data["jobs"].values()
    assert job["if"] == "github.ref == 'refs/heads/main'"


def test_images_build_the_four_dockerfile_targets_that_the_registry_keeps() -> None:
    [job] = workflow("images.yml")["jobs"].values()
    assert job["strategy"]["matrix"]["image"] == AWS_IMAGES
    registry_images = named(MODULES / "registry", "variable")["images"]["default"]
    assert sorted(registry_images) == sorted(AWS_IMAGES)
    [build] = uses(job, "docker/build-push-action")
    assert build["with"]["target"] == "${{ matrix.image }}"
    assert build["with"]["push"] is False and build["with"]["load"] is True


def test_images_are_scanned_by_trivy_failing_on_high_or_critical_before_the_push() -> None:
    [job] = workflow("images.yml")["jobs"].values()
    [scan] = uses(job, "aquasecurity/trivy-action")
    assert set(scan["with"]["severity"].split(",")) == {"HIGH", "CRITICAL"}
    assert str(scan["with"]["exit-code"]) == "1"
    order = [step.get("uses", step.get("name", "")) for step in steps(job)]
    scan_at = next(i for i, s in enumerate(order) if s.startswith("aquasecurity/"))
    push_at = next(i for i, s in enumerate(order) if s.startswith("Push"))
    assert scan_at < push_at


def test_images_are_pushed_through_the_oidc_role_tagged_by_commit_sha() -> None:
    [job] = workflow("images.yml")["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    [login] = uses(job, "aws-actions/configure-aws-credentials")
    assert login["with"]["role-to-assume"] == "${{ vars.AWS_IMAGES_ROLE_ARN }}"
    assert "aws-access-key-id" not in login["with"]
    assert uses(job, "aws-actions/amazon-ecr-login")
    push = runs(job)
    assert '$REPOSITORY:$GITHUB_SHA"' in push and "docker push" in push
    assert job["env"]["LOCAL_TAG"].endswith(":${{ github.sha }}")


def test_the_images_role_trusts_main_only_and_may_push_only_the_pipeline_repositories() -> None:
    github = locals_of(MODULES / "iam")["github_roles"]
    assert ":ref:refs/heads/main" in github and ":pull_request" in github
    policy = parse_file(MODULES / "iam" / "main.tf")["data"]
    documents = {
        name: body
        for block in policy
        for name, body in block.get("aws_iam_policy_document", {}).items()
    }
    push = {s["sid"]: s for s in documents["github_images"]["statement"]}["PushPipelineImages"]
    assert push["resources"] == "${values(local.repository_arns)}"


# ------------------------------------------------------------------------- terraform.yml


def test_terraform_workflow_checks_every_change_and_plans_pull_requests() -> None:
    data = workflow("terraform.yml")
    on = triggers(data)
    assert set(on) == {"push", "pull_request"}
    check, plan = data["jobs"]["check"], data["jobs"]["plan"]
    commands = runs(check)
    for command in (
        "terraform fmt -check",
        "terraform init -backend=false",
        "terraform validate",
        "terraform test -var-file=examples/dev.tfvars",
        "terraform test -var-file=examples/prod.tfvars",
        "tflint --recursive",
        ".venv-tools/bin/checkov",
    ):
        assert command in commands, command
    assert uses(check, "hashicorp/setup-terraform") and uses(
        check, "terraform-linters/setup-tflint"
    )
    assert plan["if"].startswith("github.event_name == 'pull_request'")
    assert plan["needs"] == "check"
    assert plan["permissions"] == {"contents": "read", "id-token": "write"}
    [login] = uses(plan, "aws-actions/configure-aws-credentials")
    assert login["with"]["role-to-assume"] == "${{ vars.AWS_PLAN_ROLE_ARN }}"
    assert "terraform plan" in runs(plan) and "-lock=false" in runs(plan)
    assert (TERRAFORM / ".tflint.hcl").is_file()


def test_every_workflow_uses_one_terraform_version_that_the_root_module_accepts() -> None:
    versions = {workflow("terraform.yml")["env"]["TERRAFORM_VERSION"]}
    for job in workflow("ci.yml")["jobs"].values():
        for step in uses(job, "hashicorp/setup-terraform"):
            versions.add(step["with"]["terraform_version"])
    assert len(versions) == 1, versions
    [version] = versions
    [settings] = parse_file(TERRAFORM / "versions.tf")["terraform"]
    minimum = re.match(r">= (\d+)\.(\d+)\.(\d+)", settings["required_version"]).groups()
    assert tuple(int(p) for p in version.split(".")) >= tuple(int(p) for p in minimum)


# -------------------------------------------------------------------------------- ci.yml


def test_ci_runs_lint_tests_and_the_static_checks() -> None:
    jobs = workflow("ci.yml")["jobs"]
    assert re.search(r"^make lint\b", runs(jobs["lint"]), re.M)
    assert re.search(r"^make static\b", runs(jobs["static"]), re.M)
    assert re.search(r"^make test\b", runs(jobs["test"]), re.M)
    # The tests start their own RabbitMQ and Redis from the server packages.
    assert "services" not in jobs["test"]
    assert "rabbitmq-server redis-server" in runs(jobs["test"])
    # make test includes tests/static, which needs the Terraform CLI.
    for name in ("static", "test"):
        assert uses(jobs[name], "hashicorp/setup-terraform"), name
