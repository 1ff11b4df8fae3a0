"""The import-based parent graph the daemon uses before converting anything."""

from __future__ import annotations

from pathlib import Path

from daemon.converter import imported_modules
from daemon.graph import dependents, parent_paths, paths_of_imports, readers, topological
from tests.converter.corpus import require_corpus

ROOT = Path("/repo")
GEMMA = ROOT / "src/transformers/models/gemma/modular_gemma.py"


def test_relative_model_imports_are_parents():
    text = (
        "from ..llama.modeling_llama import LlamaModel\n"
        "from ..llama.configuration_llama import LlamaConfig\n"
        "from ...utils import logging\n"
        "from ..auto.modeling_auto import AutoModel\n"
        "from .configuration_gemma import GemmaConfig\n"
    )
    assert parent_paths(GEMMA, text, ROOT) == (
        ROOT / "src/transformers/models/llama/modeling_llama.py",
        ROOT / "src/transformers/models/llama/configuration_llama.py",
    )


def test_absolute_transformers_imports_and_nested_imports_are_parents():
    text = (
        "def f():\n"
        "    from transformers.models.llama.modeling_llama import LlamaMLP\n"
        "    return LlamaMLP\n"
    )
    assert parent_paths(GEMMA, text, ROOT) == (
        ROOT / "src/transformers/models/llama/modeling_llama.py",
    )


def test_invalid_python_has_no_parents():
    assert parent_paths(GEMMA, "from ..llama.modeling_llama import (", ROOT) == ()


def test_dependents_follow_generated_outputs_transitively():
    llama = ROOT / "src/transformers/models/llama/modeling_llama.py"
    gemma2 = ROOT / "src/transformers/models/gemma2/modular_gemma2.py"
    other = ROOT / "src/transformers/models/other/modular_other.py"
    parents = {
        GEMMA: (llama,),
        gemma2: (GEMMA.with_name("modeling_gemma.py"),),
        other: (ROOT / "src/transformers/models/bert/modeling_bert.py",),
    }
    assert dependents(parents, [llama]) == {GEMMA, gemma2}
    assert dependents(parents, [GEMMA.with_name("modeling_gemma.py")]) == {gemma2}


def test_topological_orders_by_the_known_graph_and_readers_is_one_level():
    llama = ROOT / "src/transformers/models/llama/modeling_llama.py"
    gemma2 = ROOT / "src/transformers/models/gemma2/modular_gemma2.py"
    gemma3 = ROOT / "src/transformers/models/gemma3/modular_gemma3.py"
    parents = {
        GEMMA: (llama,),
        gemma2: (GEMMA.with_name("modeling_gemma.py"),),
        gemma3: (gemma2.with_name("modeling_gemma2.py"), GEMMA.with_name("modeling_gemma.py")),
    }
    assert topological({gemma3, gemma2, GEMMA}, parents) == [GEMMA, gemma2, gemma3]
    assert readers(parents, [GEMMA.with_name("modeling_gemma.py")]) == {gemma2, gemma3}
    assert readers(parents, [llama]) == {GEMMA}


def test_parents_from_the_converters_parse_equal_those_from_ast(tmp_path: Path) -> None:
    """``Runner.learn(converting_here=True)`` reads a saved file's imports from the
    converter's own parse; it must find what the ``ast`` reading finds, in the same order, for
    every corpus file."""
    root = require_corpus()
    sources = sorted((root / "src/transformers/models").glob("*/modular_*.py"))
    assert len(sources) == 326
    for source in sources:
        text = source.read_text(encoding="utf-8")
        from_cst = paths_of_imports(source, imported_modules(source, text) or (), root)
        assert from_cst == parent_paths(source, text, root), source.name
    nested = "def f():\n    from ..llama.modeling_llama import X\nfrom ..a.modeling_a import Y\n"
    for text in (nested, "def broken(:\n"):
        assert paths_of_imports(GEMMA, imported_modules(GEMMA, text) or (), ROOT) == (
            parent_paths(GEMMA, text, ROOT)
        )
