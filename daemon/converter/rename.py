"""Renaming a parent tree (R-NAME-6) or one class's docs (R-NAME-10).

Both apply ``naming.rename_text`` token by token: to identifiers (module renaming only), plain
string literals and comments, and both delete ``# Copied from`` comments and strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from string import ascii_letters
from typing import Any, TypeVar, cast

import libcst as cst

from daemon.converter import FILE_TYPES  # R-NAME-6: sibling modules point at the child's files
from daemon.converter.inventory import NODE_TYPES, SEQUENCE_TYPES, child_fields
from daemon.converter.memo import NodeMemo
from daemon.converter.naming import RenameTable, rename_text

_COPIED_FROM = "# Copied from"


def _has_copied_from(text: str) -> bool:
    return _COPIED_FROM in text


def _emptied_string(token: str) -> str:
    """An empty literal with the same prefix, standing in for a deleted string token."""
    prefix = token[: len(token) - len(token.lstrip(ascii_letters))]
    return prefix + '""'


def _leading_lines(statement: cst.BaseStatement) -> Sequence[cst.EmptyLine]:
    if isinstance(statement, cst.SimpleStatementLine | cst.BaseCompoundStatement):
        return statement.leading_lines
    return ()  # pragma: no cover - every libcst statement is one of the two


def _is_copied_from_string(statement: cst.BaseSmallStatement) -> bool:
    return (
        isinstance(statement, cst.Expr)
        and isinstance(statement.value, cst.SimpleString)
        and _has_copied_from(statement.value.value)
    )


class _FastRenamer:
    """R-NAME-6 (a whole module) or R-NAME-10 (one class's docs) as a plain walk over fields.

    libcst's transformer rebuilds and re-validates every node it passes, changed or not: about
    100 ms for ``modeling_llama.py``, once per child, since each child renames each parent into
    its own name. This walk rebuilds only the nodes above a token that changes and returns the
    untouched subtrees themselves, so the per-node caches (code, identifiers, used imports)
    hold for them across children; a top-level statement none of whose tokens the table
    changes is not walked at all. ``_ReferenceRenamer`` applies the same rules through libcst's
    own traversal, for the tests.
    """

    def __init__(self, table: RenameTable, *, model_name: str | None, target: str) -> None:
        self.table = table
        self.module_renaming = model_name is not None  # identifiers and imports too
        self.model_name = model_name or ""
        self.target = target.replace("-", "_")
        self._renamed: dict[str, str] = {}
        self._deleted_lines: list[cst.SimpleStatementLine] = []
        keys = [key.lower() for key, _ in table.entries if key] if table._pattern else []
        self.lowered_keys = keys if all(key.isascii() for key in keys) else None

    def token(self, text: str) -> str:
        renamed = self._renamed.get(text)
        if renamed is None:
            renamed = self._renamed[text] = rename_text(text, self.table)
        return renamed

    def untouched(self, statement: cst.CSTNode) -> bool:
        """True when walking ``statement`` could change nothing in it."""
        words = statement_words(statement)
        if words.must_walk:
            return False
        if words.lowered is not None and self.lowered_keys is not None:
            # A token changes only where a key matches it case-insensitively: with both sides
            # ASCII, where the lowered key occurs in the lowered token.
            return not any(key in words.lowered for key in self.lowered_keys)
        return all(self.token(token) == token for token in words.tokens)

    def walk(self, node: _Node) -> _Node:
        if self.module_renaming and isinstance(node, cst.ImportFrom) and not node.relative:
            return node  # R-NAME-6: absolute from-imports are restored verbatim
        if type(node) in _STATEMENT_TYPES and self.untouched(node):
            return node  # a method, a line of a body: the same object, not walked
        changes: dict[str, object] = {}
        for name in child_fields(type(node)):
            value = getattr(node, name)
            if type(value) in NODE_TYPES:
                walked = self.walk(value)
                if walked is not value:
                    changes[name] = walked
            elif type(value) in SEQUENCE_TYPES and value:
                items = [self.walk(v) if type(v) in NODE_TYPES else v for v in value]
                if any(new is not old for new, old in zip(items, value, strict=True)):
                    changes[name] = tuple(items)
        updated = node.with_changes(**changes) if changes else node
        leave = _LEAVE.get(type(node))
        return updated if leave is None else leave(self, node, updated)  # type: ignore[return-value]

    def leave_name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if not self.module_renaming:
            return updated
        value = self.token(updated.value)
        return updated if value == updated.value else updated.with_changes(value=value)

    def leave_string(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.CSTNode:
        # R-NAME-6: the whole token is renamed, prefix and quotes included.
        if _has_copied_from(original.value):
            return updated.with_changes(value=_emptied_string(original.value))
        value = self.token(updated.value)
        return updated if value == updated.value else updated.with_changes(value=value)

    def leave_comment(self, original: cst.Comment, updated: cst.Comment) -> cst.Comment:
        value = self.token(updated.value)
        return updated if value == updated.value else updated.with_changes(value=value)

    def leave_empty_line(self, original: cst.EmptyLine, updated: cst.EmptyLine) -> cst.EmptyLine:
        # R-NAME-6: a whole-line ``# Copied from`` comment leaves a blank line behind (ruff
        # removes it where a blank line is not allowed, between a decorator and its class).
        if original.comment is not None and _has_copied_from(original.comment.value):
            return updated.with_changes(
                indent=False, whitespace=cst.SimpleWhitespace(""), comment=None
            )
        return updated

    def leave_trailing(
        self, original: cst.TrailingWhitespace, updated: cst.TrailingWhitespace
    ) -> cst.TrailingWhitespace:
        if original.comment is not None and _has_copied_from(original.comment.value):
            return updated.with_changes(comment=None, whitespace=cst.SimpleWhitespace(""))
        return updated

    def leave_line(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        # A string statement (a docstring, say) containing ``# Copied from`` goes entirely,
        # rather than leaving an empty literal behind.
        kept = [
            statement
            for before, statement in zip(original.body, updated.body, strict=True)
            if not _is_copied_from_string(before)
        ]
        if len(kept) == len(updated.body):
            return updated
        if kept:
            return updated.with_changes(body=kept)
        # Nothing left: libcst would drop an empty line together with its comments, so the
        # line is kept as it is and the enclosing block folds it away (``_fold_deleted``).
        self._deleted_lines.append(updated)
        return updated

    def leave_block(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if not self._deleted_lines:
            return updated
        body, footer = _fold_deleted(updated.body, updated.footer, self._deleted_lines)
        return updated.with_changes(body=body, footer=footer)

    def leave_import_from(
        self, original: cst.ImportFrom, updated: cst.ImportFrom
    ) -> cst.ImportFrom:
        module = updated.module
        if self.module_renaming and self.target != self.model_name and isinstance(module, cst.Name):
            for file_type in FILE_TYPES:
                if module.value == f"{file_type}_{self.target}":
                    return updated.with_changes(
                        module=module.with_changes(value=f"{file_type}_{self.model_name}")
                    )
        return updated

    def rename(self, module: cst.Module) -> cst.Module:
        """The whole module: untouched top-level statements are kept as they are."""
        header = [self.walk(line) for line in module.header]
        body: list[cst.BaseStatement] = [self.walk(s) for s in module.body]
        footer = [self.walk(line) for line in module.footer]
        if self._deleted_lines:
            body, footer = _fold_deleted(body, footer, self._deleted_lines)
        same = all(
            new is old
            for new, old in zip(
                [*header, *body, *footer],
                [*module.header, *module.body, *module.footer],
                strict=False,
            )
        )
        if same and len(body) == len(module.body) and len(footer) == len(module.footer):
            return module
        return module.with_changes(header=header, body=body, footer=footer)


class _ReferenceRenamer(cst.CSTTransformer):
    """The same rules applied by libcst's own traversal, for the tests: it checks that the
    walk reaches every token libcst reaches, in an order that gives the same tree."""

    def __init__(self, rules: _FastRenamer) -> None:
        super().__init__()
        self.rules = rules

    def leave_Comment(self, original_node: cst.Comment, updated_node: cst.Comment) -> cst.Comment:
        return self.rules.leave_comment(original_node, updated_node)

    def leave_EmptyLine(
        self, original_node: cst.EmptyLine, updated_node: cst.EmptyLine
    ) -> cst.EmptyLine:
        return self.rules.leave_empty_line(original_node, updated_node)

    def leave_TrailingWhitespace(
        self, original_node: cst.TrailingWhitespace, updated_node: cst.TrailingWhitespace
    ) -> cst.TrailingWhitespace:
        return self.rules.leave_trailing(original_node, updated_node)

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.BaseExpression:
        return cast(cst.BaseExpression, self.rules.leave_string(original_node, updated_node))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        return self.rules.leave_line(original_node, updated_node)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return self.rules.leave_block(original_node, updated_node)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        deleted = self.rules._deleted_lines
        body, footer = _fold_deleted(updated_node.body, updated_node.footer, deleted)
        return updated_node.with_changes(body=body, footer=footer)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return self.rules.leave_name(original_node, updated_node)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom:
        if self.rules.module_renaming and not original_node.relative:
            return original_node
        return self.rules.leave_import_from(original_node, updated_node)


_Node = TypeVar("_Node", bound=cst.CSTNode)
_Leave = Callable[[_FastRenamer, Any, Any], cst.CSTNode]
_LEAVE: dict[type[cst.CSTNode], _Leave] = {
    cst.Name: _FastRenamer.leave_name,
    cst.SimpleString: _FastRenamer.leave_string,
    cst.Comment: _FastRenamer.leave_comment,
    cst.EmptyLine: _FastRenamer.leave_empty_line,
    cst.TrailingWhitespace: _FastRenamer.leave_trailing,
    cst.SimpleStatementLine: _FastRenamer.leave_line,
    cst.IndentedBlock: _FastRenamer.leave_block,
    cst.ImportFrom: _FastRenamer.leave_import_from,
}


@dataclass(frozen=True)
class Words:
    """The identifier, string and comment texts of one statement, and whether walking it can
    change it whatever they are (``# Copied from``, a relative import)."""

    tokens: frozenset[str]
    must_walk: bool
    lowered: str | None  # the tokens joined and lowered, when all of them are ASCII

    @classmethod
    def of(cls, tokens: Iterable[str], must_walk: bool) -> Words:
        found = frozenset(tokens)
        joined = "\0".join(found)
        return cls(found, must_walk, joined.lower() if joined.isascii() else None)


_WORDS: NodeMemo[Words] = NodeMemo()
_STATEMENT_TYPES = frozenset(t for t in NODE_TYPES if issubclass(t, cst.BaseStatement))
_TOKEN_TYPES = frozenset({cst.Name, cst.SimpleString, cst.Comment})


def statement_words(statement: cst.CSTNode) -> Words:
    """``Words`` of ``statement``, cached per node, as a parent's parse is shared by the
    children renaming it; computing them for a statement also caches those of every statement
    nested in it, which the walk asks for next."""
    words = _WORDS.get(statement)
    if words is None:
        words = _collect_words(statement, [])[1]
        assert words is not None
    return words


def _collect_words(node: cst.CSTNode, out: list[str]) -> tuple[bool, Words | None]:
    """Append the tokens under ``node`` to ``out``; cache ``Words`` for each statement met."""
    kind = type(node)
    start = len(out)
    must_walk = False
    if kind in _TOKEN_TYPES:
        text: str = node.value  # type: ignore[attr-defined]
        out.append(text)
        must_walk = kind is not cst.Name and _has_copied_from(text)
    elif kind is cst.ImportFrom and node.relative:  # type: ignore[attr-defined]
        must_walk = True
    for name in child_fields(kind):
        value = getattr(node, name)
        if type(value) in NODE_TYPES:
            must_walk |= _collect_words(value, out)[0]
        elif type(value) in SEQUENCE_TYPES:
            for item in value:
                if type(item) in NODE_TYPES:
                    must_walk |= _collect_words(item, out)[0]
    if kind not in _STATEMENT_TYPES:
        return must_walk, None
    return must_walk, _WORDS.put(node, Words.of(out[start:], must_walk))


def _fold_deleted(
    body: Sequence[cst.BaseStatement],
    footer: Sequence[cst.EmptyLine],
    deleted: list[cst.SimpleStatementLine],
) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
    """Drop deleted statement lines, moving their leading lines onto what follows them."""
    kept: list[cst.BaseStatement] = []
    carried: list[cst.EmptyLine] = []
    for statement in body:
        if any(statement is line for line in deleted):
            carried.extend(_leading_lines(statement))
            continue
        if carried:
            statement = statement.with_changes(leading_lines=[*carried, *_leading_lines(statement)])
            carried = []
        kept.append(statement)
    return kept, [*carried, *footer]


def rename_module(
    module: cst.Module, table: RenameTable, *, model_name: str, target: str
) -> cst.Module:
    """Rename a whole parent module with ``table`` (R-NAME-6).

    Identifiers (attributes, keywords, parameters, import names and relative module names),
    plain string tokens and comments are renamed; f-string literal text and absolute
    ``from X import ...`` statements are not. ``# Copied from`` comments and strings are deleted.
    Subtrees the renaming leaves alone are returned as the same objects.

    Args:
        module: the parsed parent module.
        table: the parent's rename table (R-NAME-8).
        model_name: the child's model name, for single-component sibling module names.
        target: the rename target (lowercase prefix) the table renames into.

    Returns:
        The renamed module.
    """
    return _FastRenamer(table, model_name=model_name, target=target).rename(module)


def rename_module_reference(
    module: cst.Module, table: RenameTable, *, model_name: str, target: str
) -> cst.Module:
    """``rename_module`` by libcst's traversal: slower, the reference for the tests."""
    rules = _FastRenamer(table, model_name=model_name, target=target)
    return module.visit(_ReferenceRenamer(rules))


def rename_docs(node: cst.ClassDef, table: RenameTable) -> cst.ClassDef:
    """Rename only the string tokens and comments of one parent class (R-NAME-10).

    Args:
        node: the renamed parent class about to be merged.
        table: the per-class table for (lowercase(old) -> lowercase(new)).

    Returns:
        The class with its strings and comments renamed and ``# Copied from`` ones deleted.
    """
    return _FastRenamer(table, model_name=None, target="").walk(node)


def rename_docs_reference(node: cst.ClassDef, table: RenameTable) -> cst.ClassDef:
    """``rename_docs`` by libcst's traversal: the reference for the tests."""
    renamed = node.visit(_ReferenceRenamer(_FastRenamer(table, model_name=None, target="")))
    if not isinstance(renamed, cst.ClassDef):  # pragma: no cover - a ClassDef never removes itself
        raise TypeError(f"renaming a class produced {type(renamed).__name__}")
    return renamed
