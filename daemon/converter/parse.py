"""Source text to libcst tree (P2); a syntax error becomes a ``ConvertError`` with its line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import libcst as cst

from daemon.errors import ConvertError

# libcst prefixes its own (often imprecise) position to the message; the line is reported apart.
_LIBCST_POSITION = re.compile(r"error at \d+:\d+: ")


def parse_module(text: str, path: Path) -> cst.Module:
    """Parse a modular or parent file with libcst.

    Args:
        text: the file's source text.
        path: where the text comes from, for the error message.

    Returns:
        The module tree; it renders back to ``text`` exactly.

    Raises:
        ConvertError: the text is not valid Python; ``line`` is the 1-based line of the error.
    """
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        line, message = _locate(text, error)
        raise ConvertError(
            path,
            f"syntax error: {message}",
            line=line,
            hint="fix the syntax; the generated files are left as they are until then",
        ) from error


def _locate(text: str, error: cst.ParserSyntaxError) -> tuple[int, str]:
    """The 1-based line and message of a syntax error.

    libcst's native parser often reports the token after the real error (the line below an
    unclosed bracket, say), so CPython's parser is asked first; libcst's ``raw_line`` is the
    fallback for text CPython accepts.
    """
    if "\0" in text:  # CPython refuses null bytes without saying where they are
        return text.count("\n", 0, text.index("\0")) + 1, "source contains a null byte"
    try:
        ast.parse(text)
    except SyntaxError as python_error:
        return python_error.lineno or error.raw_line, python_error.msg
    # No known text is accepted by CPython yet refused by libcst, hence the pragma.
    return error.raw_line, _LIBCST_POSITION.sub("", error.message)  # pragma: no cover
