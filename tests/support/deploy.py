"""Helpers for the static deployment checks (tests/static): the Terraform tree parsed
with python-hcl2, and the static-check tools of the tools virtualenv.

python-hcl2 keeps HCL's quoting: a literal string comes back as '"text"', an expression
as '${...}'. ``text()`` turns either into the plain form ('text', '${...}').
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.conftest import REPO_ROOT

TERRAFORM = REPO_ROOT / "deploy" / "terraform"
MODULES = TERRAFORM / "modules"
EXAMPLES = TERRAFORM / "examples"
MODULE_NAMES = (
    "network",
    "messaging",
    "cache",
    "storage",
    "registry",
    "compute",
    "functions",
    "iam",
    "observability",
)


def text(value: Any) -> Any:
    """A python-hcl2 scalar without HCL's surrounding quotes; other values unchanged."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def plain(value: Any) -> Any:
    """``text()`` applied all the way down, keys included; python-hcl2 markers (__is_block__,
    __comments__) dropped."""
    if isinstance(value, dict):
        return {text(key): plain(item) for key, item in value.items() if not key.startswith("__")}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return text(value)


@cache
def parse_file(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return plain(hcl2.load(handle))


def module_dirs() -> list[Path]:
    """The root module and every child module."""
    return [TERRAFORM, *(MODULES / name for name in MODULE_NAMES)]


def tf_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf"))


def blocks(directory: Path, kind: str) -> list[dict[str, Any]]:
    """Every top-level block of one kind ("variable", "resource", ...) of a module."""
    found: list[dict[str, Any]] = []
    for path in tf_files(directory):
        found.extend(parse_file(path).get(kind, []))
    return found


def named(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Blocks with one label (variable, output, module): name -> body."""
    result: dict[str, dict[str, Any]] = {}
    for block in blocks(directory, kind):
        for name, body in block.items():
            assert name not in result, f"{kind} {name} declared twice in {directory}"
            result[name] = body
    return result


def resources(directory: Path, kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
    """Blocks with two labels (resource, data): (type, name) -> body."""
    result: dict[tuple[str, str], dict[str, Any]] = {}
    for block in blocks(directory, kind):
        for type_, by_name in block.items():
            for name, body in by_name.items():
                result[(type_, name)] = body
    return result


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in blocks(directory, "locals"):
        for name, value in block.items():
            assert name not in merged, f"local {name} declared twice in {directory}"
            merged[name] = value
    return merged


def walk(value: Any) -> Iterator[Any]:
    """Every dict and list inside a parsed value, the value included."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def strip_comments(source: str) -> str:
    """HCL source without # and // line comments (strings are kept intact enough for
    finding references: comments never hold a reference we count)."""
    return re.sub(r"(?m)^\s*(#|//).*$", "", source)


def parse_tfvars(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return plain(hcl2.load(handle))


def tool(name: str) -> str:
    """Path of a static-check tool: the tools virtualenv (``make tools``), else PATH.

    Missing, the test fails in CI (CI=true) and is skipped elsewhere with the fix.
    """
    tools_bin = Path(os.environ.get("RNR_TOOLS_BIN") or REPO_ROOT / ".venv-tools" / "bin")
    candidate = tools_bin / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run `make tools` (it creates .venv-tools)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")


def terraform() -> str:
    found = shutil.which("terraform") or (
        "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None
    )
    if found:
        return found
    message = "terraform is not installed (CI installs it with hashicorp/setup-terraform)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")
