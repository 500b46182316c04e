"""The inner loop: unit tests need no service and no stack, and CI lints and runs them first."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_root_conftest_imports_nothing_of_the_stack() -> None:
    tree = ast.parse((REPO / "tests" / "conftest.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "pytest"}, imported


def test_ci_lints_and_runs_the_unit_tests_before_the_readme_test_command() -> None:
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    steps = [line for line in lines if line.startswith(("./stack", "exec ./stack"))]
    assert steps == ["./stack lint", './stack test -m "not integration" -q', "exec ./stack test"], steps
    assert "ruff==" in (REPO / "pyproject.toml").read_text(), "the linter is pinned"
