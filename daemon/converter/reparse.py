"""Incremental parse (P2 on a save): reparse only the top-level statements an edit touched.

A save of a modular file changes a line or two, yet a full libcst parse of ``modular_gemma.py``
costs ~12 ms, and every node it makes is new, so the per-node memos (code, identifiers,
positions, merges) miss for the whole file. ``splice`` parses only the statements the edit
touched, with one unchanged neighbour on each side, and keeps the previous tree's objects for
every other statement: the result is the tree a full parse of the new text gives (the tests
compare them with ``deep_equals`` over edits of every corpus file), and the memos hit for
everything the edit did not touch.

Why the neighbours: libcst gives the comments and blank lines between two statements to the
later one, except comments indented under the earlier one's block, which go to that block's
footer. An edit just after a boundary can move it (indenting a comment), so the boundaries of
the reparsed segment are taken where the text on both sides is unchanged.

Anything outside what was checked (CRLF, an encoding cookie, a default indent the segment
could read differently, a segment with no statement) returns ``None``: the caller parses the
whole text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from daemon.converter.inventory import code_of
from daemon.converter.parse import parse_module, parse_unvalidated

_EMPTY = cst.Module(body=[])


def splice(old_text: str, old: cst.Module, new_text: str) -> cst.Module | None:
    """The tree of ``new_text``, reusing the statements of ``old`` (the tree of ``old_text``)
    that lie wholly in the text the two share at their start or end.

    First only the touched statements are parsed, kept when neither boundary could have moved;
    else again with one unchanged neighbour on each side.

    Returns:
        The new module, or ``None`` when the edit is not one this can splice safely or the
        segment does not parse: the caller then parses ``new_text`` whole (and reports a
        syntax error with CPython's line).
    """
    if not _plain(old, old_text) or not _plain_text(new_text):
        return None
    spans = statement_spans(old_text, old)
    if spans is None or len(spans) < 2:
        return None
    prefix, suffix = common_ends(old_text, new_text)
    first, last = touched(spans, prefix, len(old_text) - suffix)
    edit = _Edit(old_text, old, new_text, spans)
    return edit.attempt(first, last, strict=True) or edit.attempt(
        max(first - 1, 0), min(max(last, first - 1) + 1, len(spans) - 1), strict=False
    )


@dataclass(frozen=True)
class _Edit:
    old_text: str
    old: cst.Module
    new_text: str
    spans: Sequence[tuple[int, int]]

    def attempt(self, low: int, high: int, *, strict: bool) -> cst.Module | None:
        """Reparse old statements ``low..high`` (none when ``high < low``: an insertion
        between two) as they read in the new text; ``strict``: check the two boundaries."""
        count = len(self.spans)
        at_start, at_end = low == 0, high == count - 1
        if at_start and at_end:
            return None  # the whole file: a plain parse is the same work
        # low == count: only the footer changed, an empty segment before it
        start = 0 if at_start else (self.spans[low][0] if low < count else self.spans[-1][1])
        end = len(self.old_text) if at_end else self.spans[high + 1][0]
        shift = len(self.new_text) - len(self.old_text)
        segment = self.new_text[start : end + shift]
        if not segment.endswith("\n"):
            return None  # the edit ran into the next line: it reads on from the segment
        try:
            part = parse_unvalidated(segment)
        except cst.ParserSyntaxError:
            return None  # perhaps not alone (a line that continues B's block): wider, or whole
        body = _segment_body(part, at_start=at_start, at_end=at_end)
        replaced = self.old.body[low : high + 1]
        if body is None or not _same_layout(part, self.old, replaced):
            return None
        if strict and not self._boundaries_hold(low, high, body):
            return None
        return self.old.with_changes(
            header=part.header if at_start else self.old.header,
            body=(*self.old.body[:low], *body, *self.old.body[high + 1 :]),
            footer=part.footer if at_end else self.old.footer,
            has_trailing_newline=part.has_trailing_newline
            if at_end
            else self.old.has_trailing_newline,
        )

    def _boundaries_hold(self, low: int, high: int, body: Sequence[cst.BaseStatement]) -> bool:
        """A whole parse would cut where the segment starts and ends: an indented block owns
        the indented lines after it (its footer), so a boundary after a block holds only
        when no line beyond it is indented (column 0 and blank lines go to the next one)."""
        if low > 0 and _may_indent(self.old.body[low - 1]) and not _flush(_leading(body[0])):
            return False
        following = high + 1
        return following >= len(self.spans) or (
            not _may_indent(body[-1]) or _flush(_leading(self.old.body[following]))
        )


def _leading(statement: cst.BaseStatement) -> Sequence[cst.EmptyLine]:
    lines: Sequence[cst.EmptyLine] = getattr(statement, "leading_lines", ())
    return lines


def _flush(lines: Sequence[cst.EmptyLine]) -> bool:
    """No line indented (module-level lines carry their indentation as whitespace)."""
    return all(line.whitespace.value == "" for line in lines)


def _plain(module: cst.Module, text: str) -> bool:
    """A tree whose statements render alone as they do in it (``code_of``'s default config)."""
    return (
        module.default_newline == "\n"
        and module.default_indent == _EMPTY.default_indent
        and module.encoding == "utf-8"
        and module.has_trailing_newline
        and _plain_text(text)
    )


def _plain_text(text: str) -> bool:
    """No CR (libcst's newline detection), an ending newline, no BOM, no encoding cookie
    (read from the first two lines)."""
    second_end = text.find("\n", text.find("\n") + 1)
    head = text if second_end < 0 else text[:second_end]
    return (
        "\r" not in text
        and text.endswith("\n")
        and not text.startswith("\ufeff")
        and "coding" not in head
    )


def statement_spans(text: str, module: cst.Module) -> list[tuple[int, int]] | None:
    """The ``[start, end)`` of each top-level statement's code in ``text`` (leading comments
    and an indented block's footer included), or None when they do not add up to ``text``."""
    codes = [code_of(statement) for statement in module.body]
    footer = "".join(_EMPTY.code_for_node(line) for line in module.footer)
    start = len(text) - sum(map(len, codes)) - len(footer)
    if start < 0 or not text.endswith(footer):
        return None
    spans = []
    for code in codes:
        if not text.startswith(code, start):
            return None
        spans.append((start, start + len(code)))
        start += len(code)
    return spans


def common_ends(old: str, new: str) -> tuple[int, int]:
    """The lengths of the longest common prefix and suffix, not overlapping in either text."""
    limit = min(len(old), len(new))
    prefix = _common_length(lambda n: old[:n] == new[:n], limit)
    rest = limit - prefix
    suffix = _common_length(lambda n: old[len(old) - n :] == new[len(new) - n :], rest)
    return prefix, suffix


def _common_length(same: Callable[[int], bool], limit: int) -> int:
    """The largest ``n <= limit`` with ``same(n)``, by bisection (``same`` is monotone)."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if same(middle):
            low = middle
        else:
            high = middle - 1
    return low


def touched(spans: Sequence[tuple[int, int]], prefix: int, suffix_start: int) -> tuple[int, int]:
    """The first statement not wholly in the common prefix and the last not wholly in the
    common suffix (which starts at ``suffix_start`` in the old text); ``len(spans)`` and -1
    when there is none."""
    first = next((i for i, (_, end) in enumerate(spans) if end > prefix), len(spans))
    last = next(
        (i for i in range(len(spans) - 1, -1, -1) if spans[i][0] < suffix_start),
        -1,
    )
    return first, last


def _segment_body(
    part: cst.Module, *, at_start: bool, at_end: bool
) -> list[cst.BaseStatement] | None:
    """The segment's statements as a whole-file parse has them: the lines a segment parse
    puts in its header belong to its first statement's leading lines."""
    if not part.body or (part.footer and not at_end):
        return None
    body: list[cst.BaseStatement] = list(part.body)
    if part.header and not at_start:
        first = body[0]
        if not isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement):
            return None
        body[0] = first.with_changes(leading_lines=(*part.header, *first.leading_lines))
    return body


def _same_layout(part: cst.Module, old: cst.Module, replaced: Sequence[cst.BaseStatement]) -> bool:
    """The segment was read with the indentation a whole-file parse would use: libcst takes
    the file's first indented block as its default indent."""
    if part.default_indent != old.default_indent or part.default_newline != "\n":
        return False
    # If the old file's first block was among the replaced statements and the segment has
    # none, the new first block lies further on, with an indent nobody compared.
    return any(map(_indents, part.body)) or not any(map(_may_indent, replaced))


def _indents(statement: cst.BaseStatement) -> bool:
    """Surely holds an indented block (its body is one)."""
    return isinstance(statement, cst.BaseCompoundStatement) and isinstance(
        statement.body, cst.IndentedBlock
    )


def _may_indent(statement: cst.BaseStatement) -> bool:
    """May hold one (``if x: pass`` with an indented ``else``, say)."""
    return isinstance(statement, cst.BaseCompoundStatement)


class Reparser:
    """The last tree of each recently converted file, to splice the next save into."""

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._last: OrderedDict[Path, tuple[str, cst.Module]] = OrderedDict()
        self.spliced = 0  # for the tests and the benchmarks: parses that reused statements

    def keep_none(self) -> None:
        """Keep no tree: for a process that converts each file once (a batch, a worker)."""
        self._keep = 0
        self._last.clear()

    def parse(self, text: str, path: Path) -> cst.Module:
        """``parse_module(text, path)``, reusing the previous tree of ``path`` where it can.

        A text that does not parse leaves the previous tree in place for the next save.
        """
        module = self._spliced(text, path)
        if module is None:
            module = parse_module(text, path)
        self._last.pop(path, None)
        self._last[path] = (text, module)
        while len(self._last) > self._keep:
            self._last.popitem(last=False)
        return module

    def _spliced(self, text: str, path: Path) -> cst.Module | None:
        previous = self._last.get(path)
        if previous is None:
            return None
        old_text, old = previous
        if old_text == text:
            return old
        module = splice(old_text, old, text)
        if module is not None:
            self.spliced += 1
        return module
