"""End-to-end conversions of invented zeta/orbit/nova models (R-IO-*, R-TOP-*, R-ERR-*)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daemon.converter import Converted, Failed, Skipped, convert

MODELS = Path("src", "transformers", "models")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "basic"


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Write dedented ``files`` (paths relative to ``src/transformers/models``) under ``root``."""
    for relative, text in files.items():
        path = root / MODELS / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def convert_raw(root: Path, files: dict[str, str], modular: str = "orbit/modular_orbit.py"):
    """Convert without ruff; return ``{kind: body}`` with the 6-line banner stripped."""
    write_tree(root, files)
    result = convert(root / MODELS / modular, root=root, format=False)
    assert isinstance(result, Converted), result
    return {o.kind: o.text.split("\n", 6)[6] for o in result.outputs}


def convert_failed(root: Path, files: dict[str, str]) -> Failed:
    write_tree(root, files)
    result = convert(root / MODELS / "orbit/modular_orbit.py", root=root, format=False)
    assert isinstance(result, Failed), result
    return result


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


ZETA = {
    "zeta/modeling_zeta.py": """
        import torch
        from torch import nn

        from .configuration_zeta import ZetaConfig

        logger = None

        ZETA_SCALE = 2.0


        def zeta_helper(x):
            return x * ZETA_SCALE


        def scale_up(x):
            return zeta_helper(x) + 1


        class ZetaMLP(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.fc = nn.Linear(1, 1)

            def forward(self, x):
                return zeta_helper(self.fc(x))


        class ZetaModel(nn.Module):
            def __init__(self, config: ZetaConfig):
                super().__init__()
                self.mlp = ZetaMLP(config)

            def forward(self, x):
                return self.mlp(x)
        """,
    "zeta/configuration_zeta.py": """
        class ZetaConfig:
            model_type = "zeta"
        """,
}


def test_r_io_2_one_output_per_file_type(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.configuration_zeta import ZetaConfig
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitConfig(ZetaConfig):
                    pass


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )
    assert sorted(outputs) == ["configuration", "modeling"]


def test_r_io_3_routing_strips_the_cased_name(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit_video/modular_orbit_video.py": """
                class OrbitVideoProcessor:
                    pass


                class OrbitVideoVideoProcessor:
                    pass


                class OrbitVideoTokenizerFast:
                    pass
                """,
        },
        modular="orbit_video/modular_orbit_video.py",
    )
    assert "class OrbitVideoProcessor:" in outputs["processing"]
    assert "class OrbitVideoVideoProcessor:" in outputs["video_processing"]
    assert "class OrbitVideoTokenizerFast:" in outputs["modeling"]


def test_r_io_5_header_is_copied_and_module_docstring_dropped(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": '''
                # Copyright 2031 Orbit authors


                """Orbit model."""
                class OrbitModel:
                    pass
                ''',
        },
    )
    assert (
        outputs["modeling"] == "# Copyright 2031 Orbit authors\n\n\nclass OrbitModel:\n    pass\n"
    )


def test_r_io_6_output_ends_with_one_newline_and_no_cr(tmp_path):
    write_tree(tmp_path, {"orbit/modular_orbit.py": "class OrbitModel:\n    pass\n"})
    result = convert(tmp_path / MODELS / "orbit/modular_orbit.py", root=tmp_path, format=False)
    assert isinstance(result, Converted)
    (output,) = result.outputs
    assert output.text.endswith("pass\n") and "\r" not in output.text
    assert output.text.startswith("#                \N{POLICE CARS REVOLVING LIGHT}")


def test_r_cls_8_pass_class_gets_parent_body_and_dependencies(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )
    body = outputs["modeling"]
    assert body.index("ORBIT_SCALE = 2.0") < body.index("def orbit_helper")
    assert body.index("def orbit_helper") < body.index("class OrbitMLP")
    assert body.index("class OrbitMLP") < body.index("class OrbitModel(nn.Module)")
    assert "from .configuration_orbit import OrbitConfig" in body
    assert "import torch\n" not in body  # unused import dropped (R-IMP-2)
    assert "from torch import nn" in body


def test_r_top_2_unused_modular_function_is_dropped(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                def orbit_debug():
                    return 1


                class OrbitModel:
                    pass
                """,
        },
    )
    assert "orbit_debug" not in outputs["modeling"]


def test_r_top_7_class_of_another_file_type_is_imported(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                class OrbitTextConfig:
                    pass


                class OrbitModel:
                    config_class = OrbitTextConfig
                """,
        },
    )
    assert "from .configuration_orbit import OrbitTextConfig" in outputs["modeling"]
    assert "class OrbitTextConfig" not in outputs["modeling"]


def test_r_top_8_helper_goes_before_first_user_and_classes_keep_order(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                ORBIT_K = 2


                def orbit_fn(x):
                    return x * ORBIT_K


                class OrbitThing:
                    def f(self):
                        return OrbitOther


                class OrbitOther:
                    def g(self):
                        return orbit_fn(1)
                """,
        },
    )
    body = outputs["modeling"]
    names = ("class OrbitThing", "ORBIT_K", "def orbit_fn", "class OrbitOther")
    order = [body.index(name) for name in names]
    # OrbitOther is placed before OrbitThing as its dependency, then moves to its own later
    # slot, after its helpers, when it is processed itself (R-TOP-4, no class closure).
    assert order == sorted(order)


def test_r_top_11_logger_is_pinned_first(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                from ...utils import logging

                ORBIT_K = 2
                logger = logging.get_logger(__name__)


                class OrbitModel:
                    def f(self):
                        logger.info(ORBIT_K)
                """,
        },
    )
    body = outputs["modeling"]
    assert body.index("logger = ") < body.index("ORBIT_K = 2")


def test_r_top_13_getattr_goes_last_without_final_comma(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                from ...utils import deprecate_attr


                class OrbitProcessorKwargs:
                    pass


                __getattr__ = deprecate_attr(
                    __name__,
                    rename={"OrbitProcessorKwargs": (1, "9.0")},
                )
                __all__ = ["OrbitProcessorKwargs"]
                """,
        },
    )
    body = outputs["processing"]
    assert body.endswith(
        "__getattr__ = deprecate_attr(\n"
        "    __name__,\n"
        '    rename={"OrbitProcessorKwargs": (1, "9.0")})\n'
        '__all__ = ["OrbitProcessorKwargs"]\n'
    )
    assert "from ...utils import deprecate_attr" in body


def test_r_top_14_all_is_split_per_file_type(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                class OrbitConfig:
                    pass


                class OrbitModel:
                    pass


                __all__ = ["OrbitConfig", "OrbitModel",  # noqa
                           "OrbitProcessor"]
                """,
        },
    )
    assert outputs["configuration"].endswith('\n__all__ = ["OrbitConfig"]\n')
    assert outputs["modeling"].endswith('\n__all__ = ["OrbitModel"]\n')
    # The statement keeps its own leading lines; ruff removes them later.
    assert outputs["processing"] == '\n\n__all__ = ["OrbitProcessor"]\n'


def test_r_par_6_imported_parent_function_is_pulled(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import scale_up


                class OrbitThing:
                    def f(self, x):
                        return scale_up(x)
                """,
        },
    )
    body = outputs["modeling"]
    # scale_up and its direct dependency orbit_helper are pulled, in parent order (R-TOP-10);
    # ORBIT_SCALE, two levels down, is not (only direct dependencies join the modular).
    assert (
        body.index("def orbit_helper") < body.index("def scale_up") < body.index("class OrbitThing")
    )
    assert "ORBIT_SCALE" not in body.replace("* ORBIT_SCALE", "")


def test_r_par_7_parent_constant_beats_modular_but_checkpoint_does_not(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "zeta/modeling_zeta.py": """
                ZETA_SCALE = 2.0
                _CHECKPOINT_FOR_DOC = "z/b"


                class ZetaModel:
                    a = ZETA_SCALE
                    b = _CHECKPOINT_FOR_DOC
                """,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel

                ORBIT_SCALE = 3.0
                _CHECKPOINT_FOR_DOC = "o/b"


                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )
    body = outputs["modeling"]
    assert "ORBIT_SCALE = 2.0" in body and '_CHECKPOINT_FOR_DOC = "o/b"' in body


def test_r_name_7_prefix_renames_the_whole_parent(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitVisionModel(ZetaModel):
                    pass
                """,
        },
    )
    body = outputs["modeling"]
    assert "ORBIT_VISION_SCALE" in body and "class OrbitVisionMLP" in body
    # The sibling import keeps the model name, the imported name the prefix (R-NAME-6).
    assert "from .configuration_orbit import OrbitVisionConfig" in body


def test_r_imp_3_future_import_is_dropped(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                from __future__ import annotations


                class OrbitModel:
                    pass
                """,
        },
    )
    assert "__future__" not in outputs["modeling"]


def test_r_imp_5_kwargs_class_is_copied_into_the_pil_file(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            "orbit/modular_orbit.py": """
                class OrbitImageProcessorKwargs:
                    pass


                class OrbitImageProcessor:
                    kwargs = OrbitImageProcessorKwargs


                class OrbitImageProcessorPil:
                    kwargs = OrbitImageProcessorKwargs
                """,
        },
    )
    pil = outputs["image_processing_pil"]
    assert "import" not in pil
    assert pil.index("class OrbitImageProcessorKwargs") < pil.index("class OrbitImageProcessorPil")


def test_r_err_1_two_model_specific_bases(tmp_path):
    failed = convert_failed(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaMLP, ZetaModel


                class OrbitModel(ZetaModel, ZetaMLP):
                    pass
                """,
        },
    )
    assert failed.line == 4 and "ZetaModel, ZetaMLP" in failed.message


def test_r_err_2_config_from_modeling_file(tmp_path):
    failed = convert_failed(
        tmp_path,
        {**ZETA, "orbit/modular_orbit.py": "from ..zeta.modeling_zeta import ZetaConfig\n"},
    )
    assert failed.line == 1 and "ZetaConfig" in failed.message


def test_r_err_3_from_transformers_import(tmp_path):
    failed = convert_failed(
        tmp_path, {"orbit/modular_orbit.py": "import os\nfrom transformers import X\n"}
    )
    assert failed.line == 2 and "from transformers import" in failed.message


def test_r_err_4_missing_parent_file(tmp_path):
    failed = convert_failed(
        tmp_path,
        {"orbit/modular_orbit.py": "from ..nowhere.modeling_nowhere import NowhereModel\n"},
    )
    assert failed.line == 1 and "transformers.models.nowhere.modeling_nowhere" in failed.message


def test_r_err_5_base_that_is_not_a_dotted_name(tmp_path):
    failed = convert_failed(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel, Generic[T]):
                    pass
                """,
        },
    )
    assert failed.line == 4 and "Generic[T]" in failed.message


def test_r_err_6_no_inherit_decorator_with_others(tmp_path):
    failed = convert_failed(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                @no_inherit_decorator
                @other
                class OrbitModel(ZetaModel):
                    pass
                """,
        },
    )
    assert failed.line == 4 and "no_inherit_decorator" in failed.message


def test_r_err_7_super_call_without_parent_method(tmp_path):
    failed = convert_failed(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaModel


                class OrbitModel(ZetaModel):
                    def reset(self):
                        return super().reset()
                """,
        },
    )
    assert failed.line == 6 and "super().reset()" in failed.message


def test_r_err_7_renamed_base_missing_from_parent(tmp_path):
    failed = convert_failed(
        tmp_path,
        {
            **ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaGhost


                class OrbitGhost(ZetaGhost):
                    pass
                """,
        },
    )
    assert failed.line == 4 and "OrbitGhost" in failed.message


def test_syntax_error_becomes_failed_with_line(tmp_path):
    failed = convert_failed(tmp_path, {"orbit/modular_orbit.py": "class OrbitModel(:\n    pass\n"})
    assert failed.line == 1


def test_unexpected_exception_becomes_failed(tmp_path, monkeypatch):
    from daemon.converter import assemble

    def explode(self):
        raise KeyError("boom")

    monkeypatch.setattr(assemble.Conversion, "convert", explode)
    failed = convert_failed(tmp_path, {"orbit/modular_orbit.py": "class OrbitModel:\n    pass\n"})
    assert failed.message == "KeyError: 'boom'"


def test_other_file_names_are_skipped(tmp_path):
    path = tmp_path / "modeling_orbit.py"
    path.write_text("x = 1\n", encoding="utf-8")
    assert isinstance(convert(path, root=tmp_path), Skipped)


def test_overlay_text_is_read_before_disk(tmp_path):
    write_tree(tmp_path, {**ZETA, "orbit/modular_orbit.py": "class OrbitModel:\n    pass\n"})
    parent = tmp_path / MODELS / "zeta/modeling_zeta.py"
    modular = tmp_path / MODELS / "orbit/modular_orbit.py"
    overlay = {
        modular: "from ..zeta.modeling_zeta import ZetaModel\n\n\n"
        "class OrbitModel(ZetaModel):\n    pass\n",
        parent: "class ZetaModel:\n    fresh = 1\n",
    }
    result = convert(modular, root=tmp_path, overlay=overlay, format=False)
    assert isinstance(result, Converted)
    assert result.parents == (parent,)
    assert "fresh = 1" in result.outputs[0].text


def test_formatting_runs_ruff_with_the_repository_config(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 119\n", encoding="utf-8")
    write_tree(tmp_path, {"orbit/modular_orbit.py": "class OrbitModel :\n  x=1\n"})
    result = convert(tmp_path / MODELS / "orbit/modular_orbit.py", root=tmp_path)
    assert isinstance(result, Converted)
    assert result.outputs[0].text.endswith("\nclass OrbitModel:\n    x = 1\n")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy = tmp_path / "basic"
    shutil.copytree(EXAMPLE, copy)
    return copy


def test_bundled_example_converts_compiles_and_runs_without_zeta(example: Path):
    source = example / "src/zoo/models/orbit/modular_orbit.py"
    result = convert(source, root=example)
    assert isinstance(result, Converted), result
    assert {o.path.name for o in result.outputs} == {"modeling_orbit.py", "configuration_orbit.py"}
    for output in result.outputs:
        compile(output.text, str(output.path), "exec")
        output.path.write_text(output.text, encoding="utf-8")
    source.unlink()
    shutil.rmtree(example / "src/zoo/models/zeta")
    script = dedent(
        """
        from zoo.models.orbit.configuration_orbit import OrbitConfig
        from zoo.models.orbit.modeling_orbit import OrbitModel, OrbitLayer

        config = OrbitConfig(num_layers=3)
        model = OrbitModel(config)
        assert config.model_type == "orbit" and config.weight == 0.5
        assert model.bias == 1.0 and len(model.layers) == 3
        assert model.forward(2.0) == -2.0
        assert abs(OrbitLayer(config).forward(1.0) - 0.9242343145200195) < 1e-12
        print(model.describe())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=example,
        env={"PYTHONPATH": str(example / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "zeta model with 3 layers\n"  # f-string text is not renamed (R-NAME-6)


NOVA_AND_ZETA = {
    "zeta/modeling_zeta.py": """
        def rotate(x):
            return "first version"


        class ZetaAttention:
            def f(self, x):
                return rotate(x), attention_forward(x)
        """,
    "nova/modeling_nova.py": """
        def expand(x):
            return x


        def rotate(x):
            return "second version", expand(x)
        """,
}


def test_r_par_6_imported_function_replaces_other_parents_version(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            **NOVA_AND_ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaAttention
                from ..nova.modeling_nova import rotate


                class OrbitAttention(ZetaAttention):
                    pass
                """,
        },
    )
    body = outputs["modeling"]
    assert "second version" in body and "first version" not in body
    # rotate keeps zeta's position; expand has none there, so it sorts after (R-TOP-9 step 3).
    assert body.index("def rotate") < body.index("def expand") < body.index("class OrbitAttention")


def test_r_par_6_injected_names_do_not_join_dependencies_computed_before(tmp_path):
    outputs = convert_raw(
        tmp_path,
        {
            **NOVA_AND_ZETA,
            "orbit/modular_orbit.py": """
                from ..zeta.modeling_zeta import ZetaAttention
                from ..nova.modeling_nova import expand


                def attention_forward(x):
                    return expand(x)


                class OrbitAttention(ZetaAttention):
                    pass
                """,
        },
    )
    # zeta's map was computed when the modular overlay went in, before nova's `expand` was
    # injected, so the modular attention_forward there does not pull `expand` (evolla).
    body = outputs["modeling"]
    assert "def attention_forward" in body and "def expand" not in body
