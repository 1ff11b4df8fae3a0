"""Method bodies of merged classes: ``super()`` unrolling and explicit parent calls.

R-CLS-10 (unroll the first ``super().<same>(...)`` statement), R-CLS-11 (merge the parent
body with the statements after it, with class-wide ``del``/reassignment records), R-CLS-12
(``post_init`` last), R-CLS-13 (``super().__init__`` first) and R-CLS-14 (``X.f(self, ...)``
becomes ``super().f(...)`` for final bases).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import libcst as cst

from daemon.converter.inventory import code_of, identifiers
from daemon.converter.resolve import dotted_name

_DOCSTRING_PAIR = re.compile(r'"""[\s\S]*"""')
_COMMENT = re.compile(r"#[^\n]*")
_SPACES_BEFORE_BREAK = re.compile(r"[ \t]+\n")


class UnrollError(Exception):
    """The parent class lacks the method a ``super()`` call unrolls into (R-ERR-7)."""

    def __init__(self, method: str, node: cst.CSTNode) -> None:
        super().__init__(method)
        self.method = method
        self.node = node


def is_docstring_like(statement: cst.CSTNode) -> bool:
    """R-CLS-5: a line made of one string literal whose token holds a triple-double-quote pair."""
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
        return False
    expression = statement.body[0]
    return (
        isinstance(expression, cst.Expr)
        and isinstance(expression.value, cst.SimpleString)
        and _DOCSTRING_PAIR.search(expression.value.value) is not None
    )


def comment_free(statement: cst.CSTNode) -> str:
    """R-CLS-11 step 3: the text without comments, trimmed, without spaces before breaks."""
    text = _COMMENT.sub("", code_of(statement)).strip()
    return _SPACES_BEFORE_BREAK.sub("\n", text)


def _single(statement: cst.CSTNode) -> cst.BaseSmallStatement | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        return statement.body[0]
    return None


def assignment_key(statement: cst.CSTNode) -> str | None:
    """The source text of the first target of a single-assignment line."""
    small = _single(statement)
    if isinstance(small, cst.Assign):
        return code_of(small.targets[0].target)
    return None


def _del_key(statement: cst.CSTNode) -> str | None:
    small = _single(statement)
    return code_of(small.target) if isinstance(small, cst.Del) else None


def _annotated_key(statement: cst.CSTNode) -> str | None:
    small = _single(statement)
    return code_of(small.target) if isinstance(small, cst.AnnAssign) else None


def _is_super_call(statement: cst.CSTNode, method: str) -> bool:
    """R-CLS-10: an expression or return statement whose whole value is ``super().<method>(…)``."""
    small = _single(statement)
    value = small.value if isinstance(small, cst.Expr | cst.Return) else None
    if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Attribute):
        return False
    receiver = value.func.value
    return (
        value.func.attr.value == method
        and isinstance(receiver, cst.Call)
        and isinstance(receiver.func, cst.Name)
        and receiver.func.value == "super"
        and not receiver.args
    )


@dataclass
class ClassRecords:
    """R-CLS-11: ``del`` and reassignment records, shared by all methods of one class."""

    deleted: set[str] = field(default_factory=set)
    reassigned: dict[str, cst.BaseStatement] = field(default_factory=dict)


def _merge_parent_body(
    parent_body: Sequence[cst.BaseStatement],
    following: Sequence[cst.BaseStatement],
    records: ClassRecords,
) -> list[cst.BaseStatement]:
    """R-CLS-11: the parent body with deletions and in-place replacements, then new lines."""
    for statement in following:
        key = assignment_key(statement)
        if key is not None:
            records.reassigned[key] = statement
        deleted = _del_key(statement)
        if deleted is not None:
            records.deleted.add(deleted)
    result: list[cst.BaseStatement] = []
    used: set[int] = set()
    for statement in parent_body:
        if is_docstring_like(statement):
            continue
        key = assignment_key(statement)
        if key is not None and key in records.deleted:
            continue
        if key is not None and key in records.reassigned:
            replacement = records.reassigned[key]
            used.add(id(replacement))
            result.append(replacement)
            continue
        annotated = _annotated_key(statement)
        if annotated is not None and annotated in records.deleted:
            continue  # [5.23] `del self.x` also drops `self.x: T = ...`
        result.append(statement)
    texts = {comment_free(s) for s in result}
    for statement in following:
        if _del_key(statement) is not None or id(statement) in used:
            continue
        text = comment_free(statement)
        if text not in texts:
            texts.add(text)
            result.append(statement)
    return result


def _post_init_last(body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """R-CLS-12: move the first ``self.post_init(`` statement to the end."""
    for index, statement in enumerate(body):
        if "self.post_init(" in comment_free(statement):
            if index != len(body) - 1:
                return [*body[:index], *body[index + 1 :], statement]
            break
    return body


def _leading_docstrings(body: Sequence[cst.BaseStatement]) -> int:
    count = 0
    while count < len(body) and is_docstring_like(body[count]):
        count += 1
    return count


def _super_init_first(
    body: list[cst.BaseStatement], parent_body: Sequence[cst.BaseStatement]
) -> list[cst.BaseStatement]:
    """R-CLS-13: when the parent had ``super().__init__`` first, the result has it first too."""
    start = _leading_docstrings(parent_body)
    for index, statement in enumerate(parent_body):
        if index != start and "super().__init__" in code_of(statement):
            return body
    start = _leading_docstrings(body)
    for index in range(start, len(body)):
        if "super().__init__" in code_of(body[index]):
            if index != start:
                moved = body[index]
                rest = body[start:index] + body[index + 1 :]
                return [*body[:start], moved, *rest]
            break
    return body


def _is_bare_self(arg: cst.Arg) -> bool:
    """R-CLS-14: the positional argument ``self``, which ``super()`` makes redundant."""
    value = arg.value
    return (
        arg.keyword is None
        and not arg.star
        and isinstance(value, cst.Name)
        and value.value == "self"
    )


class RewriteParentCalls(cst.CSTTransformer):
    """R-CLS-14: ``Base.f(self, ...)`` becomes ``super().f(...)`` for the final bases."""

    def __init__(self, final_bases: Sequence[str]) -> None:
        super().__init__()
        self.targets = set(final_bases)
        if "GradientCheckpointingLayer" in self.targets:
            self.targets.add("nn.Module")
        if any("PreTrainedModel" in base for base in final_bases):
            self.targets.add("PreTrainedModel")
        self.roots = frozenset(target.split(".")[0] for target in self.targets)

    def rewrite(self, statement: cst.BaseStatement) -> cst.BaseStatement:
        """``statement`` rewritten; as it is, without libcst's traversal, when none of its
        identifiers starts a target (a call ``Base.f(...)`` names ``Base``)."""
        if not self.roots & identifiers(statement):
            return statement
        return cast(cst.BaseStatement, statement.visit(self))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = updated_node.func
        if not isinstance(func, cst.Attribute) or dotted_name(func.value) not in self.targets:
            return updated_node
        args = list(updated_node.args)
        if args and _is_bare_self(args[0]):
            args = args[1:]
        receiver = cst.Call(func=cst.Name("super"))
        return updated_node.with_changes(func=func.with_changes(value=receiver), args=args)


def rewrite_method(
    method: cst.FunctionDef,
    parent_method: cst.FunctionDef | None,
    records: ClassRecords,
    final_bases: Sequence[str],
) -> cst.FunctionDef:
    """R-CLS-10..14 for one method defined in the modular class.

    Raises:
        UnrollError: a ``super().<name>(...)`` statement has no parent method to unroll into.
    """
    if not isinstance(method.body, cst.IndentedBlock):
        return method
    statements = list(method.body.body)
    name = method.name.value
    position = next((i for i, s in enumerate(statements) if _is_super_call(s, name)), None)
    before = statements if position is None else statements[:position]
    rewriter = RewriteParentCalls(final_bases)
    before = [rewriter.rewrite(s) for s in before]
    if position is None:
        return method.with_changes(body=method.body.with_changes(body=before))
    if parent_method is None or not isinstance(parent_method.body, cst.IndentedBlock):
        raise UnrollError(name, statements[position])
    parent_body = list(parent_method.body.body)
    merged = _merge_parent_body(parent_body, statements[position + 1 :], records)
    body = _post_init_last([*before, *merged])
    body = _super_init_first(body, parent_body)
    return method.with_changes(body=method.body.with_changes(body=body))
