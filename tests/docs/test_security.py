"""docs/SECURITY.md stays true: every test it names exists, and every ASVS Level 1 row is there."""

from __future__ import annotations

import ast
import re
from functools import cache

from tests.conftest import PROJECT_ROOT

SECURITY = (PROJECT_ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (V\d+\.\d+\.\d+) \| (.+?) \| (met|not applicable|not met) \| (.*) \|$", re.M)
TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
# ASVS 5.0.0 has 70 Level 1 requirements (OWASP/ASVS, 5.0/docs_en/..._en.csv).
LEVEL_1 = 70


def _section(title: str) -> str:
    return SECURITY.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@cache
def _tests_in(path: str) -> frozenset[str]:
    tree = ast.parse((PROJECT_ROOT / path).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def test_every_test_the_document_names_exists():
    named = TEST.findall(SECURITY)
    assert named, "the document names no test"
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (PROJECT_ROOT / path).is_file() or name not in _tests_in(path)
    ]
    assert missing == []


def test_every_level_1_requirement_has_exactly_one_row():
    ids = [row[0] for row in ROW.findall(_section("Level 1"))]
    assert len(ids) == LEVEL_1
    assert len(set(ids)) == len(ids)


def test_every_row_proves_or_explains_itself():
    rows = ROW.findall(SECURITY)
    assert len(rows) > LEVEL_1  # and the Level 2 rows this service meets
    for requirement, _text, status, proof in rows:
        reason = TEST.sub("", proof).replace("<br>", "").strip()
        if status == "met":
            assert TEST.search(proof) or reason, requirement
        else:
            assert reason, f"{requirement} is {status} without saying why"
    level_2 = ROW.findall(_section("Level 2 requirements met"))
    assert level_2 and {row[2] for row in level_2} == {"met"}
    assert all(TEST.search(row[3]) for row in level_2), "a Level 2 claim needs its test"
