"""Parsing (P2): text in, libcst module out, syntax errors as ConvertError with a line."""

from __future__ import annotations

import threading
from pathlib import Path

import libcst as cst
import pytest

from daemon.converter.parse import _without_validation, parse_module, parse_unvalidated
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


SYNTAX = '''\
"""Module docstring."""
from __future__ import annotations

import torch as t  # a comment
from .a import (b, c as d)


@decorator(1, *args, key=value, **kwargs)
class Zeta(Base, metaclass=Meta):
    x: int = 1

    async def f(self, /, a, *, b=2, **rest) -> list[int]:
        async with ctx() as (u, v):
            return [i ** 2 for i in range(10) if i % 2 if not i] or {k: v for k, v in rest.items()}
        global g
        yield (lambda q=1: q)(), f"{a!r:>{b}} {{x}}", b"raw", ...
        match a:
            case [1, *others] | {"k": _} if others:
                pass
        try:
            del a[1:2, ::3]
        except* (ValueError, TypeError) as error:
            raise RuntimeError() from error
        finally:
            x = y = (z := 3); x @= y; x >>= 1
'''


def test_p2_parse_without_validation_gives_libcst_s_tree_and_validation_stays_on():
    unvalidated = parse_unvalidated(SYNTAX)

    assert unvalidated.deep_equals(cst.parse_module(SYNTAX))
    assert unvalidated.code == SYNTAX
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not an identifier")  # nodes built by hand are validated again


def test_p2_other_threads_are_validated_while_one_parses():
    outcomes: list[str] = []

    def build_invalid_node() -> None:
        try:
            cst.Name("not an identifier")
            outcomes.append("accepted")
        except cst.CSTValidationError:
            outcomes.append("refused")

    with _without_validation():  # what parse_unvalidated holds while libcst parses
        build_invalid_node()  # the parsing thread: not validated
        other = threading.Thread(target=build_invalid_node)
        other.start()
        other.join(timeout=30)
    build_invalid_node()

    assert outcomes == ["accepted", "refused", "refused"]
