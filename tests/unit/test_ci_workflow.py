"""The CI workflow (.github/workflows/ci.yml): its jobs, pins, services and commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

FULL_SHA = re.compile(r"[0-9a-f]{40}")
EXACT_VERSION = re.compile(r"v\d+\.\d+\.\d+")


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def triggers(workflow: dict[Any, Any]) -> Any:
    # YAML 1.1 reads a bare `on` key as the boolean True.
    return workflow.get("on", workflow.get(True))


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_workflow_is_valid_against_the_github_workflow_schema() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_on_push_and_pull_request(workflow: dict[Any, Any]) -> None:
    on = triggers(workflow)
    names = set(on) if isinstance(on, dict | list) else {on}
    assert {"push", "pull_request"} <= names


def test_least_privilege_one_run_per_ref_and_a_timeout_per_job(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    concurrency = workflow["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert concurrency.get("cancel-in-progress") is True
    for name, job in workflow["jobs"].items():
        assert 0 < int(job["timeout-minutes"]) <= 90, name


def test_lint_job_runs_make_lint_on_python_3_11(workflow: dict[Any, Any]) -> None:
    lint = workflow["jobs"]["lint"]
    setup = [s for s in steps(lint) if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup and str(setup[0]["with"]["python-version"]) == "3.11"
    assert re.search(r"^make lint\b", runs(lint), re.M)


def test_test_job_runs_make_test_against_rabbitmq_and_redis(workflow: dict[Any, Any]) -> None:
    test = workflow["jobs"]["test"]
    assert re.search(r"^make test\b", runs(test), re.M)
    setup = [s for s in steps(test) if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup and str(setup[0]["with"]["python-version"]) == "3.11"

    services = test["services"]
    rabbitmq, redis = services["rabbitmq"], services["redis"]
    assert re.fullmatch(r"rabbitmq:3\.13(\.\d+)?-management", rabbitmq["image"])
    assert {"5672:5672", "15672:15672"} <= {str(port) for port in rabbitmq["ports"]}
    assert "--health-cmd" in rabbitmq["options"]
    assert "rabbitmq-diagnostics" in rabbitmq["options"]
    assert re.fullmatch(r"redis:7\.2(\.\d+)?-alpine", redis["image"])
    assert "6379:6379" in {str(port) for port in redis["ports"]}
    assert "redis-cli ping" in redis["options"]


def test_service_containers_match_the_compose_images(workflow: dict[Any, Any]) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    services = workflow["jobs"]["test"]["services"]
    for name in ("rabbitmq", "redis"):
        assert services[name]["image"] == compose[name]["image"], name


def step_named(job: dict[str, Any], words: str) -> dict[str, Any]:
    matching = [step for step in steps(job) if words in step.get("name", "")]
    assert len(matching) == 1, f"one step named like {words!r}"
    return matching[0]


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> None:
    """Run a `run:` step as GitHub runs it (bash -eo pipefail)."""
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("shared_present", [False, True])
def test_the_shared_conformance_folder_is_optional(
    workflow: dict[Any, Any], tmp_path: Path, shared_present: bool
) -> None:
    step = step_named(workflow["jobs"]["test"], "conformance")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    if shared_present:
        (tmp_path / "shared" / "conformance").mkdir(parents=True)
    github_env = tmp_path / "github_env"
    github_env.touch()
    run_step(step, checkout, {"GITHUB_ENV": str(github_env)})
    expected = f"RNR_SHARED_DIR={tmp_path / 'shared'}\n" if shared_present else ""
    assert github_env.read_text() == expected


def test_the_tests_get_a_rabbitmqctl_that_runs_in_the_service_container(
    workflow: dict[Any, Any], tmp_path: Path
) -> None:
    uses_rabbitmqctl = any(
        "rabbitmqctl" in path.read_text() for path in (REPO_ROOT / "tests").rglob("test_*.py")
    )
    step = step_named(workflow["jobs"]["test"], "rabbitmqctl")
    if not uses_rabbitmqctl:
        return
    assert step["env"]["RABBITMQ_CONTAINER"] == "${{ job.services.rabbitmq.id }}"
    # A stand-in `docker` records what the wrapper asks of it.
    fake_bin, runner_temp = tmp_path / "fake-bin", tmp_path / "runner-temp"
    fake_bin.mkdir()
    runner_temp.mkdir()
    calls = tmp_path / "docker-calls"
    docker = fake_bin / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    docker.chmod(0o755)
    github_path = tmp_path / "github_path"
    github_path.touch()
    env = {
        "RABBITMQ_CONTAINER": "abc123",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_PATH": str(github_path),
    }
    run_step(step, tmp_path, {**env, "PATH": f"{fake_bin}:{os.environ['PATH']}"})
    added = github_path.read_text().strip()
    wrapper = Path(added) / "rabbitmqctl"
    subprocess.run(
        [str(wrapper), "list_queues", "-q", "name messages"],
        env={"PATH": f"{fake_bin}:{os.environ['PATH']}"},
        check=True,
        timeout=30,
    )
    assert calls.read_text().splitlines() == [
        "exec abc123 rabbitmqctl await_startup",
        "exec abc123 rabbitmqctl list_queues -q name messages",
    ]


def test_every_action_is_pinned_to_a_full_sha_with_its_version_or_an_exact_tag() -> None:
    uses_lines = [
        line.strip().removeprefix("- ")
        for line in WORKFLOW.read_text().splitlines()
        if line.strip().removeprefix("- ").startswith("uses:")
    ]
    assert uses_lines, "no actions used?"
    for line in uses_lines:
        reference, _, comment = line.removeprefix("uses:").partition("#")
        action, _, ref = reference.strip().partition("@")
        assert ref, f"{action} is not pinned"
        assert ref not in {"main", "master", "latest"}, line
        if FULL_SHA.fullmatch(ref):
            assert EXACT_VERSION.search(comment), f"say which release {ref} is: {line}"
        else:
            assert EXACT_VERSION.fullmatch(ref), f"pin {action} to a SHA or vX.Y.Z: {line}"


def test_checkout_does_not_keep_credentials(workflow: dict[Any, Any]) -> None:
    for name, job in workflow["jobs"].items():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, name
