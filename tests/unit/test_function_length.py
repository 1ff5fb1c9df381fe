"""No function of the shipped code is longer than a screen: 80 lines, docstring included."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80


def test_no_function_in_rnr_or_services_exceeds_80_lines() -> None:
    too_long = []
    for root in ("rnr", "services"):
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_LINES:
                        where = path.relative_to(REPO_ROOT)
                        too_long.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long, "split these: " + "; ".join(too_long)
