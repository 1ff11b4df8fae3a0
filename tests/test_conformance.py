"""Whole-corpus conformance (slow) and the harness's own helpers (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.conformance import _truncate, classify, print_report, run_conformance

BASELINE = Path(__file__).with_name("conformance_baseline.json")
BANNER = "".join(f"# banner line {n}\n" for n in range(1, 7))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # two workers over 326 files; well inside CI's 90 minutes
def test_full_corpus_conformance_does_not_regress(capsys: pytest.CaptureFixture[str]) -> None:
    """Converting all 326 modular files in order leaves at least the baseline identical."""
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))["identical"]
    report = run_conformance(jobs=2)
    identical = report.totals["identical"]
    with capsys.disabled():  # the figure is the point of this test: always show it
        print(f"\nconformance: {identical} identical (baseline {baseline})")
        print_report(report)
    assert identical >= baseline, f"{identical} identical outputs, baseline is {baseline}"


def body(*lines: str) -> str:
    return BANNER + "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize(
    ("expected", "actual", "category"),
    [
        (body("x = 1"), "# other banner\n" + body("x = 1"), "banner/header"),
        (body("import torch"), body("import numpy"), "imports"),
        (body("from a import (", "    B,", ")"), body("from a import (", "    C,", ")"), "imports"),
        (body("x = f(a, b)"), body("x = f(a,  b)"), "formatting"),
        (body("", "x = 1"), body("x = 1"), "formatting"),
        (body("x = 1"), body("x = 1").rstrip("\n"), "formatting"),
        (body("# Copyright 2024"), body("# Copyright 2025"), "comment"),
        (body('"""', "Doc one.", '"""'), body('"""', "Doc two.", '"""'), "docstring"),
        (body("class ZetaModel(Base):"), body("class OrbitModel(Base):"), "renaming"),
        # An indented line that recurs later is still a rename, not a moved node.
        (body("    return a", "    return b"), body("    return b", "    return b"), "renaming"),
        (body("a = f()", "b = g()"), body("b = g()", "a = f()"), "ordering"),
        (body("a = f()", "b = g()"), body("c = h()", "a = f()", "b = g()"), "extra_node"),
        (body("c = h()", "a = f()"), body("a = f()"), "missing_dependency"),
        (body("a = f()", "b = g()"), body("a = f()"), "missing_dependency"),
        (body("a = f()"), body("a = f()", "b = g()"), "extra_node"),
        (body("x = 1"), body("y = f(2)"), "other"),
    ],
)
def test_classify_names_the_kind_of_the_first_differing_line(
    expected: str, actual: str, category: str
) -> None:
    assert classify(expected, actual) == category


def test_truncate_keeps_whole_earlier_levels_so_parents_come_along() -> None:
    levels = [[Path("a"), Path("b")], [Path("c"), Path("d")], [Path("e")]]
    assert _truncate(levels, 1) == [[Path("a")]]
    assert _truncate(levels, 3) == [[Path("a"), Path("b")], [Path("c")]]
    assert _truncate(levels, 9) == levels
