"""The import block of each output: pool, selection by scope analysis, torch guarding.

R-IMP-1 (one ordered pool per modular file), R-IMP-2 (keep what the file's nodes, or the pool
itself, reference, first binding wins), R-IMP-3 (``__future__`` falls out naturally), R-IMP-4
(torch guarding for ``image_processing_pil`` and ``feature_extraction``) and R-IMP-8 (plain
lines first, then guarded blocks, the rebuilt torch blocks last).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import libcst as cst
from libcst.metadata import (
    ExpressionContextProvider,
    ImportAssignment,
    MetadataWrapper,
    Scope,
    ScopeProvider,
)

from daemon.converter.inventory import (
    NODE_TYPES,
    SEQUENCE_TYPES,
    TopNode,
    code_fields,
    code_of,
    descendants,
    is_import_line,
)
from daemon.converter.memo import NodeMemo
from daemon.converter.resolve import dotted_name

PoolEntry = cst.SimpleStatementLine | cst.If
TORCH_GUARDED_TYPES = frozenset({"image_processing_pil", "feature_extraction"})


def build_pool(
    modular: Sequence[PoolEntry],
    cross_file: Sequence[PoolEntry],
    parents: Iterable[Sequence[PoolEntry]],
) -> list[PoolEntry]:
    """R-IMP-1: modular entries, cross-file imports, then parent entries not seen before."""
    pool = [*modular, *cross_file]
    seen = {code_of(entry).strip() for entry in pool}
    for entries in parents:
        for entry in entries:
            text = code_of(entry).strip()
            if text not in seen:
                seen.add(text)
                pool.append(entry)
    return pool


def used_import_names(pool: Sequence[PoolEntry], nodes: Sequence[PoolEntry | TopNode]) -> set[str]:
    """R-IMP-2 step 1: bound import names with a reference in pool + nodes.

    The scope analysis of the whole ``pool + nodes`` module is the reference; it is computed as
    the union of one analysis of ``pool + node`` per node, each cached by the code of pool and
    node, so a warm conversion only analyses the nodes that changed. The union is the same set:
    libcst resolves an access through its own scopes and the module scope only, and an import
    of the pool precedes every node, so more module-level bindings from other nodes never drop
    a reference to it. The one thing a node can add to another node's references is a binding
    of its own at module level: nodes that bind imports outside a function or class body, or
    declare ``global``/``nonlocal``, fall back to the whole-module analysis.
    """
    if any(not _composable(node) for node in nodes):
        return _scope_used(cst.Module(body=[*pool, *nodes]))
    bindings = [(entry, code_of(entry), _bound_roots(entry)) for entry in pool]
    used = set(_cached_used("".join(code for _, code, _ in bindings), pool, None, "", set()))
    for node in nodes:
        code = code_of(node)
        tokens = set(_TOKEN.findall(code))
        # Only pool entries binding a name the node's text mentions can be referenced by it.
        kept = [(entry, text) for entry, text, roots in bindings if roots & tokens]
        key = "".join(text for _, text in kept)
        used |= _cached_used(key, [entry for entry, _ in kept], node, code, tokens)
    return used


def _plainly_used(
    kept: Sequence[PoolEntry], node: PoolEntry | TopNode, tokens: set[str]
) -> frozenset[str] | None:
    """The scope analysis of ``kept + [node]`` when it can be read off the node's names, else
    None (then the analysis runs).

    That is when every pool name the node's text mentions is bound by a plain (undotted,
    non-star) import, occurs in the node only as identifiers in a position that always loads
    it (``x.attr``, a call, an argument, an annotation, ...) or cannot bind it (an attribute
    name, a keyword), never inside a string that could be a string annotation, and the node
    imports nothing itself. Then nothing in the node binds the name, so each load resolves to
    the module scope, which is the import: a name is used iff one of its occurrences loads it.
    """
    if "import" in tokens and _name_positions(node).imports:
        return None  # its own imports count when referenced (mask2former)
    names: set[str] = set()
    typing: set[str] = set()
    for entry in kept:
        bound = _bound_names(entry)
        if bound is None:
            return None
        names |= bound
        typing |= _typing_names(entry)
    names &= tokens
    if not names:
        return frozenset()
    loads = _name_positions(node)
    if any(name in loads.unsure for name in names):
        return None
    if any(word in names and name in typing for name, word in loads.hinted):
        return None  # a name in a string the analysis reads as an annotation
    return frozenset(names & loads.loaded)


_TOKEN = re.compile(r"\w+")


class _Bindings(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.roots: set[str] = set()
        self.names: set[str] = set()
        self.typing: set[str] = set()  # names bound by an import that mentions ``typing``
        self._from_typing = False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._from_typing = node.module is not None and "typing" in code_of(node.module)

    def leave_ImportFrom(self, original_node: cst.ImportFrom) -> None:
        self._from_typing = False

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        name = bound_name(node)
        self.names.add(name)
        self.roots.add(name.split(".")[0])
        if self._from_typing or "typing" in code_of(node.name):
            self.typing.add(name)


@dataclass(frozen=True)
class _Bound:
    """What the imports of one pool entry bind, from one walk of it."""

    names: frozenset[str] | None  # None when one is dotted
    typing: frozenset[str]  # those bound by an import that mentions ``typing``
    roots: frozenset[str]  # their first dotted parts; _EVERYTHING for a star


_BOUND: NodeMemo[_Bound] = NodeMemo()


def _bound(entry: PoolEntry) -> _Bound:
    found = _BOUND.get(entry)
    if found is None:
        finder = _Bindings()
        entry.visit(finder)
        plain = not any("." in name for name in finder.names)
        names = frozenset(finder.names) if plain else None
        # A star binds unknown names: keep such entries with every node.
        star = "import *" in code_of(entry) or not finder.roots
        roots = _EVERYTHING if star else frozenset(finder.roots)
        found = _BOUND.put(entry, _Bound(names, frozenset(finder.typing), roots))
    return found


def _bound_names(entry: PoolEntry) -> frozenset[str] | None:
    """The names the imports of a pool entry bind, or None when one is dotted (``import a.b``
    is referenced through ``a``, not a plain name). A star binds nothing the analysis sees."""
    return _bound(entry).names


def _typing_names(entry: PoolEntry) -> frozenset[str]:
    """The names of ``entry`` that may be ``typing`` objects (``Optional``, ``cast``, the
    ``typing`` module itself): libcst reads strings under those as annotations."""
    return _bound(entry).typing


@dataclass(frozen=True)
class _Positions:
    loaded: frozenset[str]  # names with an occurrence that loads them
    unsure: frozenset[str]  # names occurring anywhere else, possible string annotations too
    imports: bool  # an import statement somewhere in the node
    # (name, word): a word of a string whose nearest enclosing call or subscript is
    # ``name(...)``/``name[...]`` (or ``name.attr...``); a string annotation when ``name`` is a
    # typing import (``cast("T", x)``, ``Optional["T"]``), a message when it is ``logger``.
    hinted: frozenset[tuple[str, str]]


# (parent type, field): a bare name there is always loaded, never bound.
_LOADING = frozenset(
    {
        (cst.Attribute, "value"),
        (cst.Call, "func"),
        (cst.Arg, "value"),
        (cst.Subscript, "value"),
        (cst.Index, "value"),
        (cst.Annotation, "annotation"),
        (cst.Decorator, "decorator"),
        (cst.BinaryOperation, "left"),
        (cst.BinaryOperation, "right"),
        (cst.BooleanOperation, "left"),
        (cst.BooleanOperation, "right"),
        (cst.Comparison, "left"),
        (cst.ComparisonTarget, "comparator"),
        (cst.UnaryOperation, "expression"),
        (cst.IfExp, "test"),
        (cst.IfExp, "body"),
        (cst.IfExp, "orelse"),
        (cst.Return, "value"),
        (cst.Raise, "exc"),
        (cst.Assert, "test"),
        (cst.If, "test"),
        (cst.While, "test"),
        (cst.Param, "default"),
        (cst.Assign, "value"),
        (cst.AnnAssign, "value"),
        (cst.AugAssign, "value"),
        (cst.For, "iter"),
        (cst.DictElement, "key"),
        (cst.DictElement, "value"),
        (cst.ExceptHandler, "type"),
        (cst.Lambda, "body"),
        (cst.CompFor, "iter"),
        (cst.CompIf, "test"),
        (cst.WithItem, "item"),
        (cst.Slice, "lower"),
        (cst.Slice, "upper"),
        (cst.Slice, "step"),
        (cst.FormattedStringExpression, "expression"),
        (cst.Assert, "msg"),
        (cst.Expr, "value"),
        (cst.NamedExpr, "value"),
        (cst.Await, "expression"),
        (cst.Yield, "value"),
    }
)
# A bare name there is no variable at all.
_NEUTRAL = frozenset({(cst.Attribute, "attr"), (cst.Arg, "keyword")})
_POSITIONS: NodeMemo[_Positions] = NodeMemo()


def _name_positions(node: cst.CSTNode) -> _Positions:
    """Which names ``node`` surely loads, and which it uses in any other way.

    Strings follow libcst 1.9.0's scope analysis, which reads a string as an annotation under
    an ``Annotation`` (whatever lies between), or where the nearest enclosing call or subscript
    is a typing one: ``cast``/``TypeVar``/``NewType`` or a subscripted ``typing`` name. Under an
    annotation, or a call or subscript of something other than a dotted name, the string's
    words are unsure; under ``name(...)`` or ``name[...]`` they are ``hinted`` by ``name``, for
    ``_plainly_used`` to judge against the typing imports in view. A docstring is never one.

    The name a top-level class or function binds is neither: it binds at module level, where
    libcst's analysis is flow-insensitive, so an import of the same name still gets every
    load of it in the node (``class GemmaConfig`` beside the modeling file's import of it).
    """
    cached = _POSITIONS.get(node)
    if cached is None:
        own = node.name if isinstance(node, cst.ClassDef | cst.FunctionDef) else None
        cached = _POSITIONS.put(node, _positions_of(node, None, own=own))
    return cached


def _positions_of(
    node: cst.CSTNode, context: str | None, *, own: cst.Name | None = None
) -> _Positions:
    loaded: set[str] = set()
    unsure: set[str] = set()
    hinted: set[tuple[str, str]] = set()
    imports = False
    # (value, (parent type, field), context): context None outside any call, subscript or
    # annotation; _ANNOTATED under an annotation; _UNDOTTED under a call or subscript of
    # anything but a dotted name (``{...}[c]``, ``f()()``); else the
    # first name of the nearest call's function or subscript's value.
    stack: list[tuple[Any, tuple[type, str] | None, str | None]] = [(node, None, context)]
    while stack:
        current, where, context = stack.pop()
        kind: type[cst.CSTNode] = type(current)
        if kind is cst.Name:
            if current is own:
                continue
            if where in _LOADING:
                loaded.add(current.value)
            elif where not in _NEUTRAL:
                unsure.add(current.value)
            continue
        if context is not None and kind in _STRINGS:
            inside = _annotation_positions(current) if context is _ANNOTATED else None
            if inside is not None:
                loaded |= inside.loaded
                unsure |= inside.unsure
                hinted |= inside.hinted
            elif context is _ANNOTATED or context is _UNDOTTED:
                unsure.update(_TOKEN.findall(_string_text(current)))
            else:
                hinted.update((context, word) for word in _TOKEN.findall(_string_text(current)))
        if kind is cst.SimpleString or kind not in NODE_TYPES:
            continue
        imports = imports or kind is cst.Import or kind is cst.ImportFrom
        inner = _inner_context(current, context) if kind in _CONTEXT_SETTERS else context
        for name in code_fields(kind):
            value = getattr(current, name)
            if type(value) in NODE_TYPES:
                stack.append((value, (kind, name), inner))
            elif type(value) in SEQUENCE_TYPES:
                stack.extend((item, (kind, name), inner) for item in value)
    return _Positions(frozenset(loaded), frozenset(unsure), imports, frozenset(hinted))


def _annotation_positions(node: cst.SimpleString | cst.ConcatenatedString) -> _Positions | None:
    """The names of a string the analysis reads as an annotation, or None when they cannot be
    told apart (then every word of it is unsure).

    libcst parses the string's value and visits the result in the enclosing scope, still under
    the annotation; none of its names has an expression context, so each is recorded as an
    access, except an attribute or keyword name (never visited): ``"torch.Tensor"`` loads
    ``torch``. What does not parse is skipped by libcst; here it stays unsure.
    """
    value = node.evaluated_value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = cst.parse_module(value)
    except cst.ParserSyntaxError:
        return None
    inside = _positions_of(parsed, _ANNOTATED)
    return None if inside.imports else inside


_ANNOTATED = "\0annotated"  # no name can be this
# Strings there are not read as annotations when they parse (glm_moe_dsa's
# ``{"F": "full"}[c]`` would load ``F``; libcst's analysis does not): their words are unsure.
_UNDOTTED = "\0undotted"
_STRINGS = frozenset({cst.SimpleString, cst.ConcatenatedString})
_CONTEXT_SETTERS = frozenset({cst.Annotation, cst.Call, cst.Subscript})


def _inner_context(node: cst.CSTNode, context: str | None) -> str | None:
    """The context ``node``'s children are in (see ``_name_positions``): an annotation stays
    one all the way down; a call or subscript replaces the context of what encloses it."""
    if context is _ANNOTATED or isinstance(node, cst.Annotation):
        return _ANNOTATED
    if isinstance(node, cst.Call):
        return _first_name(node.func)
    if isinstance(node, cst.Subscript):
        return _first_name(node.value)
    return context


def _first_name(expression: cst.BaseExpression) -> str:
    """``a`` for ``a`` or ``a.b.c``; _UNDOTTED for anything else (``f()()``, ``x[0][1]``)."""
    while isinstance(expression, cst.Attribute):
        expression = expression.value
    return expression.value if isinstance(expression, cst.Name) else _UNDOTTED


def _string_text(node: cst.SimpleString | cst.ConcatenatedString) -> str:
    """What the analysis would parse: the evaluated text; the raw code when it has none."""
    value = node.evaluated_value
    return value if isinstance(value, str) else code_of(node)


def _bound_roots(entry: PoolEntry) -> frozenset[str]:
    """The first dotted part of every name an import of ``entry`` binds; ``*`` for a star."""
    return _bound(entry).roots


class _Everything(frozenset[str]):
    """A set that intersects every non-empty set."""

    def __and__(self, other: object) -> frozenset[str]:
        return frozenset({"*"})

    __rand__ = __and__


_EVERYTHING = _Everything()


def _scope_used(module: cst.Module) -> set[str]:
    """Bound import names of ``module`` (any scope) with at least one reference."""
    used: set[str] = set()
    # Every scope counts: a referenced function-local import of a name keeps the module-level
    # import of that name alive, and ruff's F811 fix then deletes the local one (mask2former).
    for scope in {scope for scope in _module_scopes(module).values() if scope is not None}:
        for assignment in scope.assignments:
            if isinstance(assignment, ImportAssignment) and assignment.references:
                used.add(assignment.name)
    return used


def _module_scopes(module: cst.Module) -> Mapping[cst.CSTNode, Scope | None]:
    """libcst's ``ScopeProvider`` metadata of ``module``, without ``MetadataWrapper``.

    Both providers (libcst 1.9.0, pinned) only implement ``visit_Module``, which runs their
    own visitor over the tree; the wrapper adds a batched walk of every node that calls nothing
    else, and an ``inspect.getmembers`` per provider per module (~5 ms each time, most of the
    cost of analysing one small node). ``scopes_reference`` is the wrapper-based reference
    the tests compare this with. No defensive deep copy: only names are read back, and a node
    object appearing twice (an `elif` also entered on its own) only adds references.
    """
    context = ExpressionContextProvider()
    context.visit_Module(module)
    provider = ScopeProvider()
    provider.metadata = {ExpressionContextProvider: context._computed}
    provider.visit_Module(module)
    return cast(Mapping[cst.CSTNode, Scope | None], provider._computed)


def scopes_reference(module: cst.Module) -> Mapping[cst.CSTNode, Scope | None]:
    """``_module_scopes`` the documented way, through ``MetadataWrapper`` (for the tests)."""
    return MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)


# Keyed by a digest of the codes, not the codes: a key would otherwise hold a copy of a
# model's whole import pool, and every save adds keys.
_USED_CACHE: OrderedDict[bytes, frozenset[str]] = OrderedDict()
_USED_CACHE_SIZE = 4096  # entries of a few names each; a model's outputs hold ~20-100 nodes


def _cached_used(
    pool_key: str,
    pool: Sequence[PoolEntry],
    node: PoolEntry | TopNode | None,
    code: str,
    tokens: set[str],
) -> frozenset[str]:
    """``_scope_used`` of ``pool + [node]``, LRU-cached by their code (a save merges its
    classes afresh, so most of its nodes are new objects with the code of the last save's);
    read off the node's names instead when that is provable (``_plainly_used``)."""
    digest = hashlib.blake2b(pool_key.encode(), digest_size=16)
    if node is not None:
        digest.update(b"\0" + code.encode())
    key = digest.digest()
    found = _USED_CACHE.get(key)
    if found is not None:
        _USED_CACHE.move_to_end(key)
        return found
    found = None if node is None else _plainly_used(pool, node, tokens)
    if found is None:
        body = [*pool] if node is None else [*pool, node]
        found = frozenset(_scope_used(cst.Module(body=body)))
    _USED_CACHE[key] = found
    if len(_USED_CACHE) > _USED_CACHE_SIZE:
        _USED_CACHE.popitem(last=False)
    return found


_COMPOSABLE_CACHE: OrderedDict[str, bool] = OrderedDict()  # only code with global/nonlocal
_COMPOSABLE_CACHE_SIZE = 1024


def _composable(node: cst.CSTNode) -> bool:
    """True when ``node`` binds no import at module level and declares no ``global``/``nonlocal``
    (inside a function or class body an import binds locally unless such a declaration says
    otherwise)."""
    if not isinstance(node, cst.ClassDef | cst.FunctionDef | cst.SimpleStatementLine):
        return False
    if isinstance(node, cst.SimpleStatementLine) and any(
        isinstance(statement, cst.Import | cst.ImportFrom) for statement in node.body
    ):
        return False
    code = code_of(node)
    if "global" not in code and "nonlocal" not in code:
        return True  # neither keyword can occur without its text
    found = _COMPOSABLE_CACHE.get(code)
    if found is None:
        found = not _has_declaration(node)
        _COMPOSABLE_CACHE[code] = found
        if len(_COMPOSABLE_CACHE) > _COMPOSABLE_CACHE_SIZE:
            _COMPOSABLE_CACHE.popitem(last=False)
    return found


def _has_declaration(root: cst.CSTNode) -> bool:
    """A ``global`` or ``nonlocal`` statement anywhere under ``root``."""
    return any(isinstance(node, cst.Global | cst.Nonlocal) for node in descendants(root))


def bound_name(alias: cst.ImportAlias) -> str:
    """The name an alias binds: its ``as`` name, else the full dotted name."""
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return dotted_name(alias.name) or ""


class _Selector:
    """Filters import lines against the used names, remembering what is already imported."""

    def __init__(self, used: set[str]) -> None:
        self.used = used
        self.imported: set[str] = set()
        self.stars: set[str] = set()

    def line(self, line: cst.SimpleStatementLine) -> cst.SimpleStatementLine | None:
        """R-IMP-2 step 2: keep used, not-yet-imported aliases with their commas reset."""
        kept: list[cst.BaseSmallStatement] = []
        for statement in line.body:
            filtered = self._statement(statement)
            if filtered is not None:
                kept.append(filtered)
        return line.with_changes(body=kept) if kept else None

    def _statement(self, statement: cst.BaseSmallStatement) -> cst.BaseSmallStatement | None:
        if not isinstance(statement, cst.Import | cst.ImportFrom):
            return statement
        if isinstance(statement.names, cst.ImportStar):
            text = code_of(statement)
            if text in self.stars:
                return None
            self.stars.add(text)
            return statement
        aliases = []
        for alias in statement.names:
            name = bound_name(alias)
            if name in self.used and name not in self.imported:
                self.imported.add(name)
                aliases.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        if not aliases:
            return None
        return statement.with_changes(names=aliases)

    def guarded(self, block: cst.If, emitted: list[cst.BaseStatement]) -> cst.If | None:
        """R-IMP-2 step 3: filter the body; skip statements an earlier block already holds."""
        body: list[cst.BaseStatement] = []
        for statement in _block_statements(block):
            if any(statement.deep_equals(done) for done in emitted):
                continue
            if is_import_line(statement):
                assert isinstance(statement, cst.SimpleStatementLine)
                filtered = self.line(statement)
                if filtered is None:
                    continue
                statement = filtered
            body.append(statement)
        if not body:
            return None
        emitted.extend(body)
        if isinstance(block.body, cst.IndentedBlock):
            return block.with_changes(body=block.body.with_changes(body=body))
        return block.with_changes(body=cst.IndentedBlock(body=body))  # ruff splits it anyway


def select_imports(
    pool: Sequence[PoolEntry], nodes: Sequence[PoolEntry | TopNode], defined: set[str]
) -> list[PoolEntry]:
    """R-IMP-2: the import statements one output keeps, plain lines first.

    Args:
        pool: the modular file's import pool (R-IMP-1).
        nodes: the output's nodes in slot order, trailers included.
        defined: the names of those nodes; an import of such a name counts as unused.
    """
    selector = _Selector(used_import_names(pool, nodes) - defined)
    plain: list[PoolEntry] = []
    guarded: list[PoolEntry] = []
    emitted: list[cst.BaseStatement] = []
    # The first binding in pool order wins, whether plain or guarded (a modular guarded
    # `import torch` beats a parent's plain one); only the output puts plain lines first.
    for entry in pool:
        if isinstance(entry, cst.SimpleStatementLine):
            line = selector.line(entry)
            if line is not None:
                plain.append(line)
        else:
            block = selector.guarded(entry, emitted)
            if block is not None:
                guarded.append(block)
    return [*plain, *guarded]


def _block_statements(block: cst.If) -> list[cst.BaseStatement]:
    """The statements of a guarded block's body (a one-line suite counts as one line)."""
    body = block.body
    if isinstance(body, cst.IndentedBlock):
        return list(body.body)
    assert isinstance(body, cst.SimpleStatementSuite)
    return [cst.SimpleStatementLine(body=body.body)]


def _guard(name: str, statements: list[cst.BaseStatement]) -> cst.If:
    return cst.If(
        test=cst.Call(func=cst.Name(name)),
        body=cst.IndentedBlock(body=statements),
    )


def _is_utils_import(entry: PoolEntry) -> bool:
    if not isinstance(entry, cst.SimpleStatementLine) or len(entry.body) != 1:
        return False
    statement = entry.body[0]
    if not isinstance(statement, cst.ImportFrom) or isinstance(statement.names, cst.ImportStar):
        return False
    module = dotted_name(statement.module) if statement.module is not None else ""
    return module == "utils" or (module or "").endswith(".utils")


def _imported_names(entry: cst.SimpleStatementLine) -> list[str]:
    statement = entry.body[0]
    assert isinstance(statement, cst.ImportFrom) and not isinstance(statement.names, cst.ImportStar)
    return [bound_name(alias) for alias in statement.names]


def _with_names(entry: cst.SimpleStatementLine, names: list[str]) -> cst.SimpleStatementLine:
    statement = entry.body[0]
    assert isinstance(statement, cst.ImportFrom) and not isinstance(statement.names, cst.ImportStar)
    aliases = [*statement.names, *(cst.ImportAlias(name=cst.Name(n)) for n in names)]
    return entry.with_changes(body=[statement.with_changes(names=aliases)])


def guard_torch(imports: Sequence[PoolEntry]) -> list[PoolEntry]:
    """R-IMP-4: move torch/torchvision imports under availability guards, appended last."""
    torch: list[cst.BaseStatement] = []
    vision: list[cst.BaseStatement] = []
    rest: list[PoolEntry] = []
    for entry in imports:
        text = code_of(entry).strip()
        if isinstance(entry, cst.If):
            if entry.orelse is None and "is_torch_available()" in text:
                torch.extend(_block_statements(entry))
            elif "is_torchvision_available()" in text:
                vision.extend(_block_statements(entry))
            else:
                rest.append(entry)
        elif text.startswith(("import torchvision", "from torchvision")):
            vision.append(entry)
        elif text.startswith(("import torch", "from torch")):
            torch.append(entry)
        else:
            rest.append(entry)
    needed = [
        n for n, s in (("is_torch_available", torch), ("is_torchvision_available", vision)) if s
    ]
    if needed:
        rest = _add_availability_names(rest, needed)
    if torch:
        rest.append(_guard("is_torch_available", torch))
    if vision:
        rest.append(_guard("is_torchvision_available", vision))
    return rest


def _add_availability_names(imports: list[PoolEntry], needed: list[str]) -> list[PoolEntry]:
    """R-IMP-4 step 3: extend the first utils import lacking a name, else prepend a new one."""
    for index, entry in enumerate(imports):
        if not _is_utils_import(entry):
            continue
        assert isinstance(entry, cst.SimpleStatementLine)
        present = _imported_names(entry)
        missing = [name for name in needed if name not in present]
        if missing:
            return [*imports[:index], _with_names(entry, missing), *imports[index + 1 :]]
    line = cst.parse_statement(f"from ...utils import {', '.join(sorted(needed))}\n")
    assert isinstance(line, cst.SimpleStatementLine)
    return [line, *imports]
