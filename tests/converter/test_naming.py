"""Naming rules R-NAME-1..5, 7 and 9 on invented models (zeta, orbit, nova)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from daemon.converter.naming import (
    CasingTable,
    common_suffix,
    infer_prefix,
    load_casing_table,
    rename_table,
    rename_text,
)
from daemon.errors import ConvertError
from tests.converter.corpus import require_corpus

CASING = CasingTable(
    (
        ("zeta", "ZetaConfig"),
        ("nova", "NOVAConfig"),
        ("orbit-lens", "OLConfig"),
        ("kite4_5", "Kite4_5_Config"),
        ("comet", "SharedConfig"),
        ("comet_two", "SharedConfig"),
    )
)
ZETA_TO_ORBIT = rename_table("zeta", "orbit", CASING)
NOVA_TO_ORBIT = rename_table("nova", "orbit", CASING)


def write_auto(root: Path, mappings: str, configuration: str | None = None) -> None:
    auto = root / "src" / "transformers" / "models" / "auto"
    auto.mkdir(parents=True)
    (auto / "auto_mappings.py").write_text(textwrap.dedent(mappings), encoding="utf-8")
    if configuration is not None:
        (auto / "configuration_auto.py").write_text(
            textwrap.dedent(configuration), encoding="utf-8"
        )


def test_r_name_1_table_is_pairs_then_updates_then_gpt_sw3_first(tmp_path):
    write_auto(
        tmp_path,
        """\
        from collections import OrderedDict

        OTHER_NAMES = OrderedDict([("zeta", "ZetaModel")])
        CONFIG_MAPPING_NAMES = OrderedDict(
            [
                ("zeta", "ZetaConfig"),
                ("nova", "NOVAConfig"),
            ]
        )
        """,
        """\
        from .auto_mappings import CONFIG_MAPPING_NAMES

        CONFIG_MAPPING_NAMES.update({"orbit": "OrbitConfig", "zeta": "ZetaV2Config"})
        OTHER_NAMES.update({"ignored": "IgnoredConfig"})
        if True:
            CONFIG_MAPPING_NAMES.update({"nested": "NotTopLevelConfig"})
        CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)
        CONFIG_MAPPING_NAMES.update({"gpt2": "GPT2Config"})
        """,
    )

    table = load_casing_table(tmp_path)

    assert table.pairs == (
        ("gpt-sw3", "GPT2Config"),
        ("zeta", "ZetaV2Config"),
        ("nova", "NOVAConfig"),
        ("orbit", "OrbitConfig"),
        ("gpt2", "GPT2Config"),
    )
    assert table.lowered("GPT2") == "gpt2"  # gpt-sw3 comes first, so gpt2 is the last key


def test_r_name_1_gpt_sw3_is_prepended_when_there_is_no_readable_rebuild(tmp_path):
    write_auto(
        tmp_path,
        'CONFIG_MAPPING_NAMES = [("zeta", "ZetaConfig"), ("gpt2", "GPT2Config")]\n',
        "CONFIG_MAPPING_NAMES = rebuild(CONFIG_MAPPING_NAMES)\n",
    )

    assert load_casing_table(tmp_path).pairs == (
        ("gpt-sw3", "GPT2Config"),
        ("zeta", "ZetaConfig"),
        ("gpt2", "GPT2Config"),
    )


def test_r_name_1_a_repository_without_auto_mappings_has_an_empty_table(tmp_path):
    assert load_casing_table(tmp_path) == CasingTable()


def test_r_name_1_table_is_reread_when_the_file_changes(tmp_path):
    write_auto(tmp_path, 'CONFIG_MAPPING_NAMES = [("zeta", "ZetaConfig")]\n')
    mappings = tmp_path / "src" / "transformers" / "models" / "auto" / "auto_mappings.py"
    assert load_casing_table(tmp_path).cased("zeta") == "Zeta"

    mappings.write_text('CONFIG_MAPPING_NAMES = [("zeta", "ZETAConfig")]\n', encoding="utf-8")
    stat = mappings.stat()
    os.utime(mappings, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert load_casing_table(tmp_path).cased("zeta") == "ZETA"


def test_r_name_1_annotated_dict_table_and_unreadable_statements_are_skipped(tmp_path):
    write_auto(
        tmp_path,
        """\
        CONFIG_MAPPING_NAMES = [("zeta", ZETA)]
        CONFIG_MAPPING_NAMES: dict[str, str] = {"zeta": "ZetaConfig", "nova": "NOVAConfig"}
        """,
        """\
        CONFIG_MAPPING_NAMES.update(extra)
        CONFIG_MAPPING_NAMES.update({"comet": 1})
        CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **OTHER)
        CONFIG_MAPPING_NAMES = OrderedDict(first="OrbitConfig", **CONFIG_MAPPING_NAMES)
        CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)
        """,
    )

    assert load_casing_table(tmp_path).pairs == (
        ("gpt-sw3", "GPT2Config"),
        ("zeta", "ZetaConfig"),
        ("nova", "NOVAConfig"),
    )


@pytest.mark.parametrize(
    "mappings",
    [
        "CONFIG_MAPPING_NAMES = build_mapping()\n",
        "CONFIG_MAPPING_NAMES = OrderedDict([])\n",
        "CONFIG_MAPPING_NAMES = {[1]: 2}\n",
        'CONFIG_MAPPING_NAMES = [("zeta", "ZetaConfig", "extra")]\n',
        "OTHER_NAMES = [('zeta', 'ZetaConfig')]\n",
    ],
)
def test_r_name_1_a_table_without_literals_is_an_error(tmp_path, mappings):
    write_auto(tmp_path, mappings)

    with pytest.raises(ConvertError, match="no literal CONFIG_MAPPING_NAMES"):
        load_casing_table(tmp_path)


def test_r_name_1_a_table_that_does_not_parse_is_an_error_with_its_line(tmp_path):
    write_auto(tmp_path, "CONFIG_MAPPING_NAMES = [\n    ('zeta', 'ZetaConfig'),\n    (\n")

    with pytest.raises(ConvertError, match="cannot read the casing table") as caught:
        load_casing_table(tmp_path)

    assert caught.value.line is not None


def test_r_name_2_cased_from_table():
    assert CASING.cased("nova") == "NOVA"
    assert CASING.cased("kite4_5") == "Kite4_5_"  # every ``Config`` substring is removed


def test_r_name_2_cased_from_dashed_key():
    assert CASING.cased("orbit_lens") == "OL"


def test_r_name_2_cased_fallback_title_cases_each_piece():
    assert CASING.cased("orbit_text") == "OrbitText"
    assert CASING.cased("kite4v_x") == "Kite4VX"  # a letter after a digit is capitalised
    assert CASING.cased("orbit3_5_lens") == "Orbit35Lens"


def test_r_name_3_lowered_from_table_takes_the_last_key():
    assert CASING.lowered("NOVA") == "nova"
    assert CASING.lowered("Shared") == "comet_two"
    assert CASING.lowered("OL") == "orbit-lens"


def test_r_name_3_lowered_fallback_splits_before_capitals():
    assert CASING.lowered("OrbitVision") == "orbit_vision"
    assert CASING.lowered("OrbitMLP") == "orbit_m_l_p"
    assert CASING.lowered("xOrbit4_5Lens") == "orbit4_5_lens"  # text before a capital is lost


def test_r_name_4_three_entry_table():
    table = rename_table("zeta-lens", "orbit", CASING)

    assert table.entries == (
        ("zeta_lens", "orbit"),
        ("ZETA_LENS", "ORBIT"),
        ("ZetaLens", "Orbit"),
    )
    assert table.default == "Orbit"


def test_r_name_4_two_entry_table_when_cased_old_is_upper_old():
    assert NOVA_TO_ORBIT.entries == (("nova", "orbit"), ("NOVA", "Orbit"))
    assert NOVA_TO_ORBIT.default == "Orbit"


def test_r_name_5_three_entry_example():
    before = 'zeta_helper  ZetaModel  ZETA_SCALE  "a zeta model"  zetabyte  myzeta  ZeTa'
    after = 'orbit_helper  OrbitModel  ORBIT_SCALE  "a orbit model"  orbitbyte  myzeta  Orbit'

    assert rename_text(before, ZETA_TO_ORBIT) == after


def test_r_name_5_two_entry_special_case():
    before = 'NOVA_SIZE  NOVAMLP   "NOVA block; see Nova paper"  # run NOVA then nova'
    after = 'ORBIT_SIZE  OrbitMLP   "ORBIT block; see Orbit paper"  # run ORBIT then orbit'

    assert rename_text(before, NOVA_TO_ORBIT) == after
    assert rename_text("NOVA", NOVA_TO_ORBIT) == "ORBIT"  # end of text counts as a non-letter


def test_r_name_5_skip_list():
    assert rename_text("mamba_inner_fn", rename_table("mamba", "orbit", CASING)) == "mamba_inner_fn"
    assert rename_text('"mamba_ssm"', rename_table("mamba", "orbit", CASING)) == '"mamba_ssm"'
    assert rename_text("'mamba_ssm'", rename_table("mamba", "orbit", CASING)) == "'orbit_ssm'"


def test_r_name_5_no_right_boundary():
    assert rename_text("zetabyte ZetaModel", ZETA_TO_ORBIT) == "orbitbyte OrbitModel"


def test_r_name_5_left_boundary_is_any_letter_or_digit():
    assert rename_text("myzeta MyZeta 2zeta _zeta .Zeta", ZETA_TO_ORBIT) == (
        "myzeta MyZeta 2zeta _orbit .Orbit"
    )


def test_r_name_5_consumed_following_char():
    # The character after a match is consumed, so ``zetazeta`` renames only the first;
    # with a separator in between the second match has a non-alphanumeric on its left.
    assert rename_text("zetazeta", ZETA_TO_ORBIT) == "orbitzeta"
    assert rename_text("zeta_zeta", ZETA_TO_ORBIT) == "orbit_orbit"
    assert rename_text("# zeta\nzeta", ZETA_TO_ORBIT) == "# orbit\norbit"


def test_r_name_5_a_table_without_keys_changes_nothing():
    assert rename_text("zeta", rename_table("", "orbit", CASING)) == "zeta"


def test_r_name_5_mixed_case_non_keys_take_the_default():
    assert rename_text("zEta ZETa", ZETA_TO_ORBIT) == "Orbit Orbit"


def test_r_name_7_common_suffix_excludes_whole_names():
    assert common_suffix("OrbitVisionModel", "ZetaModel") == "Model"
    assert common_suffix("OrbitZetaModel", "ZetaModel") == ""
    assert common_suffix("ZetaModel", "OrbitZetaModel") == ""
    assert common_suffix("OrbitA", "ZetaB") == ""


def prefix(
    candidates: list[tuple[str, str]], parent_source: str = "", default: str = "Orbit"
) -> tuple[str, list[str]]:
    return infer_prefix(
        candidates,
        default=default,
        parent_model="zeta",
        parent_source=parent_source,
        casing=CASING,
    )


def test_r_name_7_single_class_gives_its_prefix():
    assert prefix([("OrbitVisionModel", "ZetaModel")]) == ("OrbitVision", [])


def test_r_name_7_common_suffix_is_removed_everywhere():
    assert prefix([("PromptBlock", "ZetaBlock")]) == ("Prompt", [])
    assert prefix([("OrbitLayerXLayer", "ZetaLayer")]) == ("OrbitX", [])


def test_r_name_7_prefix_shorter_than_default_falls_back_to_default():
    # ``OrbitNormLayer`` minus ``NormLayer`` is ``Orbit``, shorter than the default it contains.
    assert prefix([("OrbitNormLayer", "ZetaNormLayer")], default="OrbitNorm") == ("OrbitNorm", [])
    # A shorter prefix stays when the class name does not contain the default.
    assert prefix([("OrbModel", "ZetaModel")]) == ("Orb", [])


def test_r_name_7_new_old_form():
    assert prefix([("OrbitZetaModel", "ZetaModel")]) == ("OrbitZeta", [])


def test_r_name_7_default_when_no_rule_applies():
    assert prefix([("OrbitHead", "ZetaModel")]) == ("Orbit", [])
    assert prefix([("Orbitmodel", "Zetamodel")]) == ("Orbit", [])  # suffix not capitalised


def test_r_name_7_majority_wins_with_a_warning():
    chosen, warnings = prefix(
        [
            ("OrbitTextModel", "ZetaModel"),
            ("OrbitMLP", "ZetaMLP"),
            ("OrbitTextNorm", "ZetaNorm"),
        ]
    )

    assert chosen == "OrbitText"
    assert len(warnings) == 1
    assert "several prefixes" in warnings[0]


def test_r_name_7_tie_including_default_takes_default():
    chosen, _ = prefix([("OrbitMLP", "ZetaMLP"), ("OrbitTextModel", "ZetaModel")])

    assert chosen == "Orbit"


def test_r_name_7_tie_without_default_takes_the_last_first_seen():
    chosen, _ = prefix([("OrbitTextModel", "ZetaModel"), ("OrbitLensNorm", "ZetaNorm")])

    assert chosen == "OrbitLens"


def test_r_name_7_collision_falls_back_to_default():
    source = "import torch\n\n\nclass ZetaVisionModel:\n    pass\n"

    chosen, warnings = prefix([("OrbitVisionModel", "ZetaModel")], parent_source=source)

    assert chosen == "Orbit"
    assert len(warnings) == 1
    assert "collide" in warnings[0]


def test_r_name_7_no_candidates_gives_default_without_warning():
    assert prefix([]) == ("Orbit", [])


def test_r_name_9_round_trip_casing():
    lowered = CASING.lowered("OrbitX_Lens_")

    assert lowered == "orbit_x__lens_"
    assert CASING.cased(lowered) == "OrbitXLens"


def test_r_name_1_corpus_table():
    root = require_corpus()

    table = load_casing_table(root)

    assert len(table.pairs) == 804
    assert table.pairs[0] == ("gpt-sw3", "GPT2Config")
    assert table.cased("audio_spectrogram_transformer") == "AST"
    assert table.cased("x_clip") == "XClip"
    assert table.cased("exaone4_5") == "Exaone4_5_"
    assert table.lowered("GPT2") == "gpt2"
