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
CI_RUN = REPO_ROOT / ".ci" / "run"

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


def test_test_job_runs_make_test_with_the_server_packages_installed(
    workflow: dict[Any, Any],
) -> None:
    test = workflow["jobs"]["test"]
    assert re.search(r"^make test\b", runs(test), re.M)
    setup = [s for s in steps(test) if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup and str(setup[0]["with"]["python-version"]) == "3.11"
    # The tests start their own servers from the packages: no service containers, whose
    # broker on 5672 the tests would share (and whose app a test would stop).
    assert "services" not in test
    install = step_named(test, "server packages")["run"]
    assert "apt-get install" in install
    assert {"rabbitmq-server", "redis-server"} <= set(install.split())
    steps_run = [step.get("run", "") for step in steps(test)]
    assert steps_run.index(install) < next(
        i for i, text in enumerate(steps_run) if text.startswith("make test")
    )


def test_ci_run_installs_the_same_server_packages_and_starts_no_server() -> None:
    script = CI_RUN.read_text()
    assert "rabbitmq-server" in script and "redis-server" in script
    assert "apt-get install" in script
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    for starts_or_configures in ("-detached", "--daemonize", "rabbitmq-plugins", "rabbitmqctl"):
        assert starts_or_configures not in code, starts_or_configures
    assert re.search(r"^make test$", script, re.M)


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


def test_no_test_runs_the_machines_rabbitmqctl() -> None:
    # rabbitmqctl without -n talks to the machine's default node (a developer's own
    # broker): the tests reach their node through devstack.brokers.RabbitMQNode.ctl.
    bare = re.compile(r"""\[\s*["']rabbitmqctl["']""")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "tests").rglob("*.py")
        if path != Path(__file__) and bare.search(path.read_text())
    ]
    assert offenders == []


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
