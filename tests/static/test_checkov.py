"""checkov over deploy/terraform with each example: no failed check, and every skip is
written in-line (``#checkov:skip=ID:reason``) with its reason."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import EXAMPLES, TERRAFORM, tool

EXAMPLE_FILES = ("dev.tfvars", "prod.tfvars")


def run_checkov(directory: Path, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [
            tool("checkov"),
            "--directory",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=directory,
    )
    assert result.returncode in {0, 1}, result.stderr[-3000:]
    report = json.loads(result.stdout)
    # One framework: one report (a list only when several frameworks ran).
    assert isinstance(report, dict), type(report)
    return report


@cache
def report_for(example: str) -> dict[str, Any]:
    return run_checkov(TERRAFORM, "--var-file", str(EXAMPLES / example))


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_checkov_finds_no_failed_check(example: str) -> None:
    report = report_for(example)
    summary = report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 150, "checkov checked too little to be trusted"


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_every_skipped_check_is_skipped_in_line_with_a_reason(example: str) -> None:
    skipped = report_for(example)["results"]["skipped_checks"]
    assert skipped, "expected the documented in-line skips"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']}: give the reason"
    # Every skip is an in-line comment in the Terraform (not a command-line flag).
    sources = "\n".join(path.read_text() for path in TERRAFORM.rglob("*.tf"))
    for check_id in {check["check_id"] for check in skipped}:
        assert f"#checkov:skip={check_id}:" in sources, check_id


def test_checkov_fails_an_insecure_resource(tmp_path: Path) -> None:
    # The harness above can fail: an SSH port open to the world is a failed check.
    (tmp_path / "main.tf").write_text(
        'resource "aws_security_group" "open" {\n'
        '  name        = "open"\n'
        '  description = "open"\n'
        "  ingress {\n"
        '    description = "ssh"\n'
        "    from_port   = 22\n"
        "    to_port     = 22\n"
        '    protocol    = "tcp"\n'
        '    cidr_blocks = ["0.0.0.0/0"]\n'
        "  }\n"
        "}\n"
    )
    report = run_checkov(tmp_path)
    assert report["summary"]["failed"] > 0
    assert "CKV_AWS_24" in {check["check_id"] for check in report["results"]["failed_checks"]}
