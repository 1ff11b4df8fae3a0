"""Source text to libcst tree (P2); a syntax error becomes a ``ConvertError`` with its line."""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
        return parse_unvalidated(text)
    except cst.ParserSyntaxError as error:
        line, message = _locate(text, error)
        raise ConvertError(
            path,
            f"syntax error: {message}",
            line=line,
            hint="fix the syntax; the generated files are left as they are until then",
        ) from error


# libcst validates every node it constructs (``CSTNode.__post_init__`` calls ``_validate``),
# the parser's too, although a tree parsed from text is valid by construction; libcst's own
# comment there says as much ("PERF: It might make more sense to move validation work into
# the visitor, which would allow us to avoid validating the tree when parsing a file"). That
# is 13 % of a parse, 5 % of a cold conversion. While this module parses, the hook is a no-op;
# nodes built by hand (the converter's own, in any thread) are validated as ever. The lock
# makes parses take turns, so one parse cannot restore the hook under another.
_UNVALIDATED = threading.RLock()
_VALIDATE = cst.CSTNode.__post_init__


def _skip_validation(self: cst.CSTNode) -> None:
    if threading.get_ident() != _parsing[0]:
        _VALIDATE(self)  # another thread building a node meanwhile: validated


_parsing = [0]  # the thread that is parsing without validation, or 0


@contextmanager
def _without_validation() -> Iterator[None]:
    with _UNVALIDATED:
        if _parsing[0]:  # already inside (a nested parse in this thread)
            yield
            return
        _parsing[0] = threading.get_ident()
        cst.CSTNode.__post_init__ = _skip_validation  # type: ignore[method-assign]
        try:
            yield
        finally:
            cst.CSTNode.__post_init__ = _VALIDATE  # type: ignore[method-assign]
            _parsing[0] = 0


def parse_unvalidated(text: str) -> cst.Module:
    """``cst.parse_module(text)`` without validating the nodes the parser builds: the same
    tree (validation only raises, it changes nothing); syntax errors are libcst's own."""
    with _without_validation():
        return cst.parse_module(text)


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
