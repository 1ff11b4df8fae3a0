"""Read-only inventory of one module: its named top-level things and their dependencies.

R-TOP-1 (what is recorded, first position and last node for duplicates), R-TOP-3 (a
dependency is an identifier token naming an inventory key) and R-TOP-5 (pseudo-nodes for
``X[...] = v`` / ``X.a = v``). The same scan serves the modular file and every renamed parent.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import libcst as cst

from daemon.converter.memo import NodeMemo
from daemon.converter.resolve import is_plain_import

Kind = Literal["class", "function", "assignment", "pseudo"]
TopNode = cst.ClassDef | cst.FunctionDef | cst.SimpleStatementLine
_EMPTY = cst.Module(body=[])


_CODES: NodeMemo[str] = NodeMemo()


def code_of(node: cst.CSTNode) -> str:
    """The source text of a node, rendered on its own; cached per node object (nodes are
    immutable, and a cached parent's nodes are the same objects on every conversion)."""
    code = _CODES.get(node)
    return code if code is not None else _CODES.put(node, _EMPTY.code_for_node(node))


def is_import_line(node: cst.CSTNode) -> bool:
    """A statement line made only of ``import``/``from ... import``."""
    return isinstance(node, cst.SimpleStatementLine) and all(
        isinstance(s, cst.Import | cst.ImportFrom) for s in node.body
    )


def _root_name(node: cst.BaseExpression) -> str | None:
    """``X`` for ``X[...]``, ``X.a`` or ``X.a[...]``; None for anything else."""
    while isinstance(node, cst.Subscript | cst.Attribute):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


@dataclass
class Inventory:
    """The recorded top-level things of one file (R-TOP-1)."""

    nodes: dict[str, TopNode] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    imports: list[cst.SimpleStatementLine] = field(default_factory=list)
    guarded: list[cst.If] = field(default_factory=list)
    all_node: cst.SimpleStatementLine | None = None
    getattr_node: cst.SimpleStatementLine | None = None
    pseudo_of: dict[str, list[str]] = field(default_factory=dict)  # X -> pseudo keys

    def record(self, name: str, node: TopNode, kind: Kind) -> None:
        """Record a definition: the last node wins, the first position stays (R-TOP-1)."""
        self.positions.setdefault(name, len(self.positions))
        self.nodes[name] = node
        self.kinds[name] = kind

    def names_of(self, kind: Kind) -> list[str]:
        """The recorded names of one kind, in position order."""
        return [name for name in self.nodes if self.kinds[name] == kind]

    @property
    def classes(self) -> dict[str, cst.ClassDef]:
        return {n: c for n, c in self.nodes.items() if isinstance(c, cst.ClassDef)}


class GatherInventoryVisitor(cst.CSTVisitor):
    """Walk a module and fill an ``Inventory`` (R-TOP-1, R-TOP-5, R-TOP-13/14)."""

    def __init__(self, module: cst.Module, *, modular: bool) -> None:
        super().__init__()
        self.modular = modular
        self.inventory = Inventory()
        self._top = {id(statement) for statement in module.body}
        self._definition_depth = 0

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        # R-TOP-1 edges: classes are recorded at any depth.
        self.inventory.record(node.name.value, node, "class")
        self._definition_depth += 1

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._definition_depth -= 1

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if id(node) in self._top:
            self.inventory.record(node.name.value, node, "function")
        self._definition_depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._definition_depth -= 1

    def visit_If(self, node: cst.If) -> None:
        # R-TOP-1: an `if` outside definitions whose body holds an import line is a guarded
        # import; an `elif` is an `If` of its own and may be entered alone too (R-IMP-1).
        if self._definition_depth == 0 and any(is_import_line(s) for s in node.body.body):
            self.inventory.guarded.append(node)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        if id(node) not in self._top:
            return False
        if is_import_line(node):
            self._record_import(node)
        elif len(node.body) == 1 and isinstance(node.body[0], cst.Assign):
            self._record_assignment(node, node.body[0])
        return False

    def _record_import(self, node: cst.SimpleStatementLine) -> None:
        statement = node.body[0]
        model_import = isinstance(statement, cst.ImportFrom) and not is_plain_import(statement)
        if self.modular and model_import:
            return  # model imports register parents instead (R-PAR-1)
        self.inventory.imports.append(node)

    def _record_assignment(self, node: cst.SimpleStatementLine, assign: cst.Assign) -> None:
        if len(assign.targets) != 1:
            return  # multi-target assignments are dropped (R-TOP-1)
        target = assign.targets[0].target
        if isinstance(target, cst.Name):
            if self.modular and target.value == "__all__":
                self.inventory.all_node = node
            elif self.modular and target.value == "__getattr__":
                self.inventory.getattr_node = node
            else:
                self.inventory.record(target.value, node, "assignment")
        elif isinstance(target, cst.Subscript | cst.Attribute):
            owner = _root_name(target)
            if owner is not None:  # R-TOP-5: a pseudo-node attached to its owner
                key = code_of(node).strip()
                self.inventory.record(key, node, "pseudo")
                self.inventory.pseudo_of.setdefault(owner, []).append(key)


def gather_inventory(module: cst.Module, *, modular: bool) -> Inventory:
    """The R-TOP-1 inventory of ``module``: what ``GatherInventoryVisitor`` finds, walking the
    statements only. Classes, functions, ``if`` blocks and statement lines never occur inside
    an expression, and the visitor spent most of its time dispatching on those."""
    visitor = GatherInventoryVisitor(module, modular=modular)
    for statement in module.body:
        _visit_statement(visitor, statement)
    return visitor.inventory


def gather_inventory_reference(module: cst.Module, *, modular: bool) -> Inventory:
    """``gather_inventory`` by libcst's visitor over every node: the reference for the tests."""
    visitor = GatherInventoryVisitor(module, modular=modular)
    module.visit(visitor)
    return visitor.inventory


# Fields holding statements (or what holds them: suites, else/except/finally/case clauses), in
# source order for every compound statement.
_BLOCK_FIELDS = ("body", "handlers", "orelse", "finalbody", "cases")


def _visit_statement(visitor: GatherInventoryVisitor, node: cst.CSTNode) -> None:
    """The visitor's calls, visit then children then leave, for the statements under ``node``
    in the order libcst's traversal reaches them."""
    if isinstance(node, cst.SimpleStatementLine):
        visitor.visit_SimpleStatementLine(node)  # never descends: returns False
        return
    if isinstance(node, cst.ClassDef):
        visitor.visit_ClassDef(node)
    elif isinstance(node, cst.FunctionDef):
        visitor.visit_FunctionDef(node)
    elif isinstance(node, cst.If):
        visitor.visit_If(node)
    for name in _BLOCK_FIELDS:
        value = getattr(node, name, None)
        if isinstance(value, cst.IndentedBlock):
            for statement in value.body:
                _visit_statement(visitor, statement)
        elif isinstance(value, cst.CSTNode) and not isinstance(value, cst.BaseSuite):
            _visit_statement(visitor, value)  # else, elif, finally
        elif isinstance(value, list | tuple):
            for clause in value:  # except handlers, match cases
                _visit_statement(visitor, clause)
    if isinstance(node, cst.ClassDef):
        visitor.leave_ClassDef(node)
    elif isinstance(node, cst.FunctionDef):
        visitor.leave_FunctionDef(node)


class GatherIdentifiersVisitor(cst.CSTVisitor):
    """Every identifier token of a node (R-TOP-3); string contents are not identifiers.

    ``identifiers`` walks the dataclass fields directly, which gives the same names several
    times faster; this visitor is the reference it is tested against.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _subclasses(base: type) -> frozenset[type]:
    found: set[type] = set()
    stack = [base]
    while stack:
        kind = stack.pop()
        found.add(kind)
        stack.extend(kind.__subclasses__())
    return frozenset(found)


# The hot walks test ``type(x) in NODE_TYPES`` rather than ``isinstance(x, cst.CSTNode)``:
# CSTNode is an ABC, and an isinstance against it costs ~230 ns where a set lookup costs ~45
# ns; a cold conversion makes tens of millions of these tests. libcst defines every node class
# when it is imported, and the tests check this set against isinstance over a corpus file.
NODE_TYPES = _subclasses(cst.CSTNode)
SEQUENCE_TYPES = frozenset({list, tuple})


@functools.cache
def child_fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(node_type))


def descendants(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``root`` and every node below it (depth first, later fields first)."""
    stack: list[Any] = [root]  # nodes, and the non-node values of their fields
    while stack:
        node = stack.pop()
        kind: type[cst.CSTNode] = type(node)
        if kind not in NODE_TYPES:
            continue
        yield node
        for name in child_fields(kind):
            value = getattr(node, name)
            if type(value) in NODE_TYPES:
                stack.append(value)
            elif type(value) in SEQUENCE_TYPES:
                stack.extend(value)


# Fields that hold only whitespace, comments and punctuation: never an identifier or a string.
_LAYOUT_FIELDS = frozenset(
    {
        "lpar",
        "rpar",
        "comma",
        "semicolon",
        "leading_lines",
        "lines_after_decorators",
        "trailing_whitespace",
        "header",
        "footer",
        "asynchronous",
        "equal",
        "dot",
        "operator",
        "colon",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "relative",
    }
)


@functools.cache
def code_fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    """``child_fields`` without the layout ones: where identifiers and strings can be."""
    return tuple(
        name
        for name in child_fields(node_type)
        if name not in _LAYOUT_FIELDS and not name.startswith("whitespace")
    )


def _collect_names(root: cst.CSTNode) -> set[str]:
    # ``descendants`` inlined, over the code fields only: this runs on every merged class of
    # every conversion, and a generator costs a resumption per node.
    names: set[str] = set()
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        kind: type[cst.CSTNode] = type(node)
        if kind is cst.Name:
            names.add(node.value)
            continue
        if kind not in NODE_TYPES:
            continue
        for name in code_fields(kind):
            value = getattr(node, name)
            if type(value) in NODE_TYPES:
                stack.append(value)
            elif type(value) in SEQUENCE_TYPES:
                stack.extend(value)
    return names


_IDENTIFIERS: NodeMemo[frozenset[str]] = NodeMemo()


def identifiers(node: cst.CSTNode) -> frozenset[str]:
    """The identifier tokens of ``node``, cached per node object (nodes are immutable)."""
    names = _IDENTIFIERS.get(node)
    return names if names is not None else _IDENTIFIERS.put(node, frozenset(_collect_names(node)))


@dataclass
class Namespace:
    """Nodes by name plus their direct dependencies, for dependency closure (R-TOP-3)."""

    nodes: dict[str, TopNode]
    kinds: dict[str, Kind]
    pseudo_of: dict[str, list[str]]
    _direct: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def define(self, name: str, node: TopNode, kind: Kind) -> None:
        """Define or replace ``name`` before any dependency is computed (R-PAR-7 overlay)."""
        self.nodes[name] = node
        self.kinds[name] = kind
        self._direct.pop(name, None)

    def freeze(self) -> None:
        """Compute every name's dependencies now, against the names known now.

        R-PAR-6/7: a parent's dependency map is computed once its modular overlay is in
        place; names injected afterwards from another parent bring their own entries and do
        not become dependencies of what was analysed before (evolla's ``repeat_kv``).
        """
        for name in self.nodes:
            self.direct(name)

    def inject(self, name: str, node: TopNode, kind: Kind, dependencies: frozenset[str]) -> None:
        """Install a name from another name space together with its dependency entry."""
        self.nodes[name] = node
        self.kinds[name] = kind
        self._direct[name] = dependencies

    def direct_of(self, node: cst.CSTNode, own: str) -> set[str]:
        """Names of this namespace occurring as identifiers in ``node``, minus ``own``."""
        found = {n for n in identifiers(node) if n in self.nodes}
        found.discard(own)
        for pseudo in self.pseudo_of.get(own, ()):  # R-TOP-5: pseudo-nodes travel with X
            if pseudo in self.nodes:
                found.add(pseudo)
                found |= self.direct(pseudo) - {own}
        return found

    def direct(self, name: str) -> frozenset[str]:
        """The direct dependencies of a recorded name (cached)."""
        cached = self._direct.get(name)
        if cached is None:
            cached = frozenset(self.direct_of(self.nodes[name], name))
            self._direct[name] = cached
        return cached

    def is_closable(self, name: str) -> bool:
        """Functions, assignments and pseudo-nodes close recursively; classes do not."""
        return self.kinds.get(name) in ("function", "assignment", "pseudo")

    def closure(self, names: Iterable[str]) -> set[str]:
        """R-TOP-3: everything reached from ``names`` through functions and assignments."""
        found: set[str] = set()
        queue = deque(n for n in names if self.is_closable(n))
        expanded: set[str] = set()
        while queue:
            current = queue.popleft()
            if current in expanded:
                continue
            expanded.add(current)
            for dependency in self.direct(current):
                found.add(dependency)
                if self.is_closable(dependency) and dependency not in expanded:
                    queue.append(dependency)
        return found

    def augmented(self, names: set[str], own: str) -> set[str]:
        """Direct dependencies extended by the closure of their functions and assignments."""
        return (names | self.closure(names)) - {own}

    def dependencies(self, name: str) -> set[str]:
        """R-TOP-3 for a recorded name: direct plus function/assignment closure."""
        return self.augmented(set(self.direct(name)), name)
