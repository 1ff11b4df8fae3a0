"""One before/after test per spec rule not covered elsewhere, named after the rule.

Every repository here is invented (zeta/orbit/nova models in tmp dirs); nothing is copied from
the transformers corpus. Outputs are compared unformatted (``format=False``) unless the rule is
about ruff.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon import config
from daemon.commands import collect_sources
from daemon.converter import Converted, Failed, convert
from daemon.errors import DaemonError

MODELS = Path("src", "transformers", "models")

# The upstream settings of R-FMT-3 that matter for the small outputs below.
UPSTREAM_RUFF = """\
[tool.ruff]
target-version = "py311"
line-length = 119

[tool.ruff.lint]
preview = true
explicit-preview-rules = true
select = ["E", "F", "I", "W", "UP", "FURB", "SIM", "S110", "C4", "C901", "RUF013", "PERF102",
          "PLC1802", "PLC0208", "PIE794", "PLW1514"]
ignore = ["E501", "E741", "SIM1", "SIM905", "UP015", "UP031"]
extend-safe-fixes = ["UP006"]
external = ["NC"]

[tool.ruff.lint.isort]
lines-after-imports = 2
known-first-party = ["transformers"]

[tool.ruff.format]
quote-style = "double"
indent-style = "space"
skip-magic-trailing-comma = false
line-ending = "auto"
"""


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def nonblank(text: str) -> str:
    """``text`` without its blank lines (ruff's business, not the rule's)."""
    return "".join(line for line in text.splitlines(keepends=True) if line.strip())


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Write dedented ``files`` (paths relative to ``src/transformers/models``) under ``root``."""
    for relative, text in files.items():
        path = root / MODELS / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")


def run(
    root: Path,
    files: dict[str, str],
    modular: str = "orbit/modular_orbit.py",
    *,
    format: bool = False,
) -> Converted:
    write_tree(root, files)
    if format:
        (root / "pyproject.toml").write_text(UPSTREAM_RUFF, encoding="utf-8")
    result = convert(root / MODELS / modular, root=root, format=format)
    assert isinstance(result, Converted), result
    return result


def bodies(result: Converted) -> dict[str, str]:
    """``{kind: text}`` with the 6-line banner stripped."""
    return {o.kind: o.text.split("\n", 6)[6] for o in result.outputs}


def convert_raw(
    root: Path, files: dict[str, str], modular: str = "orbit/modular_orbit.py"
) -> dict[str, str]:
    return bodies(run(root, files, modular))


def convert_formatted(
    root: Path, files: dict[str, str], modular: str = "orbit/modular_orbit.py"
) -> dict[str, str]:
    return bodies(run(root, files, modular, format=True))


ZETA_MLP = {
    "zeta/modeling_zeta.py": """
        from torch import nn


        class ZetaLayer(nn.Module):
            def forward(self, x):
                return x


        class ZetaMLP(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.fc = nn.Linear(1, 1)
                self.drop = nn.Dropout(0.1)

            def forward(self, x):
                return self.fc(x)

            def reset(self):
                self.drop = None
                self.fc = nn.Linear(2, 2)


        class ZetaModel(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.mlp = ZetaMLP(config)

            def forward(self, x):
                return self.mlp(x)
        """,
}


# --- 1. Inputs and outputs -------------------------------------------------------------------


def test_r_io_1_model_name_is_the_file_name_after_modular(tmp_path):
    """`orbit/modular_orbit_text.py` has model name `orbit_text`: outputs and routing use it."""
    result = run(
        tmp_path,
        {
            "orbit/modular_orbit_text.py": """
                class OrbitTextConfig:
                    pass


                class OrbitTextModel:
                    pass
                """
        },
        modular="orbit/modular_orbit_text.py",
    )
    paths = sorted(o.path.relative_to(tmp_path / MODELS).as_posix() for o in result.outputs)
    assert paths == ["orbit/configuration_orbit_text.py", "orbit/modeling_orbit_text.py"]


# --- 2. Naming -------------------------------------------------------------------------------


def test_r_name_8_each_parent_is_renamed_from_its_directory_name(tmp_path):
    """The rename's old name is the parent's directory (`zeta`), applied to the whole tree."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta_core.py": """
                ZETA_SCALE = 2.0


                class ZetaNorm:
                    scale = ZETA_SCALE


                class ZetaModel:
                    name = "zeta model"
                    norm = ZetaNorm
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta_core import ZetaModel


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )["modeling"]
    assert body == dedent(
        """
        ORBIT_SCALE = 2.0


        class OrbitNorm:
            scale = ORBIT_SCALE


        class OrbitModel:
            name = "orbit model"
            norm = OrbitNorm
        """
    )


def test_r_name_11_the_modular_file_is_never_renamed(tmp_path):
    """Modular text, including a reference to a parent class it does not redefine, stays."""
    body = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from torch import nn

                from ..zeta.modeling_zeta import ZetaMLP


                class OrbitHead(nn.Module):
                    # a zeta head
                    def __init__(self, config):
                        super().__init__()
                        self.mlp = ZetaMLP(config)  # still "zeta"
                """,
        },
    )["modeling"]
    assert body == dedent(
        """
        from torch import nn


        class OrbitHead(nn.Module):
            # a zeta head
            def __init__(self, config):
                super().__init__()
                self.mlp = ZetaMLP(config)  # still "zeta"
        """
    )


# --- 3. Parents ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("from ..zeta.modeling_zeta import ZetaConfig", "ZetaConfig"),
        ("from transformers import ZetaModel", "from transformers import"),
        ("from ..ghost.modeling_ghost import GhostModel", "transformers.models.ghost"),
    ],
)
def test_r_par_2_forbidden_and_unresolvable_imports_fail(tmp_path, line, needle):
    """A Config from a modeling parent, `from transformers`, or a missing parent is a Failed."""
    write_tree(tmp_path, {**ZETA_MLP, "orbit/modular_orbit.py": f"import os\n{line}\n"})
    result = convert(tmp_path / MODELS / "orbit/modular_orbit.py", root=tmp_path, format=False)
    assert isinstance(result, Failed), result
    assert result.line == 2 and needle in result.message


def test_r_par_3_only_bare_recorded_names_are_model_specific_bases(tmp_path):
    """An aliased base is not model-specific (emitted as written); the recorded name merges."""
    body = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaLayer
                from ..zeta.modeling_zeta import ZetaMLP as Base


                class OrbitMLP(Base):
                    extra = 1


                class OrbitLayer(CacheMixin, ZetaLayer):
                    pass
                """,
        },
    )["modeling"]
    assert "class OrbitMLP(Base):\n    extra = 1\n" in body
    assert "class OrbitLayer(nn.Module, CacheMixin, ):\n    def forward(self, x):" in body


def test_r_par_4_several_parents_each_with_its_own_prefix_and_file_type(tmp_path):
    """Each parent is renamed with its own prefix; its imports join the pool of its output."""
    outputs = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "nova/configuration_nova.py": """
                from ...configuration_utils import PreTrainedConfig


                class NovaConfig(PreTrainedConfig):
                    model_type = "nova"
                """,
            "orbit/modular_orbit.py": """
                from ..nova.configuration_nova import NovaConfig
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitConfig(NovaConfig):
                    pass


                class OrbitVisionModel(ZetaModel):
                    pass
                """,
        },
    )
    assert outputs["configuration"] == dedent(
        """
        from ...configuration_utils import PreTrainedConfig


        class OrbitConfig(PreTrainedConfig):
            model_type = "orbit"
        """
    )
    modeling = outputs["modeling"]
    assert modeling.startswith("from torch import nn\n")
    assert "class OrbitVisionMLP(nn.Module):" in modeling
    assert "self.mlp = OrbitVisionMLP(config)" in modeling


def test_r_par_5_a_generated_parent_is_read_as_its_generated_file(tmp_path):
    """The parent's generated file is used, its banner ignored; its modular is never read."""
    write_tree(
        tmp_path,
        {
            "zeta/modular_zeta.py": """
                class ZetaModel:
                    source = "modular"
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )
    zeta = convert(tmp_path / MODELS / "zeta/modular_zeta.py", root=tmp_path, format=False)
    assert isinstance(zeta, Converted)
    (generated,) = zeta.outputs
    generated.path.write_text(generated.text.replace('"modular"', '"generated"'), encoding="utf-8")
    text = run(tmp_path, {}).outputs[0].text
    assert text.count("automatically generated from") == 1
    assert "generated from src/transformers/models/orbit/modular_orbit.py." in text
    assert text.endswith('\nclass OrbitModel:\n    source = "generated"\n')


# --- 4. Class merging ------------------------------------------------------------------------


def test_r_cls_1_class_without_model_specific_base_is_emitted_as_written(tmp_path):
    """No renaming, no super processing, no base rewriting: decorators, comments, commas stay."""
    source = dedent(
        """
        from torch import nn

        from ..zeta.modeling_zeta import ZetaModel


        # zeta-style output
        @dataclass
        class OrbitOutput(nn.Module,):  # keep me
            kind = "zeta"

            def forward(self, x,):
                return nn.Module.forward(self, x)  # not rewritten
        """
    )
    body = convert_raw(tmp_path, {**ZETA_MLP, "orbit/modular_orbit.py": source})["modeling"]
    assert body == "from torch import nn\n\n\n" + source.split("ZetaModel\n\n\n", 1)[1]


def test_r_cls_15_order_inside_the_output_class(tmp_path):
    """Docstring, attributes (overrides in place, then new), parent methods, new methods."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": '''
                class ZetaMLP:
                    """Zeta MLP."""

                    a = 1
                    b = 2

                    def __init__(self, config):
                        """Build it."""
                        super().__init__()
                        self.fc = 1
                        self.post_init()

                    def forward(self, x):
                        return x
                ''',
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaMLP


                class OrbitMLP(ZetaMLP):
                    c = 3
                    a = 10

                    def extra(self):
                        return 0

                    def __init__(self, config):
                        self.before = 0
                        super().__init__(config)
                        self.fc = 2
                        self.after = 3
                """,
        },
    )["modeling"]
    assert nonblank(body) == dedent(
        '''
        class OrbitMLP:
            """Orbit MLP."""
            a = 10
            b = 2
            c = 3
            def __init__(self, config):
                """Build it."""
                super().__init__()
                self.before = 0
                self.fc = 2
                self.after = 3
                self.post_init()
            def forward(self, x):
                return x
            def extra(self):
                return 0
        '''
    )


# --- 5. Top level ----------------------------------------------------------------------------


def test_r_top_4_merged_class_closes_over_parent_classes_minus_modular_ones(tmp_path):
    """A merged class pulls parent classes transitively, but never a modular class's copy."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                class ZetaNorm:
                    pass


                class ZetaBlock:
                    norm = ZetaNorm


                class ZetaMLP:
                    pass


                class ZetaModel:
                    block = ZetaBlock
                    mlp = ZetaMLP
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitMLP:
                    mine = True


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )["modeling"]
    assert body.count("class ") == 4
    assert body.count("class OrbitMLP") == 1 and "mine = True" in body
    order = [body.index(f"class Orbit{name}") for name in ("MLP", "Norm", "Block", "Model")]
    assert order == sorted(order)


def test_r_top_12_leading_lines_and_trailing_comments_travel_with_nodes(tmp_path):
    """Each node keeps the blank/comment lines above it in its source, and its end comments."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                from ...utils import logging

                logger = logging.get_logger(__name__)

                _X = 1
                ZETA_SCALE = 2.0  # the scale


                # helper comment
                def zeta_helper(x):
                    return x * ZETA_SCALE


                class ZetaModel:
                    def f(self, x):
                        logger.info("x")
                        return zeta_helper(x)
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )["modeling"]
    assert (
        "logger = logging.get_logger(__name__)\n"
        "ORBIT_SCALE = 2.0  # the scale\n\n\n"
        "# helper comment\n"
        "def orbit_helper(x):\n"
    ) in body
    assert "_X" not in body


def test_r_top_15_only_guarded_imports_survive_at_module_level(tmp_path):
    """`if` blocks with imports are kept; guarded code is dropped; class-level `if` stays."""
    body = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                from typing import TYPE_CHECKING

                from ...utils import is_torch_available


                if TYPE_CHECKING:
                    from ...tokenization_utils import PreTrainedTokenizer

                if is_torch_available():
                    ORBIT_FLAG = 1


                class OrbitModel:
                    if is_torch_available():
                        flag = ORBIT_FLAG

                    def f(self, tokenizer: "PreTrainedTokenizer"):
                        return tokenizer
                """,
        },
    )["modeling"]
    assert "if TYPE_CHECKING:\n    from ...tokenization_utils import PreTrainedTokenizer\n" in body
    assert "ORBIT_FLAG = 1" not in body
    assert "    if is_torch_available():\n        flag = ORBIT_FLAG\n" in body


# --- 6. Imports ------------------------------------------------------------------------------


def test_r_imp_6_imports_are_copied_as_renamed_never_recomputed(tmp_path):
    """Relative depths stay, absolute from-imports are verbatim, siblings name the child."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                from zetalib.ops import fused

                from ...modeling_utils import PreTrainedModel
                from .configuration_zeta import ZetaConfig


                class ZetaModel(PreTrainedModel):
                    config: ZetaConfig
                    op = fused
                """,
            "zeta/configuration_zeta.py": "class ZetaConfig:\n    pass\n",
            "orbit/modular_orbit.py": """
                from ...activations import ACT2FN
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel):
                    act = ACT2FN
                """,
        },
    )["modeling"]
    assert nonblank(body).startswith(
        "from ...activations import ACT2FN\n"
        "from zetalib.ops import fused\n"
        "from ...modeling_utils import PreTrainedModel\n"
        "from .configuration_orbit import OrbitConfig\n"
    )
    assert "class OrbitModel(PreTrainedModel):\n    config: OrbitConfig\n    op = fused\n" in body


def test_r_imp_7_imports_inside_definitions_travel_unchanged(tmp_path):
    """Nested imports stay in their node, unfiltered; a nested model import registers a parent."""
    result = run(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                class OrbitModel:
                    def f(self):
                        import os
                        from ...utils import is_torch_tensor, unused_name
                        return os

                    def g(self):
                        from ..zeta.modeling_zeta import ZetaMLP
                        return ZetaMLP
                """,
        },
    )
    assert result.parents == (tmp_path / MODELS / "zeta/modeling_zeta.py",)
    assert bodies(result)["modeling"] == dedent(
        """
        class OrbitModel:
            def f(self):
                import os
                from ...utils import is_torch_tensor, unused_name
                return os

            def g(self):
                from ..zeta.modeling_zeta import ZetaMLP
                return ZetaMLP
        """
    )


def test_r_imp_8_guarded_blocks_follow_plain_imports_torch_before_torchvision(tmp_path):
    """Plain imports, other guarded blocks, then `is_torch_available`, `is_torchvision_...`."""
    body = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                import torchvision
                import torch
                from ...utils import is_vision_available

                if is_vision_available():
                    import PIL

                import numpy as np


                class OrbitFeatureExtractor:
                    def f(self):
                        return torch, torchvision, PIL, np
                """,
        },
    )["feature_extraction"]
    blocks = [
        "import numpy as np\n",
        "if is_vision_available():\n    import PIL\n",
        "if is_torch_available():\n    import torch\n",
        "if is_torchvision_available():\n    import torchvision\n",
        "class OrbitFeatureExtractor",
    ]
    assert all(block in body for block in blocks), body
    assert [body.index(b) for b in blocks] == sorted(body.index(b) for b in blocks)


# --- 7. Formatting ---------------------------------------------------------------------------


def test_r_fmt_4_lint_fixes_change_bytes(tmp_path):
    """`ruff check --fix` runs: isort (I001), unused imports (F401) and SIM910 change the text."""
    files = {
        "orbit/modular_orbit.py": """
            import torch
            import os
            from ...utils import is_scipy_available

            if is_scipy_available():
                from scipy import optimize


            class OrbitModel:
                def f(self):
                    d = {}
                    return d.get("k", None), os.sep, torch
            """,
    }
    raw = convert_raw(tmp_path / "raw", files)["modeling"]
    assert raw.startswith("import torch\nimport os\nfrom ...utils import is_scipy_available\n")
    assert 'd.get("k", None)' in raw
    formatted = convert_formatted(tmp_path / "fmt", files)["modeling"]
    assert formatted == dedent(
        """
        import os

        import torch


        class OrbitModel:
            def f(self):
                d = {}
                return d.get("k"), os.sep, torch
        """
    )


def test_r_fmt_5_magic_trailing_comma_is_not_normalised(tmp_path):
    """Two raw texts differing only in a trailing comma after the last base format differently."""

    def formatted(root: Path, bases: str) -> str:
        modular = f"class OrbitModel({bases}):\n    pass\n"
        return convert_formatted(root, {"orbit/modular_orbit.py": modular})["modeling"]

    assert formatted(tmp_path / "a", "First, Second") == (
        "class OrbitModel(First, Second):\n    pass\n"
    )
    assert formatted(tmp_path / "b", "First, Second,") == (
        "class OrbitModel(\n    First,\n    Second,\n):\n    pass\n"
    )


# --- 8. Errors and deliberate deviations -----------------------------------------------------


def test_r_err_8_prefix_collision_warns_and_converts(tmp_path):
    """Prefix `OrbitVision` collides with zeta's `ZetaVision…`: warn, rename with `Orbit`."""
    result = run(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                class ZetaNorm:
                    pass


                class ZetaModel:
                    norm = ZetaNorm


                class ZetaVisionModel:
                    pass
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitVisionModel(ZetaModel):
                    pass
                """,
        },
    )
    assert len(result.warnings) == 1 and "collide" in result.warnings[0]
    assert bodies(result)["modeling"] == dedent(
        """
        class OrbitNorm:
            pass


        class OrbitVisionModel:
            norm = OrbitNorm
        """
    )


def test_r_err_9_a_file_without_model_import_is_converted(tmp_path):
    """Deviation: the official tool refuses the run; modwatch converts such a file (level 0)."""
    result = run(tmp_path, {"orbit/modular_orbit.py": "class OrbitModel:\n    pass\n"})
    assert result.parents == ()
    assert bodies(result) == {"modeling": "class OrbitModel:\n    pass\n"}


def test_r_err_11_a_user_package_banner_names_its_own_path(tmp_path):
    """Deviation: no error outside `src/transformers/`; the banner names the package's path."""
    source = tmp_path / "src/zoo/models/orbit/modular_orbit.py"
    source.parent.mkdir(parents=True)
    source.write_text("class OrbitModel:\n    pass\n", encoding="utf-8")
    result = convert(source, root=tmp_path, format=False)
    assert isinstance(result, Converted)
    (output,) = result.outputs
    assert output.path == source.with_name("modeling_orbit.py")
    lines = output.text.splitlines()
    assert lines[1].endswith("generated from src/zoo/models/orbit/modular_orbit.py.")
    assert "modular_orbit.py file directly" in lines[4]


def test_r_err_12_the_command_line_takes_paths_not_model_names(tmp_path, monkeypatch):
    """Deviation: `modwatch convert` takes files or directories; a bare model name is an error."""
    write_tree(tmp_path, {**ZETA_MLP, "orbit/modular_orbit.py": "class OrbitModel:\n    pass\n"})
    monkeypatch.chdir(tmp_path)
    cfg = config.load(tmp_path)
    modular = tmp_path / MODELS / "orbit/modular_orbit.py"
    assert collect_sources([Path("src")], tmp_path, cfg) == [modular]
    assert collect_sources([modular], tmp_path, cfg) == [modular]
    with pytest.raises(DaemonError, match="orbit: no such file or directory"):
        collect_sources([Path("orbit")], tmp_path, cfg)
    with pytest.raises(DaemonError, match="not a modular file"):
        collect_sources([tmp_path / MODELS / "zeta/modeling_zeta.py"], tmp_path, cfg)


# --- 9. Quirks -------------------------------------------------------------------------------


def test_r_qrk_1_parent_constants_beat_modular_constants(tmp_path):
    """An ordinary constant redefined in the modular keeps the parent's value."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                ZETA_FORMATS = ("coco", "panoptic")


                class ZetaModel:
                    formats = ZETA_FORMATS
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel

                ORBIT_FORMATS = ("coco",)


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )["modeling"]
    assert 'ORBIT_FORMATS = ("coco", "panoptic")' in body and '("coco",)' not in body


def test_r_qrk_2_two_entry_table_upper_cases_before_a_non_letter(tmp_path):
    """Parent `nova` cased `NOVA`: `NOVA` + non-letter becomes `ORBIT`, `NOVAMLP` `OrbitMLP`."""
    (tmp_path / MODELS / "auto").mkdir(parents=True)
    (tmp_path / MODELS / "auto/auto_mappings.py").write_text(
        'CONFIG_MAPPING_NAMES = dict([("nova", "NOVAConfig")])\n', encoding="utf-8"
    )
    body = convert_raw(
        tmp_path,
        {
            "nova/modeling_nova.py": '''
                NOVA_SIZE = 2


                class NOVAMLP:
                    """The vision model from NOVA; see Nova paper."""

                    size = NOVA_SIZE
                ''',
            "orbit/modular_orbit.py": """
                from ..nova.modeling_nova import NOVAMLP


                class OrbitMLP(NOVAMLP):
                    pass
                """,
        },
    )["modeling"]
    assert body == dedent(
        '''
        ORBIT_SIZE = 2


        class OrbitMLP:
            """The vision model from ORBIT; see Orbit paper."""

            size = ORBIT_SIZE
        '''
    )


def test_r_qrk_3_renamed_parent_text_uses_the_round_tripped_prefix(tmp_path):
    """Prefix `Orbit_Vision_` renames parent text to `OrbitVision…`; the class keeps its name."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": '''
                class ZetaNorm:
                    """ZetaNorm is equivalent to LayerNorm."""
                ''',
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaNorm


                class Orbit_Vision_Norm(ZetaNorm):
                    pass
                """,
        },
    )["modeling"]
    assert body == (
        'class Orbit_Vision_Norm:\n    """OrbitVisionNorm is equivalent to LayerNorm."""\n'
    )


def test_r_qrk_4_every_parent_string_literal_is_renamed(tmp_path):
    """Not only docstrings: `base_model_prefix = "zeta"` and log messages follow the prefix."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                class ZetaModel:
                    base_model_prefix = "zeta"

                    def load(self):
                        print("loading zeta weights", "ZETA")
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitVisionModel(ZetaModel):
                    pass
                """,
        },
    )["modeling"]
    assert 'base_model_prefix = "orbit_vision"' in body
    assert 'print("loading orbit_vision weights", "ORBIT_VISION")' in body


def test_r_qrk_5_lost_comments(tmp_path):
    """Comments above a merged class, inside import lists, inside `__all__`, `# Copied from`."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                from torch import nn


                class ZetaModel(nn.Module):
                    # Copied from elsewhere.Model with Other->Zeta
                    def forward(self, x):
                        return x
                """,
            "orbit/modular_orbit.py": """
                from torch import (
                    nn,  # the nn module
                )

                from ..zeta.modeling_zeta import ZetaModel


                # about orbit
                class OrbitModel(ZetaModel):
                    pass


                __all__ = [
                    "OrbitModel",  # public
                ]
                """,
        },
    )["modeling"]
    for comment in ("the nn module", "about orbit", "Copied from", "public"):
        assert comment not in body
    assert "from torch import (\n    nn)" in body or "from torch import (\n    nn\n)" in body
    assert body.endswith('__all__ = ["OrbitModel"]\n')


def test_r_qrk_6_modular_trailing_commas_become_magic(tmp_path):
    """An appended base keeps its modular comma, so ruff explodes the base list."""
    body = convert_formatted(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaLayer


                class OrbitLayer(CacheMixin, ZetaLayer):
                    pass
                """,
        },
    )["modeling"]
    assert "class OrbitLayer(\n    nn.Module,\n    CacheMixin,\n):\n" in body


def test_r_qrk_7_attribute_names_create_dependencies_strings_do_not(tmp_path):
    """`self.scale(x)` pulls a top-level `def scale`; a string annotation pulls nothing."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                def scale(x):
                    return x


                class ZetaThing:
                    pass


                class ZetaMLP:
                    def forward(self, x) -> "ZetaThing":
                        return self.scale(x)
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaMLP


                class OrbitMLP(ZetaMLP):
                    pass
                """,
        },
    )["modeling"]
    assert body.startswith("def scale(x):\n")
    assert "class OrbitThing" not in body and '-> "OrbitThing":' in body


def test_r_qrk_8_explicit_parent_calls_are_rewritten_only_for_final_bases(tmp_path):
    """`nn.Module.f(self, …)` (a final base) becomes `super().f(…)`; `ZetaLayer.f` stays."""
    body = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaLayer


                class OrbitLayer(ZetaLayer):
                    def forward(self, x):
                        a = nn.Module.forward(self, x)
                        b = ZetaLayer.forward(self, x)
                        return a, b
                """,
        },
    )["modeling"]
    assert "a = super().forward(x)\n" in body
    assert "b = ZetaLayer.forward(self, x)\n" in body


def test_r_qrk_9_raise_based_removal_is_layout_sensitive(tmp_path):
    """A decorated or first-in-body raiser merges; one with one blank line above is removed."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/configuration_zeta.py": """
                class ZetaConfig:
                    def first(self):
                        return 1

                    @property
                    def codebooks(self):
                        return 2

                    def validate(self):
                        return 3
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.configuration_zeta import ZetaConfig


                class OrbitConfig(ZetaConfig):
                    def first(self):
                        raise AttributeError("no")

                    @property
                    def codebooks(self):
                        raise AttributeError("no")

                    def validate(self):
                        raise AttributeError("no")
                """,
        },
    )["configuration"]
    assert "def first(self):\n        raise AttributeError" in body
    assert "def codebooks(self):\n        raise AttributeError" in body
    assert "validate" not in body


def test_r_qrk_10_del_records_apply_to_every_method_of_the_class(tmp_path):
    """`del self.drop` in `__init__` also drops `self.drop = …` from the inlined `reset`."""
    body = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaMLP


                class OrbitMLP(ZetaMLP):
                    def __init__(self, config):
                        super().__init__(config)
                        del self.drop

                    def reset(self):
                        super().reset()
                """,
        },
    )["modeling"]
    assert "self.drop" not in body
    assert "def reset(self):\n        self.fc = nn.Linear(2, 2)\n" in body


def test_r_qrk_11_appended_bases_keep_modular_source_order(tmp_path):
    """Deterministic where the official tool is hash-ordered: extra bases in source order."""
    body = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaLayer


                class OrbitLayer(ZetaLayer, GammaMixin, AlphaMixin, DeltaMixin, BetaMixin):
                    pass
                """,
        },
    )["modeling"]
    assert "class OrbitLayer(nn.Module, GammaMixin, AlphaMixin, DeltaMixin, BetaMixin):" in body


def test_r_qrk_12_dropped_top_level_statements(tmp_path):
    """Module docstring, expressions, annotated constants and `__future__` imports vanish."""
    body = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": '''
                """Orbit model."""

                from __future__ import annotations

                import torch

                torch.fx.wrap("orbit_fn")
                LOG_LEVEL: int = 3


                class OrbitModel:
                    level = LOG_LEVEL
                ''',
        },
    )["modeling"]
    assert body.lstrip("\n") == "class OrbitModel:\n    level = LOG_LEVEL\n"


def test_r_qrk_13_single_quoted_class_docstring_is_dropped_on_merge(tmp_path):
    """A `'''` docstring is not docstring-like: the merged class takes the parent's."""
    body = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": '''
                class ZetaModel:
                    """Zeta doc."""

                    x = 1
                ''',
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel):
                    '''Lost doc.'''
                """,
        },
    )["modeling"]
    assert body == 'class OrbitModel:\n    """Orbit doc."""\n\n    x = 1\n'


def test_r_qrk_14_pinned_variables_jump_to_the_top(tmp_path):
    """`logger`, `_CHECKPOINT_FOR_DOC`, `_CONFIG_FOR_DOC` open the body, in that order."""
    body = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                from ...utils import logging

                ORBIT_K = 2
                _CONFIG_FOR_DOC = "OrbitConfig"
                _CHECKPOINT_FOR_DOC = "orbit/base"
                logger = logging.get_logger(__name__)


                class OrbitModel:
                    def f(self):
                        logger.info((ORBIT_K, _CHECKPOINT_FOR_DOC, _CONFIG_FOR_DOC))
                """,
        },
    )["modeling"]
    names = ("logger = ", "_CHECKPOINT_FOR_DOC = ", "_CONFIG_FOR_DOC = ", "ORBIT_K = ", "class ")
    order = [body.index(name) for name in names]
    assert order == sorted(order)


def test_r_qrk_15_one_parent_class_under_two_names(tmp_path):
    """`OrbitBlock(ZetaMLP)` plus a class using ZetaMLP: `OrbitMLP` and `OrbitBlock` both appear."""
    body = convert_raw(
        tmp_path,
        {
            **ZETA_MLP,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaMLP, ZetaModel


                class OrbitBlock(ZetaMLP):
                    pass


                class OrbitZetaModel(ZetaModel):
                    pass
                """,
        },
    )["modeling"]
    assert "class OrbitBlock(nn.Module):" in body and "class OrbitMLP(nn.Module):" in body
    assert "self.mlp = OrbitMLP(config)" in body


def test_r_qrk_16_elif_chains_in_guarded_imports_are_copied_verbatim(tmp_path):
    """The whole `if … elif …` is kept, including the unused branch's imports."""
    body = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                from ...utils import is_torchvision_available, is_torchvision_v2_available

                if is_torchvision_v2_available():
                    from torchvision.transforms.v2 import functional as F
                elif is_torchvision_available():
                    import torchvision  # unused
                    from torchvision.transforms import functional as F


                class OrbitModel:
                    resize = F.resize
                """,
        },
    )["modeling"]
    assert (
        "if is_torchvision_v2_available():\n"
        "    from torchvision.transforms.v2 import functional as F\n"
        "elif is_torchvision_available():\n"
        "    import torchvision  # unused\n"
        "    from torchvision.transforms import functional as F\n"
    ) in body


def test_r_qrk_17_duplicate_takes_last_content_and_first_place(tmp_path):
    """A name defined twice is emitted once, at the first place, with the last definition."""
    body = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                class OrbitPreTrainedModel:
                    first = 1


                class OrbitEncoder:
                    pass


                class OrbitPreTrainedModel:
                    second = 2
                """,
        },
    )["modeling"]
    assert body.lstrip("\n") == dedent(
        """
        class OrbitPreTrainedModel:
            second = 2


        class OrbitEncoder:
            pass
        """
    )


def test_r_qrk_18_children_read_whatever_parent_output_is_on_disk(tmp_path):
    """Against a stale parent output the child differs from a run in level order."""
    files = {
        "zeta/modular_zeta.py": 'class ZetaModel:\n    version = "fresh"\n',
        "zeta/modeling_zeta.py": 'class ZetaModel:\n    version = "stale"\n',
        "orbit/modular_orbit.py": """
            from ..zeta.modeling_zeta import ZetaModel


            class OrbitModel(ZetaModel):
                pass
            """,
    }
    assert 'version = "stale"' in convert_raw(tmp_path, files)["modeling"]
    zeta = convert(tmp_path / MODELS / "zeta/modular_zeta.py", root=tmp_path, format=False)
    assert isinstance(zeta, Converted)
    for output in zeta.outputs:
        output.path.write_text(output.text, encoding="utf-8")
    assert 'version = "fresh"' in bodies(run(tmp_path, {}))["modeling"]
