"""Conversion order between modular files (R-PAR-8), with Python's own parser."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from daemon.converter.order import (
    dependency_levels,
    from_imports,
    model_dependencies,
    node_name,
)
from daemon.errors import ConvertError

MODELS = Path("/repo/src/transformers/models")


def modular(name: str, directory: str | None = None) -> Path:
    return MODELS / (directory or name) / f"modular_{name}.py"


def test_r_par_8_scan_keeps_model_imports_at_any_depth():
    text = textwrap.dedent(
        """\
        from ..zeta.modeling_zeta import ZetaModel
        from transformers.models.nova.configuration_nova import NOVAConfig
        from ..kite.image_processing_pil_kite import KiteImageProcessorPil

        def build():
            from ..comet.video_processing_comet import CometVideoProcessor
        """
    )

    assert model_dependencies(text) == {"zeta", "nova", "kite", "comet"}


def test_r_par_8_scan_ignores_auto_siblings_and_foreign_files():
    text = textwrap.dedent(
        """\
        from ..auto.modeling_auto import AutoModel
        from ..auto import AutoConfig
        from .configuration_orbit import OrbitConfig
        from ...utils import logging
        from . import orbit_utils
        from ..zeta.modeling_nova import NovaModel
        import transformers.models.comet.modeling_comet
        """
    )

    assert model_dependencies(text) == set()


def test_r_par_8_scan_reads_a_file_that_does_not_parse():
    assert model_dependencies("from ..zeta.modeling_zeta import ZetaModel\nclass Orbit(\n") == {
        "zeta"
    }


def test_r_par_8_node_name_comes_from_the_file_name():
    assert node_name(modular("orbit_text", "orbit")) == "orbit_text"
    assert node_name(Path("/repo/modular_x/modular_orbit_modular_text.py")) == "text"
    assert node_name(Path("/repo/orbit/orbit.py")) == "orbit"


def test_r_par_8_levels_in_order_each_sorted_by_path():
    zeta, nova, orbit, comet = modular("zeta"), modular("nova"), modular("orbit"), modular("comet")
    sources = {
        orbit: "from ..zeta.modeling_zeta import ZetaModel\nfrom ..nova.modeling_nova import N\n",
        nova: "from ..zeta.configuration_zeta import ZetaConfig\n",
        comet: "from ..llama.modeling_llama import LlamaModel\n",  # llama is not being converted
        zeta: "import torch\n",  # no model import at all: level 0, not refused
    }

    assert dependency_levels(sources) == [[comet, zeta], [nova], [orbit]]


def test_r_par_8_edges_use_the_directory_so_differently_named_files_are_not_targets():
    orbit_text = modular("orbit_text", "orbit")
    comet = modular("comet")
    sources = {
        comet: "from ..orbit.modeling_orbit_text import OrbitTextModel\n",
        orbit_text: "from ..zeta.modeling_zeta import ZetaModel\n",
    }

    assert dependency_levels(sources) == [[comet, orbit_text]]


def test_r_err_10_a_cycle_is_reported_with_its_files():
    zeta, orbit, nova = modular("zeta"), modular("orbit"), modular("nova")
    sources = {
        zeta: "from ..orbit.modeling_orbit import OrbitModel\n",
        orbit: "from ..zeta.modeling_zeta import ZetaModel\n",
        nova: "from ..zeta.modeling_zeta import ZetaModel\n",
    }

    with pytest.raises(ConvertError, match="cycle") as caught:
        dependency_levels(sources)

    assert f"{orbit} -> {zeta} -> {orbit}" in str(caught.value)
    assert str(nova) not in str(caught.value)


NESTED_IMPORTS = """\
from .a import x
try:
    from .b import y
except ImportError:
    from .c import y
else:
    from .d import z
finally:
    from .e import w
if x:
    from ..f.modeling_f import F
match y:
    case 1:
        from .g import g
class C:
    def m(self):
        from .h import h
        return [i for i in h]
from . import nothing
"""


def test_r_par_8_from_imports_at_any_depth_in_source_order_as_ast_walk_finds_them():
    tree = ast.parse(NESTED_IMPORTS)
    walked = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    expected = [(n.level, n.module) for n in sorted(walked, key=lambda n: n.lineno)]

    assert from_imports(NESTED_IMPORTS) == tuple(expected)
    assert [module for _, module in expected] == ["a", "b", "c", "d", "e", "f.modeling_f", "g", "h"]
    assert from_imports("from .a import (\n") is None
