"""Build a merged class: a modular class over its (renamed) parent class (R-CLS-1..15).

The output class is the parent's node with the modular class's name, merged bases and
decorators, and a body assembled from docstrings, attributes and methods of both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from daemon.converter.inventory import code_of
from daemon.converter.resolve import dotted_name
from daemon.converter.supercall import ClassRecords, is_docstring_like, rewrite_method

NO_INHERIT = "no_inherit_decorator"
# R-CLS-7 removal: one empty line, `def` with a one-line signature, then `raise …Error(`.
_REMOVAL = re.compile(r"\ndef [^\n]*\n    raise[^\n]*Error\(")


class MergeError(Exception):
    """A merge that cannot go on; ``node`` locates the offending modular statement."""

    def __init__(self, message: str, node: cst.CSTNode) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


def raw_common_suffix(a: str, b: str) -> str:
    """The longest common suffix, whole strings allowed (R-CLS-3 [5.23])."""
    length = 0
    for left, right in zip(reversed(a), reversed(b), strict=False):
        if left != right:
            break
        length += 1
    return a[len(a) - length :] if length else ""


def merge_bases(modular: cst.ClassDef, parent: cst.ClassDef, base: str) -> list[cst.Arg]:
    """R-CLS-3: the parent's bases with additional modular bases swapped in or appended."""
    for arg in modular.bases:
        if dotted_name(arg.value) is None:
            raise MergeError(  # R-ERR-5
                f"class {modular.name.value}: base {code_of(arg.value)!r} is not a dotted name",
                arg,
            )
    additional = [arg for arg in modular.bases if dotted_name(arg.value) != base]
    result: list[cst.Arg] = []
    for arg in parent.bases:
        if isinstance(arg.value, cst.Name):
            for extra in additional:
                suffix = raw_common_suffix(arg.value.value, dotted_name(extra.value) or "")
                if suffix and suffix[0].isupper():
                    arg = arg.with_changes(value=extra.value)
                    additional.remove(extra)
                    break
        result.append(arg)
    parent_names = {dotted_name(arg.value) for arg in parent.bases}
    result += [arg for arg in additional if dotted_name(arg.value) not in parent_names]
    names = [dotted_name(arg.value) for arg in result]
    if "nn.Module" in names and "GradientCheckpointingLayer" in names:
        result = [arg for arg in result if dotted_name(arg.value) != "nn.Module"]
    return result


def merge_decorators(
    modular: cst.ClassDef | cst.FunctionDef, parent: cst.ClassDef | cst.FunctionDef
) -> Sequence[cst.Decorator]:
    """R-CLS-4: ``no_inherit_decorator`` clears them, else the modular's, else the parent's."""
    texts = [code_of(d.decorator) for d in modular.decorators]
    if NO_INHERIT in texts:
        if len(texts) > 1:
            raise MergeError(  # R-ERR-6
                f"{modular.name.value}: {NO_INHERIT} must be the only decorator, got "
                + ", ".join(texts),
                modular.decorators[0],
            )
        return ()
    return modular.decorators if modular.decorators else parent.decorators


def _attribute_key(statement: cst.CSTNode) -> str | None:
    """R-CLS-6: the key of a one-assignment or one-annotated-assignment body line."""
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign):
        target = small.targets[0].target
        return target.value if isinstance(target, cst.Name) else code_of(target)
    if isinstance(small, cst.AnnAssign):
        target = small.target
        return target.value if isinstance(target, cst.Name) else code_of(target)
    return None


def _is_deletion(statement: cst.CSTNode) -> bool:
    """``name = AttributeError(...)`` deletes the parent's attribute (R-CLS-6)."""
    assert isinstance(statement, cst.SimpleStatementLine)
    small = statement.body[0]
    value = small.value if isinstance(small, cst.Assign | cst.AnnAssign) else None
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "AttributeError"
    )


def _is_property(method: cst.FunctionDef) -> bool:
    first = method.decorators[0].decorator if method.decorators else None
    return isinstance(first, cst.Name) and first.value == "property"


def method_slots(body: Sequence[cst.BaseStatement]) -> dict[str, cst.FunctionDef]:
    """R-CLS-7: methods by slot; a second definition makes a property/setter pair."""
    slots: dict[str, cst.FunctionDef] = {}
    for statement in body:
        if not isinstance(statement, cst.FunctionDef):
            continue
        name = statement.name.value
        if name not in slots:
            slots[name] = statement
        elif _is_property(statement):
            slots[f"{name}_setter"] = slots[name]
            slots[name] = statement
        else:
            slots[f"{name}_setter"] = statement
    return slots


def _is_removal(method: cst.FunctionDef) -> bool:
    """R-CLS-7: the layout-sensitive ``raise …Error(`` pattern that drops a parent method."""
    return _REMOVAL.match(code_of(method)) is not None


def merge_params(modular: cst.Parameters, parent: cst.Parameters) -> cst.Parameters:
    """R-CLS-9: ``**super_kwargs`` takes the parent's parameters, overridden in place."""
    star = modular.star_kwarg
    if star is None or star.name.value != "super_kwargs":
        return modular
    regular = {param.name.value: param for param in parent.params}
    for param in modular.params[1:]:
        regular[param.name.value] = param
    return modular.with_changes(params=list(regular.values()), star_kwarg=parent.star_kwarg)


def _merge_method(modular: cst.FunctionDef, parent: cst.FunctionDef) -> cst.FunctionDef:
    """R-CLS-7: the parent's method with the modular body, parameters and decorators."""
    body = modular.body
    if isinstance(body, cst.IndentedBlock) and not any(map(is_docstring_like, body.body)):
        docstrings = [s for s in _statements(parent) if is_docstring_like(s)]
        body = body.with_changes(body=[*docstrings, *body.body])
    return parent.with_changes(
        body=body,
        params=merge_params(modular.params, parent.params),
        decorators=merge_decorators(modular, parent),
        returns=modular.returns if modular.returns is not None else parent.returns,
    )


def _statements(node: cst.ClassDef | cst.FunctionDef) -> Sequence[cst.BaseStatement]:
    body = node.body
    return body.body if isinstance(body, cst.IndentedBlock) else ()


@dataclass
class _Parts:
    docstrings: list[cst.BaseStatement]
    attributes: dict[str, cst.BaseStatement]
    methods: dict[str, cst.FunctionDef]


def _parts(node: cst.ClassDef) -> _Parts:
    statements = _statements(node)
    attributes: dict[str, cst.BaseStatement] = {}
    for statement in statements:
        key = _attribute_key(statement)
        if key is not None:
            attributes[key] = statement
    return _Parts(
        docstrings=[s for s in statements if is_docstring_like(s)],
        attributes=attributes,
        methods=method_slots(statements),
    )


def _merge_attributes(
    modular: cst.ClassDef, parent: _Parts
) -> tuple[list[cst.BaseStatement], set[str]]:
    """R-CLS-6: parent attributes with modular overrides in place, deletions and additions."""
    merged = dict(parent.attributes)
    kept: set[str] = set()
    for statement in _statements(modular):
        key = _attribute_key(statement)
        if key is None:
            continue
        if _is_deletion(statement):
            if key not in merged:
                raise MergeError(  # R-ERR-7
                    f"class {modular.name.value}: `{key} = AttributeError()` deletes an "
                    "attribute the parent class does not have",
                    statement,
                )
            del merged[key]
            kept.discard(key)
            continue
        merged[key] = statement
        kept.add(key)
    return list(merged.values()), kept


def merge_class(
    modular: cst.ClassDef,
    parent: cst.ClassDef,
    base: str,
) -> cst.ClassDef:
    """Merge ``modular`` (whose model-specific base is ``base``) with its renamed ``parent``.

    Args:
        modular: the class as written in the modular file.
        parent: the renamed parent class, after the per-class doc renaming (R-NAME-10).
        base: the model-specific base name as written in the modular file.

    Returns:
        The merged class node (R-CLS-2..15).

    Raises:
        MergeError: R-ERR-5/6/7 conditions, with the offending node.
        UnrollError: a ``super()`` call without a parent method (R-ERR-7).
    """
    bases = merge_bases(modular, parent, base)
    final_bases = [dotted_name(arg.value) or "" for arg in bases]
    own = _parts(parent)
    mine = _parts(modular)
    records = ClassRecords()
    rewritten = {
        slot: rewrite_method(method, own.methods.get(slot), records, final_bases)
        for slot, method in mine.methods.items()
    }
    attributes, modular_attributes = _merge_attributes(modular, own)
    methods: list[cst.BaseStatement] = []
    for slot, method in own.methods.items():
        if method.name.value in modular_attributes:
            continue  # [5.23] an attribute of the same name replaces the method
        if slot not in mine.methods:
            methods.append(method)
        elif not _is_removal(mine.methods[slot]):
            methods.append(_merge_method(rewritten[slot], method))
    methods += [m for slot, m in rewritten.items() if slot not in own.methods]
    docstrings = mine.docstrings or own.docstrings
    body: list[cst.BaseStatement] = [*docstrings, *attributes, *methods]
    if not body:
        body = [cst.SimpleStatementLine(body=[cst.Pass()])]
    return parent.with_changes(
        name=modular.name,
        bases=bases,
        decorators=merge_decorators(modular, parent),
        body=cst.IndentedBlock(body=body),
    )
