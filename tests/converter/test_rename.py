"""Renaming a parent tree (R-NAME-6) and one class's docs (R-NAME-10), before/after."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from daemon.converter.naming import CasingTable, rename_table
from daemon.converter.rename import (
    rename_docs,
    rename_docs_reference,
    rename_module,
    rename_module_reference,
)

CASING = CasingTable((("zeta", "ZetaConfig"),))


def renamed(before: str, *, new: str = "orbit", model_name: str = "orbit") -> str:
    table = rename_table("zeta", new, CASING)
    module = cst.parse_module(textwrap.dedent(before))
    return rename_module(module, table, model_name=model_name, target=new).code


def test_r_name_6_identifiers_attributes_keywords_and_parameters():
    before = """\
        class ZetaModel(ZetaPreTrainedModel):
            def forward(self, zeta_states, *, zeta_mask=None):
                return self.zeta_layer(zeta_states, zeta_mask=zeta_mask)
        """
    after = """\
        class OrbitModel(OrbitPreTrainedModel):
            def forward(self, orbit_states, *, orbit_mask=None):
                return self.orbit_layer(orbit_states, orbit_mask=orbit_mask)
        """

    assert renamed(before) == textwrap.dedent(after)


def test_r_name_6_strings_docstrings_and_concatenated_pieces():
    before = '''\
        def zeta_fn():
            """Run the zeta."""
            return ("zeta " 'Zeta', b"ZETA")
        '''
    after = '''\
        def orbit_fn():
            """Run the orbit."""
            return ("orbit " 'Orbit', b"ORBIT")
        '''

    assert renamed(before) == textwrap.dedent(after)


def test_r_name_6_fstring_text_kept_but_expressions_renamed():
    before = 'message = f"zeta {zeta_value!r:>zeta} Zeta"\n'
    after = 'message = f"zeta {orbit_value!r:>zeta} Zeta"\n'

    assert renamed(before) == after


def test_r_name_6_comments_everywhere():
    before = """\
        # Zeta header
        ZETA_EPS = (  # zeta eps
            # the zeta default
            1e-6
        )
        """
    after = """\
        # Orbit header
        ORBIT_EPS = (  # orbit eps
            # the orbit default
            1e-6
        )
        """

    assert renamed(before) == textwrap.dedent(after)


def test_r_name_6_absolute_from_import_restored_but_import_renamed():
    before = """\
        from transformers.models.zeta import ZetaThing, zeta_fn  # zeta
        import transformers.models.zeta.modeling_zeta as zeta_module
        from ...zeta_utils import zeta_helper
        """
    after = """\
        from transformers.models.zeta import ZetaThing, zeta_fn  # orbit
        import transformers.models.orbit.modeling_orbit as orbit_module
        from ...orbit_utils import orbit_helper
        """

    assert renamed(before) == textwrap.dedent(after)


def test_r_name_6_sibling_module_goes_back_to_the_model_name_with_a_prefix():
    before = """\
        from .configuration_zeta import ZetaConfig
        from .modeling_zeta_extra import ZetaExtra
        from ..zeta.image_processing_zeta import ZetaImageProcessor
        from . import zeta_utils
        """
    after = """\
        from .configuration_orbit import OrbitVisionConfig
        from .modeling_orbit_vision_extra import OrbitVisionExtra
        from ..orbit_vision.image_processing_orbit_vision import OrbitVisionImageProcessor
        from . import orbit_vision_utils
        """

    assert renamed(before, new="orbit_vision") == textwrap.dedent(after)


def test_r_name_6_sibling_module_fix_accepts_a_dashed_target():
    table = rename_table("zeta", "orbit-lens", CASING)
    module = cst.parse_module("from .configuration_zeta import ZetaConfig\n")

    result = rename_module(module, table, model_name="orbit", target="orbit-lens")

    assert result.code == "from .configuration_orbit import OrbitLensConfig\n"


def test_r_name_6_sibling_module_kept_when_target_is_the_model_name():
    before = "from .configuration_zeta import ZetaConfig\n"

    assert renamed(before) == "from .configuration_orbit import OrbitConfig\n"


def test_r_name_6_copied_from_comments_leave_blank_lines():
    before = """\
        # Copied from transformers.models.llama.modeling_llama.rotate_half
        def rotate_half(x):
            return x  # Copied from somewhere


        @dataclass
        # Copied from transformers.models.llama.modeling_llama.LlamaOutput with Llama->Zeta
        class ZetaOutput:
            pass
        """
    after = """\

        def rotate_half(x):
            return x


        @dataclass

        class OrbitOutput:
            pass
        """

    assert renamed(before) == textwrap.dedent(after)


def test_r_name_6_copied_from_strings_are_deleted_keeping_comments():
    before = '''\
        class ZetaBlock:
            # the zeta block
            """# Copied from transformers.models.llama.LlamaBlock"""
            size = 2

            def reset(self):
                "# Copied from transformers.models.llama.LlamaBlock.reset"

            def clear(self):
                # clear the zeta
                "# Copied from transformers.models.llama.LlamaBlock.clear"

            def keep(self):
                "# Copied from transformers.models.llama.LlamaBlock.keep"; return 1

        ZETA_NOTE = ("# Copied from transformers.models.llama", r"zeta")
        '''
    after = """\
        class OrbitBlock:
            # the orbit block
            size = 2

            def reset(self):
                pass

            def clear(self):
                pass
                # clear the orbit

            def keep(self):
                return 1

        ORBIT_NOTE = ("", r"orbit")
        """

    assert renamed(before) == textwrap.dedent(after)


def test_r_name_10_class_docs_renamed_but_identifiers_kept():
    before = '''\
        import logging

        # the orbit model
        class OrbitModel(OrbitPreTrainedModel):
            """The Orbit model."""

            def forward(self, orbit_x):
                # run orbit  # Copied from transformers.models.llama.LlamaModel.forward
                logger.info("running orbit")
                return orbit_x
        '''
    after = '''\

        # the orbit_text model
        class OrbitModel(OrbitPreTrainedModel):
            """The OrbitText model."""

            def forward(self, orbit_x):

                logger.info("running orbit_text")
                return orbit_x
        '''
    node = cst.parse_module(textwrap.dedent(before)).body[1]
    assert isinstance(node, cst.ClassDef)

    result = rename_docs(node, rename_table("orbit", "orbit_text", CASING))

    assert cst.Module(body=[result]).code == textwrap.dedent(after)


# Everything the renaming touches, for the walk against libcst's transformer.
EVERYTHING = '''\
# Zeta header  # Copied from transformers.models.llama
"""Zeta module."""  # Copied from x
import torch
from transformers.models.zeta import ZetaThing  # zeta kept
from .configuration_zeta import ZetaConfig
from .modeling_orbit import OrbitLayer
from ..zeta import (
    zeta_fn,  # Zeta comment in an import
)

"""# Copied from transformers.models.llama.modeling_llama.rotate_half"""
ZETA_SIZE = {"zeta": 1, 'Zeta': ZETA_DEFAULT}


def rotate_half(x):
    return torch.cat((-x, x), dim=-1)


class ZetaModel(ZetaPreTrainedModel):
    """The ZetaModel."""

    config: ZetaConfig  # Copied from transformers.Zeta

    # Copied from transformers.models.llama.LlamaModel.forward
    def forward(self, zeta_x, *, zeta_mask=None):
        """# Copied from somewhere"""
        from transformers.zeta import zeta_helper  # absolute: kept

        message = f"zeta {zeta_x!r:>zeta} Zeta"
        return self.zeta_layer(zeta_x, zeta_mask=zeta_mask), message, b"ZETA", rb"zeta"


def untouched(a, b):
    return a + b  # nothing to rename
'''


@pytest.mark.parametrize(
    ("new", "model_name"), [("orbit", "orbit"), ("zeta", "orbit"), ("orbit_lens", "orbit")]
)
def test_r_name_6_the_walk_renames_as_the_libcst_transformer_does(new, model_name):
    module = cst.parse_module(EVERYTHING)
    table = rename_table("zeta", new, CASING)

    fast = rename_module(module, table, model_name=model_name, target=new)
    reference = rename_module_reference(module, table, model_name=model_name, target=new)

    assert fast.code == reference.code
    assert fast.code != module.code


def test_r_name_6_statements_with_nothing_to_rename_are_the_same_objects():
    module = cst.parse_module(EVERYTHING)
    table = rename_table("zeta", "orbit", CASING)

    renamed = rename_module(module, table, model_name="orbit", target="orbit")

    kept = {id(statement) for statement in module.body}
    by_name = {
        s.name.value: s for s in renamed.body if isinstance(s, cst.FunctionDef | cst.ClassDef)
    }
    assert id(by_name["untouched"]) in kept
    assert id(by_name["rotate_half"]) in kept
    assert id(by_name["OrbitModel"]) not in kept


def test_r_name_10_the_docs_walk_matches_the_libcst_transformer():
    module = cst.parse_module(EVERYTHING)
    node = next(s for s in module.body if isinstance(s, cst.ClassDef))
    table = rename_table("zeta", "orbit_text", CASING)

    fast = cst.Module(body=[rename_docs(node, table)]).code
    reference = cst.Module(body=[rename_docs_reference(node, table)]).code

    assert fast == reference
    assert "ZetaModel(ZetaPreTrainedModel)" in fast  # identifiers are not docs


def test_r_name_6_nested_statements_with_nothing_to_rename_are_the_same_objects():
    module = cst.parse_module(
        textwrap.dedent(
            """\
            class ZetaModel:
                def plain(self, x):
                    y = x + 1
                    return y

                def forward(self, x):
                    y = x + 1
                    return self.zeta(y)
            """
        )
    )
    table = rename_table("zeta", "orbit", CASING)
    before = module.body[0]

    after = rename_module(module, table, model_name="orbit", target="orbit").body[0]

    assert isinstance(before, cst.ClassDef) and isinstance(after, cst.ClassDef)
    assert after.name.value == "OrbitModel"
    plain, forward = after.body.body
    old_plain, old_forward = before.body.body
    assert isinstance(forward, cst.FunctionDef) and isinstance(old_forward, cst.FunctionDef)
    assert plain is old_plain  # not walked: nothing in it to rename
    assert forward is not old_forward
    assert forward.body.body[0] is old_forward.body.body[0]  # ``y = x + 1``
    assert cst.Module(body=[forward]).code.endswith("return self.orbit(y)\n")


@pytest.mark.parametrize(
    "line",
    [
        "x = '\u017figma'  # a long s: re's IGNORECASE matches it to s, str.lower() keeps it",
        "\u017figma_size = 1  # an identifier with one",
        "x = 'K\u212a'  # a Kelvin sign elsewhere in the class",
    ],
)
def test_r_name_5_non_ascii_tokens_are_renamed_as_the_reference_does(line):
    module = cst.parse_module(f"class SigmaModel:\n    {line}\n    y = 1\n")
    table = rename_table("sigma", "orbit", CasingTable())

    fast = rename_module(module, table, model_name="orbit", target="orbit")
    reference = rename_module_reference(module, table, model_name="orbit", target="orbit")

    assert fast.code == reference.code
    assert "OrbitModel" in fast.code
    assert "\u017f" not in fast.code or "\u212a" in line
