"""docs/semantics.md names, for each clause, the tests that check it: keep that true.
Every ``file::test`` it names must exist here, and every conformance test must be
named there."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DOC = HERE.parent.parent / "docs" / "semantics.md"


def _tests_here() -> set:
    out = set()
    for path in HERE.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.add(f"{path.name}::{node.name}")
    return out


@pytest.mark.skipif(not DOC.exists(), reason="docs/ is not shipped with this copy of the suite")
def test_semantics_doc_names_existing_tests_and_all_of_them():
    named = set(re.findall(r"(test_\w+\.py::test_\w+)", DOC.read_text()))
    existing = _tests_here() - {f"{Path(__file__).name}::{name}" for name in
                                ("test_semantics_doc_names_existing_tests_and_all_of_them",)}
    assert named, "docs/semantics.md names no test"
    assert not named - existing, f"docs/semantics.md names tests that do not exist: {sorted(named - existing)}"
    assert not existing - named, f"tests docs/semantics.md does not mention: {sorted(existing - named)}"
