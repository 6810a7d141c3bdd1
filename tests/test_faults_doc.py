"""docs/FAULTS.md names the tests that inject each fault: each named test exists, and each test of the
sink fault files is named (the doc cannot drift from the tests)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "FAULTS.md"
FAULT_FILES = ("tests/test_sink_faults.py", "tests/test_sink_faults_server.py", "tests/test_timeseries_costs.py")


def _tests_in(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_fault_row_names_tests_that_exist_and_every_fault_test_is_named() -> None:
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)(?:\[[\w-]+\])?`", DOC.read_text()))
    assert named
    for path, name in named:
        assert name in _tests_in(path), f"{DOC.name} names {path}::{name}, which does not exist"
    for path in FAULT_FILES:
        missing = _tests_in(path) - {name for p, name in named if p == path}
        assert not missing, f"{path}: {sorted(missing)} not in {DOC.name}"
