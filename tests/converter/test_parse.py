"""Parsing (P2): text in, libcst module out, syntax errors as ConvertError with a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.converter.parse import parse_module
from daemon.errors import ConvertError

PATH = Path("/repo/src/transformers/models/orbit/modular_orbit.py")


def test_r_io_5_parse_keeps_the_text_exactly():
    text = "# Copyright 2031 Orbit authors\n\n\nclass OrbitModel(ZetaModel):\n    pass\n"

    module = parse_module(text, PATH)

    assert module.code == text
    assert module.header[0].comment is not None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("import torch\n\n\nclass OrbitModel(:\n    pass\n", 4),
        ("import torch\nSIZES = (\n    1,\n", 2),  # the unclosed bracket, not the end of file
        ("x = 1\ny = 2\n\0\n", 3),
    ],
)
def test_p2_syntax_error_names_file_and_line(text, line):
    with pytest.raises(ConvertError) as caught:
        parse_module(text, PATH)

    assert caught.value.line == line
    assert caught.value.path == PATH
    assert str(caught.value).startswith(f"{PATH}:{line}: syntax error: ")
