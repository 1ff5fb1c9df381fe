"""`terraform validate` and `terraform test` (deploy/terraform/tests, mocked providers)
for both examples, on a machine whose provider mirror has the AWS provider.

Terraform cannot download providers here. This machine has a filesystem mirror
(/opt/tf-plugins, or RNR_TF_PLUGIN_DIR) holding only hashicorp/aws, at 5.100, and no
hashicorp/random. So the check runs on a copy of deploy/terraform with three mechanical
changes, each listed in ``adapt()``: the AWS provider range widened to the mirror's
version, ``data.aws_region.*.region`` (AWS provider 6) read as ``.name`` (5.x), and each
``random_password`` replaced by a ``terraform_data`` stand-in holding a valid password.
Everything else (every argument, expression, for_each, validation and module wiring) is
the committed code. Without a mirror the test is skipped: terraform.yml runs the same
``terraform test`` with the real providers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.deploy import EXAMPLES, TERRAFORM, terraform

MIRROR = Path(os.environ.get("RNR_TF_PLUGIN_DIR", "/opt/tf-plugins"))
AWS_MIRROR = MIRROR / "registry.terraform.io" / "hashicorp" / "aws"
STAND_IN_PASSWORD = "Mirror0nlyStandIn0Password0Abc"  # 30 letters and digits


def mirrored_aws_version() -> str:
    versions = sorted(path.name for path in AWS_MIRROR.iterdir()) if AWS_MIRROR.is_dir() else []
    if not versions:
        pytest.skip(f"no AWS provider in a Terraform mirror at {MIRROR} (terraform.yml runs this)")
    return versions[-1]


def adapt(directory: Path, aws_version: str) -> None:
    """The three changes that let the mirror's providers load the configuration."""
    for path in [*directory.rglob("*.tf"), *directory.rglob("*.tftest.hcl")]:
        source = path.read_text()
        source = source.replace('version = ">= 6.0, < 7.0"', f'version = ">= {aws_version}, < 7.0"')
        source = re.sub(r"\n\s*random = \{[^}]*\}", "", source)
        source = re.sub(
            r'resource "random_password" "(\w+)" \{[^}]*\}',
            rf'resource "terraform_data" "\1" {{\n  input = "{STAND_IN_PASSWORD}"\n}}',
            source,
        )
        source = re.sub(r"random_password\.(\w+)\.result", r"terraform_data.\1.output", source)
        source = source.replace("data.aws_region.current.region", "data.aws_region.current.name")
        source = source.replace(
            'defaults = { region = "us-east-1" }', 'defaults = { name = "us-east-1" }'
        )
        source = source.replace('mock_provider "random" {}', "")
        path.write_text(source)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = mirrored_aws_version()
    copy = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform*"))
    adapt(copy, version)
    assert "random_password" not in "".join(p.read_text() for p in copy.rglob("*.tf"))
    run(copy, "init", "-backend=false", "-input=false", f"-plugin-dir={MIRROR}")
    return copy


def run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [terraform(), f"-chdir={directory}", *args, "-no-color"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_terraform_validate(initialised: Path) -> None:
    assert "The configuration is valid" in run(initialised, "validate").stdout


@pytest.mark.parametrize("example", ["dev.tfvars", "prod.tfvars"])
def test_terraform_test_applies_the_example_against_mocked_providers(
    initialised: Path, example: str
) -> None:
    result = run(initialised, "test", f"-var-file={EXAMPLES / example}")
    assert "4 passed, 0 failed" in result.stdout, result.stdout


def test_terraform_test_fails_a_broken_configuration(initialised: Path) -> None:
    # The runs above can fail: an invalid schedule expression is rejected.
    result = subprocess.run(
        [
            terraform(),
            f"-chdir={initialised}",
            "test",
            f"-var-file={EXAMPLES / 'dev.tfvars'}",
            "-var",
            'functions={ producer_schedule = "rate(1 minutes)" }',
            "-no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "schedule_expression" in result.stdout + result.stderr
