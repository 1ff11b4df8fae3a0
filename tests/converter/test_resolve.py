"""Read-only gathering: parent registration, parent paths, inventories, dependencies."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from daemon.converter.inventory import Namespace, gather_inventory
from daemon.converter.resolve import (
    gather_model_imports,
    gather_sibling_imports,
    is_plain_import,
    normalise_module,
    parent_path,
    read_text,
)
from daemon.errors import ConvertError

SOURCE = Path("/repo/src/transformers/models/orbit/modular_orbit.py")


def parse(text: str) -> cst.Module:
    return cst.parse_module(textwrap.dedent(text).lstrip("\n"))


def test_r_par_1_model_imports_register_parents_in_order():
    found = gather_model_imports(
        parse(
            """
            from ..zeta.modeling_zeta import ZetaModel, zeta_helper
            from ..zeta.configuration_zeta import ZetaConfig
            from ..auto import AutoConfig
            from ..auto.modeling_auto import AutoModel
            from ...models.nova.modeling_nova import NOVAModel as Base
            """
        ),
        SOURCE,
    )
    assert list(found.parents) == [
        "transformers.models.zeta.modeling_zeta",
        "transformers.models.zeta.configuration_zeta",
        "transformers.models.nova.modeling_nova",
    ]
    # R-PAR-3 edges: the key is the name before `as`.
    assert list(found.names) == ["ZetaModel", "zeta_helper", "ZetaConfig", "NOVAModel"]


def test_r_par_1_imports_nested_in_functions_register_parents():
    found = gather_model_imports(
        parse("def f():\n    from ..zeta.modeling_zeta import helper\n"), SOURCE
    )
    assert found.names == {"helper": "transformers.models.zeta.modeling_zeta"}


def test_r_par_1_later_import_overwrites_the_record():
    found = gather_model_imports(
        parse(
            """
            from ..zeta.modeling_zeta import rotate_half
            from ..nova.modeling_nova import rotate_half
            """
        ),
        SOURCE,
    )
    assert found.names == {"rotate_half": "transformers.models.nova.modeling_nova"}


@pytest.mark.parametrize(
    ("statement", "plain"),
    [
        ("from ..auto import AutoModel", True),
        ("from ...utils import x", True),
        ("from .configuration_orbit import OrbitConfig", True),
        ("from ..auto.modeling_auto import AutoModel", True),
        ("from ..zeta.modeling_zeta import ZetaModel", False),
        ("from transformers.models.zeta.modeling_zeta import ZetaModel", False),
    ],
)
def test_r_par_1_plain_import_classification(statement, plain):
    node = cst.parse_statement(statement)
    assert isinstance(node, cst.SimpleStatementLine)
    assert isinstance(node.body[0], cst.ImportFrom)
    assert is_plain_import(node.body[0]) is plain


def test_r_par_1_module_names_are_normalised():
    assert normalise_module("..llama.modeling_llama") == "transformers.models.llama.modeling_llama"
    assert (
        normalise_module("transformers.models.x.modeling_x") == "transformers.models.x.modeling_x"
    )


def test_r_err_2_config_imported_from_a_modeling_parent():
    with pytest.raises(ConvertError) as raised:
        gather_model_imports(parse("from ..zeta.modeling_zeta import ZetaConfig\n"), SOURCE)
    assert raised.value.line == 1


def test_r_err_3_from_transformers_is_refused():
    with pytest.raises(ConvertError) as raised:
        gather_model_imports(parse("import os\nfrom transformers import ZetaModel\n"), SOURCE)
    assert raised.value.line == 2


def test_r_io_7_relative_parents_resolve_against_the_modular_directory(tmp_path):
    source = tmp_path / "src/zoo/models/orbit/modular_orbit.py"
    found = gather_model_imports(parse("from ..zeta.modeling_zeta import ZetaModel\n"), source)
    (parent,) = found.parents.values()
    assert parent_path(parent, source=source, root=tmp_path) == (
        tmp_path / "src/zoo/models/zeta/modeling_zeta.py"
    )
    assert parent.model == "zeta" and parent.file_type == "modeling"


def test_r_io_7_absolute_parents_resolve_under_the_root(tmp_path):
    found = gather_model_imports(
        parse("from transformers.models.zeta.modeling_zeta import ZetaModel\n"), SOURCE
    )
    (parent,) = found.parents.values()
    expected = tmp_path / "src/transformers/models/zeta/modeling_zeta.py"
    assert parent_path(parent, source=SOURCE, root=tmp_path) == expected


def test_r_io_7_overlay_is_read_before_the_disk(tmp_path):
    path = tmp_path / "modeling_zeta.py"
    path.write_text("on disk\n", encoding="utf-8")
    assert read_text(path, {path: "in memory\n"}) == "in memory\n"
    assert read_text(path, {}) == "on disk\n"
    assert read_text(tmp_path / "missing.py", {}) is None


def test_r_top_1_inventory_records_and_drops():
    inventory = gather_inventory(
        parse(
            '''
            """Orbit model."""
            import os
            from ..zeta.modeling_zeta import ZetaModel
            LOG_LEVEL: int = 3
            torch.fx.wrap("orbit_fn")
            TABLE = {}
            TABLE["k"] = 1
            a = b = 1
            try:
                import scipy
            except ImportError:
                pass
            if is_torch_available():
                import torch
            if is_torch_available():
                X = 1
            def orbit_fn():
                class Inner:
                    pass
            class OrbitModel(ZetaModel):
                pass
            __all__ = ["OrbitModel"]
            '''
        ),
        modular=True,
    )
    assert list(inventory.nodes) == ["TABLE", 'TABLE["k"] = 1', "orbit_fn", "Inner", "OrbitModel"]
    assert inventory.pseudo_of == {"TABLE": ['TABLE["k"] = 1']}
    assert [cst.Module([]).code_for_node(i).strip() for i in inventory.imports] == ["import os"]
    assert len(inventory.guarded) == 1 and inventory.all_node is not None


def test_r_top_1_duplicate_keeps_first_position_and_last_node():
    inventory = gather_inventory(
        parse("class A:\n    x = 1\nclass B:\n    pass\nclass A:\n    x = 2\n"), modular=True
    )
    assert list(inventory.positions) == ["A", "B"]
    assert "x = 2" in cst.Module([]).code_for_node(inventory.nodes["A"])


def namespace(text: str) -> Namespace:
    inventory = gather_inventory(parse(text), modular=False)
    return Namespace(inventory.nodes, inventory.kinds, inventory.pseudo_of)


def test_r_top_3_identifiers_count_strings_do_not():
    space = namespace(
        """
        def scale(x): ...
        class ZetaOther: ...
        class ZetaThing: ...
        class ZetaMLP:
            def forward(self, x) -> "ZetaThing":
                return self.scale(x)
            def other(self, y: ZetaOther): ...
        """
    )
    assert space.dependencies("ZetaMLP") == {"scale", "ZetaOther"}


def test_r_top_3_functions_close_recursively_classes_do_not():
    space = namespace(
        """
        K = 2
        def inner(): return K
        def outer(): return inner()
        class Norm:
            x = K
        class Uses:
            a = outer
            b = Norm
        """
    )
    assert space.dependencies("Uses") == {"outer", "inner", "K", "Norm"}


def test_r_top_5_pseudo_nodes_travel_with_their_owner():
    space = namespace(
        """
        def helper(): ...
        TABLE = {}
        TABLE["k"] = helper
        """
    )
    assert space.dependencies("TABLE") == {'TABLE["k"] = helper', "helper"}


def test_r_top_6_sibling_imports_of_a_parent():
    module = parse(
        """
        from .configuration_orbit import OrbitConfig
        from .modeling_orbit import OrbitModel as Base
        from ...utils import logging
        def f():
            from .processing_orbit import OrbitProcessor
        """
    )
    assert gather_sibling_imports(module) == {"OrbitConfig", "Base"}


def test_r_top_3_identifier_walk_matches_the_libcst_visitor():
    from daemon.converter.inventory import GatherIdentifiersVisitor, identifiers

    module = parse(
        """
        @deco(k=v)
        class A(B, metaclass=M):
            x: "Str" = f"{inside} text"
            def f(self, p=default, *a, **kw) -> R:
                return self.attr[idx] + lambda_name(q for q in r)
        """
    )
    visitor = GatherIdentifiersVisitor()
    module.visit(visitor)
    assert identifiers(module) == visitor.names
    assert {"inside", "attr", "kw", "metaclass"} <= visitor.names and "Str" not in visitor.names
