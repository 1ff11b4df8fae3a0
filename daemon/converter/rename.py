"""libcst transformers that rename a parent tree (R-NAME-6) or one class's docs (R-NAME-10).

Both apply ``naming.rename_text`` token by token: to identifiers (module renaming only), plain
string literals and comments, and both delete ``# Copied from`` comments and strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from string import ascii_letters
from typing import TypeVar

import libcst as cst

from daemon.converter import FILE_TYPES  # R-NAME-6: sibling modules point at the child's files
from daemon.converter.naming import RenameTable, rename_text

_COPIED_FROM = "# Copied from"


def _has_copied_from(text: str) -> bool:
    return _COPIED_FROM in text


def _emptied_string(token: str) -> str:
    """An empty literal with the same prefix, standing in for a deleted string token."""
    prefix = token[: len(token) - len(token.lstrip(ascii_letters))]
    return prefix + '""'


class _TextRenamer(cst.CSTTransformer):
    """Renames string tokens and comments; deletes the ones containing ``# Copied from``.

    f-string literal text (``FormattedStringText``) is deliberately left alone (R-NAME-6).
    """

    def __init__(self, table: RenameTable) -> None:
        super().__init__()
        self.table = table
        self._deleted_lines: list[cst.SimpleStatementLine] = []

    def leave_Comment(self, original_node: cst.Comment, updated_node: cst.Comment) -> cst.Comment:
        return _renamed_token(updated_node, self.table)

    def leave_EmptyLine(
        self, original_node: cst.EmptyLine, updated_node: cst.EmptyLine
    ) -> cst.EmptyLine:
        # R-NAME-6: a whole-line ``# Copied from`` comment leaves a blank line behind (ruff
        # removes it where a blank line is not allowed, between a decorator and its class).
        if original_node.comment is not None and _has_copied_from(original_node.comment.value):
            return updated_node.with_changes(
                indent=False, whitespace=cst.SimpleWhitespace(""), comment=None
            )
        return updated_node

    def leave_TrailingWhitespace(
        self, original_node: cst.TrailingWhitespace, updated_node: cst.TrailingWhitespace
    ) -> cst.TrailingWhitespace:
        if original_node.comment is not None and _has_copied_from(original_node.comment.value):
            return updated_node.with_changes(comment=None, whitespace=cst.SimpleWhitespace(""))
        return updated_node

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        # R-NAME-6: the whole token is renamed, prefix and quotes included.
        if _has_copied_from(original_node.value):
            return updated_node.with_changes(value=_emptied_string(original_node.value))
        return _renamed_token(updated_node, self.table)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        # A string statement (a docstring, say) containing ``# Copied from`` goes entirely,
        # rather than leaving an empty literal behind.
        kept = [
            statement
            for original, statement in zip(original_node.body, updated_node.body, strict=True)
            if not _is_copied_from_string(original)
        ]
        if len(kept) == len(updated_node.body):
            return updated_node
        if kept:
            return updated_node.with_changes(body=kept)
        # Nothing left: libcst would drop an empty line together with its comments, so the
        # line is kept as it is and the enclosing block folds it away (``_fold_deleted``).
        self._deleted_lines.append(updated_node)
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body, footer = self._fold_deleted(updated_node.body, updated_node.footer)
        return updated_node.with_changes(body=body, footer=footer)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, footer = self._fold_deleted(updated_node.body, updated_node.footer)
        return updated_node.with_changes(body=body, footer=footer)

    def _fold_deleted(
        self, body: Sequence[cst.BaseStatement], footer: Sequence[cst.EmptyLine]
    ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        """Drop deleted statement lines, moving their leading lines onto what follows them."""
        kept: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []
        for statement in body:
            if any(statement is deleted for deleted in self._deleted_lines):
                carried.extend(_leading_lines(statement))
                continue
            if carried:
                statement = statement.with_changes(
                    leading_lines=[*carried, *_leading_lines(statement)]
                )
                carried = []
            kept.append(statement)
        return kept, [*carried, *footer]


_Token = TypeVar("_Token", cst.Name, cst.SimpleString, cst.Comment)


def _renamed_token(node: _Token, table: RenameTable) -> _Token:
    """``node`` with its text renamed; the same node when nothing changes (most tokens)."""
    value = rename_text(node.value, table)
    return node if value == node.value else node.with_changes(value=value)


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


class _ModuleRenamer(_TextRenamer):
    """Also renames identifiers and imports, as R-NAME-6 asks for a whole parent module."""

    def __init__(self, table: RenameTable, *, model_name: str, target: str) -> None:
        super().__init__(table)
        self.model_name = model_name
        # The table renamed into the ``_`` form (R-NAME-4 step 1), even when the target came
        # back from the casing table dashed (``audio-spectrogram-transformer``).
        self.target = target.replace("-", "_")

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return _renamed_token(updated_node, self.table)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom:
        if not original_node.relative:
            return original_node  # R-NAME-6: absolute from-imports are restored verbatim
        module = updated_node.module
        if self.target != self.model_name and isinstance(module, cst.Name):
            return updated_node.with_changes(module=self._sibling_module(module))
        return updated_node

    def _sibling_module(self, module: cst.Name) -> cst.Name:
        """``.configuration_<target>`` -> ``.configuration_<model name>`` (R-NAME-6)."""
        for file_type in FILE_TYPES:
            if module.value == f"{file_type}_{self.target}":
                return module.with_changes(value=f"{file_type}_{self.model_name}")
        return module


def rename_module(
    module: cst.Module, table: RenameTable, *, model_name: str, target: str
) -> cst.Module:
    """Rename a whole parent module with ``table`` (R-NAME-6).

    Identifiers (attributes, keywords, parameters, import names and relative module names),
    plain string tokens and comments are renamed; f-string literal text and absolute
    ``from X import ...`` statements are not. ``# Copied from`` comments and strings are deleted.

    Args:
        module: the parsed parent module.
        table: the parent's rename table (R-NAME-8).
        model_name: the child's model name, for single-component sibling module names.
        target: the rename target (lowercase prefix) the table renames into.

    Returns:
        The renamed module.
    """
    return module.visit(_ModuleRenamer(table, model_name=model_name, target=target))


def rename_docs(node: cst.ClassDef, table: RenameTable) -> cst.ClassDef:
    """Rename only the string tokens and comments of one parent class (R-NAME-10).

    Args:
        node: the renamed parent class about to be merged.
        table: the per-class table for (lowercase(old) -> lowercase(new)).

    Returns:
        The class with its strings and comments renamed and ``# Copied from`` ones deleted.
    """
    renamed = node.visit(_TextRenamer(table))
    if not isinstance(renamed, cst.ClassDef):  # pragma: no cover - a ClassDef never removes itself
        raise TypeError(f"renaming a class produced {type(renamed).__name__}")
    return renamed
