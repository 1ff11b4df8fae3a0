"""Class merging, super() unrolling, ordering and import selection on literal strings."""

from __future__ import annotations

import textwrap

import libcst as cst

from daemon.converter.imports import build_pool, guard_torch, select_imports
from daemon.converter.inventory import code_of
from daemon.converter.layout import (
    OutputFile,
    order_modular_dependencies,
    order_parent_dependencies,
)
from daemon.converter.merge import merge_bases, merge_class
from daemon.converter.supercall import ClassRecords, RewriteParentCalls, rewrite_method


def klass(text: str) -> cst.ClassDef:
    node = cst.parse_module(textwrap.dedent(text).lstrip("\n")).body[0]
    assert isinstance(node, cst.ClassDef)
    return node


def merged(parent: str, modular: str, base: str) -> str:
    return code_of(merge_class(klass(modular), klass(parent), base))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_r_cls_2_parent_node_gives_leading_lines_and_decorators(tmp_path):
    result = merged(
        "@strict\nclass OrbitEncoderConfig(OrbitConfig):\n    pass\n",
        "# my note\nclass OrbitEncoderConfig(ZetaEncoderConfig):\n    pass\n",
        "ZetaEncoderConfig",
    )
    assert result == "@strict\nclass OrbitEncoderConfig(OrbitConfig):\n    pass\n"


def bases_of(parent: str, modular: str, base: str) -> str:
    node = klass(parent).with_changes(bases=merge_bases(klass(modular), klass(parent), base))
    return code_of(node).split(":")[0]


def test_r_cls_3_additional_base_replaces_matching_parent_base():
    result = bases_of(
        "class OrbitModel(OrbitPreTrainedModel): pass",
        "class OrbitModel(OrbitVisionPreTrainedModel, ZetaModel): pass",
        "ZetaModel",
    )
    assert result == "class OrbitModel(OrbitVisionPreTrainedModel)"


def test_r_cls_3_appended_base_keeps_its_comma():
    result = bases_of(
        "class OrbitLayer(nn.Module): pass",
        "class OrbitLayer(CacheMixin, ZetaLayer): pass",
        "ZetaLayer",
    )
    assert result == "class OrbitLayer(nn.Module, CacheMixin, )"


def test_r_cls_3_gradient_checkpointing_layer_drops_nn_module():
    result = bases_of(
        "class OrbitBlock(nn.Module): pass",
        "class OrbitBlock(ZetaBlock, GradientCheckpointingLayer): pass",
        "ZetaBlock",
    )
    assert result == "class OrbitBlock(GradientCheckpointingLayer)"


def test_r_cls_3_whole_name_suffix_counts():
    result = bases_of(
        "class OrbitProcessor(ProcessorMixin): pass",
        "class OrbitProcessor(OmniModalProcessorMixin, ZetaProcessor): pass",
        "ZetaProcessor",
    )
    assert result == "class OrbitProcessor(OmniModalProcessorMixin)"


def test_r_cls_4_no_inherit_decorator_removes_parent_decorators():
    result = merged(
        '@use_fast_kernel("Attn")\nclass OrbitAttention(nn.Module):\n    pass\n',
        "@no_inherit_decorator\nclass OrbitAttention(ZetaAttention):\n    pass\n",
        "ZetaAttention",
    )
    assert result == "class OrbitAttention(nn.Module):\n    pass\n"


def test_r_cls_5_modular_docstring_wins_single_quoted_is_dropped():
    parent = 'class OrbitModel(nn.Module):\n    """Parent doc."""\n    x = 1\n'
    assert '"""Mine."""' in merged(
        parent, 'class OrbitModel(ZetaModel):\n    """Mine."""\n', "ZetaModel"
    )
    result = merged(parent, "class OrbitModel(ZetaModel):\n    '''Lost.'''\n", "ZetaModel")
    assert '"""Parent doc."""' in result and "Lost" not in result


def test_r_cls_6_attributes_replace_in_place_append_and_delete():
    result = merged(
        dedent(
            """
            class OrbitMLP(nn.Module):
                dim = 4
                act_name: str = "gelu"
                dropout = 0.1
            """
        ),
        dedent(
            """
            class OrbitMLP(ZetaMLP):
                act_name: str = "relu"
                extra = 2
                dim = 8
                dropout = AttributeError()
            """
        ),
        "ZetaMLP",
    )
    assert result == dedent(
        """
        class OrbitMLP(nn.Module):
            dim = 8
            act_name: str = "relu"
            extra = 2
        """
    )


def test_r_cls_7_methods_merge_remove_and_append():
    result = merged(
        dedent(
            '''
            class OrbitMLP(nn.Module):
                def forward(self, x):
                    """Apply the MLP."""
                    return self.fc(x)

                def solve(self, x):
                    return x

                def reset(self):
                    self.fc.reset()
            '''
        ),
        dedent(
            """
            class OrbitMLP(ZetaMLP):
                # faster path
                def forward(self, x):
                    return x + 1
                def solve(self, x):
                    raise ValueError("no")

                def reset(self):
                    raise NotImplementedError("n/a")

                def extra(self):
                    return 2
            """
        ),
        "ZetaMLP",
    )
    assert result == dedent(
        '''
        class OrbitMLP(nn.Module):
            def forward(self, x):
                """Apply the MLP."""
                return x + 1

            def solve(self, x):
                raise ValueError("no")

            def extra(self):
                return 2
        '''
    )


def test_r_cls_7_attribute_replaces_parent_property():
    result = merged(
        "class OrbitConfig:\n    @property\n    def latent(self):\n        return 1\n",
        "class OrbitConfig(ZetaConfig):\n    latent: int = 2\n",
        "ZetaConfig",
    )
    assert result == "class OrbitConfig:\n    latent: int = 2\n"


def test_r_cls_9_super_kwargs_take_parent_parameters():
    result = merged(
        dedent(
            """
            class OrbitModel(nn.Module):
                def forward(self, x, mask=None, scale: float = 1.0, **kwargs) -> torch.Tensor:
                    return x * scale
            """
        ),
        dedent(
            """
            class OrbitModel(ZetaModel):
                def forward(self, scale: float = 2.0, **super_kwargs):
                    return super().forward(**super_kwargs)
            """
        ),
        "ZetaModel",
    )
    assert (
        "def forward(self, x, mask=None, scale: float = 2.0, **kwargs) -> torch.Tensor:" in result
    )
    assert "return x * scale" in result


def rewrite(parent_body: str, modular_body: str, bases=("OrbitPreTrainedModel",)) -> str:
    parent = cst.parse_statement(dedent(parent_body))
    method = cst.parse_statement(dedent(modular_body))
    assert isinstance(parent, cst.FunctionDef) and isinstance(method, cst.FunctionDef)
    return code_of(rewrite_method(method, parent, ClassRecords(), list(bases)))


def test_r_cls_10_only_whole_statement_super_calls_unroll():
    kept = rewrite(
        "def forward(self, x):\n    return x\n",
        "def forward(self, x):\n    y = super().forward(x)\n    return y\n",
    )
    assert kept == "def forward(self, x):\n    y = super().forward(x)\n    return y\n"


def test_r_cls_11_reassignment_replaces_in_place():
    result = rewrite(
        """
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.act = nn.GELU()
            self.drop = nn.Dropout(0.1)
        """,
        """
        def __init__(self, config):
            super().__init__(config)
            del self.drop
            self.act = nn.ReLU()
            self.post_init()
            self.gate = nn.Linear(1, 1)
        """,
    )
    assert result == dedent(
        """
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.act = nn.ReLU()
            self.gate = nn.Linear(1, 1)
            self.post_init()
        """
    )


def test_r_cls_11_records_live_for_the_whole_class():
    records = ClassRecords()
    first = cst.parse_statement("def a(self):\n    super().a()\n    del self.x\n")
    second = cst.parse_statement("def b(self):\n    super().b()\n")
    parent_a = cst.parse_statement("def a(self):\n    pass\n")
    parent_b = cst.parse_statement("def b(self):\n    self.x = 1\n    self.y = 2\n")
    for node in (first, second, parent_a, parent_b):
        assert isinstance(node, cst.FunctionDef)
    rewrite_method(first, parent_a, records, [])  # type: ignore[arg-type]
    result = rewrite_method(second, parent_b, records, [])  # type: ignore[arg-type]
    assert code_of(result) == "def b(self):\n    self.y = 2\n"


def test_r_cls_12_post_init_goes_last():
    result = rewrite(
        "def __init__(self, config):\n    self.a = 1\n    self.post_init()\n",
        "def __init__(self, config):\n    super().__init__(config)\n    self.b = 2\n",
    )
    assert result.endswith("    self.b = 2\n    self.post_init()\n")


def test_r_cls_13_super_init_goes_first_when_parent_had_it_first():
    result = rewrite(
        "def __init__(self, config):\n"
        "    super().__init__(config)\n"
        "    self.mlp = OrbitMLP(config)\n",
        "def __init__(self, config):\n    self.extra = 1\n    super().__init__(config)\n",
    )
    assert result == dedent(
        """
        def __init__(self, config):
            super().__init__(config)
            self.extra = 1
            self.mlp = OrbitMLP(config)
        """
    )


def test_r_cls_14_explicit_parent_calls_become_super():
    result = rewrite(
        "def __init__(self, config):\n    pass\n",
        dedent(
            """
            def __init__(self, config):
                PreTrainedModel.__init__(self, config)
                nn.Module.__init__(self)
                ZetaPreTrainedModel.forward(self, x)
            """
        ),
    )
    assert "    super().__init__(config)\n    nn.Module.__init__(self)\n" in result
    assert "ZetaPreTrainedModel.forward(self, x)" in result


def statements(text: str) -> list[cst.BaseStatement]:
    return list(cst.parse_module(dedent(text)).body)


def test_r_imp_1_parent_entries_already_in_pool_are_skipped():
    modular = statements("from torch import nn\n")
    parent = statements("import torch.nn as nn\nfrom torch import nn\n")
    pool = build_pool(modular, [], [parent])  # type: ignore[arg-type, list-item]
    assert [code_of(e) for e in pool] == ["from torch import nn\n", "import torch.nn as nn\n"]


def test_r_imp_2_first_binding_wins_and_guarded_blocks_follow():
    pool = statements(
        """
        import torch
        from ...utils import is_scipy_available, logging
        if is_scipy_available():
            from scipy import optimize
            import torch
        from torch import nn
        import torch.nn as nn
        """
    )
    nodes = statements("def f():\n    return nn, torch, optimize\n")
    kept = select_imports(pool, nodes, set())  # type: ignore[arg-type]
    assert "".join(code_of(e) for e in kept) == dedent(
        """
        import torch
        from ...utils import is_scipy_available
        from torch import nn
        if is_scipy_available():
            from scipy import optimize
        """
    )


def test_r_imp_2_a_referenced_local_import_keeps_the_module_import():
    pool = statements("from ...image_utils import get_max, other\n")
    nodes = statements(
        "def f(x):\n    from ...image_utils import get_max\n\n    return get_max(x)\n"
    )
    kept = select_imports(pool, nodes, set())  # type: ignore[arg-type]
    # Any binding of the name counts (ruff's F811 later deletes the local import).
    assert "".join(code_of(e) for e in kept) == "from ...image_utils import get_max\n"


def test_r_imp_2_names_defined_in_the_file_are_unused():
    pool = statements("from .configuration_orbit import OrbitConfig\n")
    nodes = statements("class OrbitConfig:\n    pass\n")
    assert select_imports(pool, nodes, {"OrbitConfig"}) == []  # type: ignore[arg-type]


def test_r_imp_4_torch_imports_are_guarded_in_pil_files():
    imports = statements(
        """
        import numpy as np
        import torch
        from ...utils import TensorType, is_vision_available
        if is_vision_available():
            import PIL
        """
    )
    result = guard_torch(imports)  # type: ignore[arg-type]
    assert "".join(code_of(e) for e in result) == dedent(
        """
        import numpy as np
        from ...utils import TensorType, is_vision_available, is_torch_available
        if is_vision_available():
            import PIL
        if is_torch_available():
            import torch
        """
    )


def test_r_imp_4_utils_line_is_prepended_when_none_lacks_the_names():
    imports = statements("from ...utils import is_torch_available\nimport torch\n")
    result = guard_torch(imports)  # type: ignore[arg-type]
    assert code_of(result[0]) == "from ...utils import is_torch_available\n"
    assert len(result) == 3


def test_r_top_8_replacing_a_name_moves_it_to_the_later_slot():
    file = OutputFile("modeling")
    node = statements("x = 1\n")[0]
    file.place("A", node)  # type: ignore[arg-type]
    file.place("B", node)  # type: ignore[arg-type]
    file.place("A", node)  # type: ignore[arg-type]
    file.place("logger", node)  # type: ignore[arg-type]
    assert [name for name, _ in file.ordered()] == ["logger", "B", "A"]


def test_r_top_9_relative_order_against_the_parent():
    order = order_parent_dependencies(
        {"helper_a", "ORBIT_C", "OrbitNorm", "helper_b", "ORBIT_SCALE"},
        parent_positions={
            "helper_a": 0,
            "ORBIT_C": 1,
            "OrbitNorm": 2,
            "helper_b": 3,
            "ORBIT_SCALE": 4,
        },
        modular_positions={"ORBIT_SCALE": 0},
        parent_classes={"OrbitNorm"},
        class_map={"OrbitNorm": {"helper_b"}},
    )
    assert order == ["helper_b", "OrbitNorm", "helper_a", "ORBIT_C", "ORBIT_SCALE"]


def test_r_top_10_pulled_names_first_grouped_by_parent():
    order = order_modular_dependencies(
        {"orbit_fn", "ORBIT_K", "helper_a", "helper_z"},
        modular_positions={"ORBIT_K": 0, "orbit_fn": 1},
        pulled_from={"helper_a": "zeta", "helper_z": "zeta"},
        parent_positions={"zeta": {"helper_z": 0, "helper_a": 1}},
    )
    assert order == ["helper_z", "helper_a", "ORBIT_K", "orbit_fn"]


def test_r_cls_14_statements_naming_no_base_are_kept_and_nested_calls_rewritten():
    rewriter = RewriteParentCalls(["ZetaPreTrainedModel"])
    plain, nested = statements(
        """
        x = helper(self, PreTrained)
        if y:
            out = [ZetaPreTrainedModel.forward(self, z) for z in y]
        """
    )

    assert rewriter.rewrite(plain) is plain
    rewritten = code_of(rewriter.rewrite(nested))
    assert "out = [super().forward(z) for z in y]" in rewritten
