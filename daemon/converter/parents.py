"""Parents of one modular file: read, prefix-inferred, renamed, inventoried and overlaid.

P4-P7 of the spec: R-IO-7 (reading), R-NAME-7/8 (prefix and renaming), R-PAR-6 (functions
and assignments imported from a parent) and R-PAR-7 (modular definitions overlaid on each
parent). All read-only with respect to the files; the namespaces built here feed the merge.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from daemon.converter.inventory import Inventory, Namespace, gather_inventory
from daemon.converter.naming import CasingTable, RenameTable, infer_prefix, rename_table
from daemon.converter.parse import parse_module
from daemon.converter.rename import rename_module
from daemon.converter.resolve import (
    ModelImports,
    ParentImport,
    dotted_name,
    gather_sibling_imports,
    parent_path,
    read_text,
)
from daemon.errors import ConvertError

# R-PAR-7: assignment names for which the modular value beats the parent's.
_MODULAR_WINS = ("_CHECKPOINT", "_EXPECTED", "_FOR_DOC", "_HIDDEN_STATES_START_POSITION")


@dataclass
class Parent:
    """One renamed parent module with its inventory and overlaid name space."""

    info: ParentImport
    path: Path
    text: str
    target: str
    table: RenameTable
    module: cst.Module
    inventory: Inventory
    namespace: Namespace
    siblings: set[str]
    _class_map: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def file_type(self) -> str:
        return self.info.file_type or "modeling"

    def class_map(self) -> dict[str, frozenset[str]]:
        """R-TOP-4: class -> dependencies over the parent's own classes (with closure)."""
        if not self._class_map:
            for name in self.inventory.classes:
                self._class_map[name] = frozenset(self.namespace.dependencies(name))
        return self._class_map


def model_specific_bases(node: cst.ClassDef, imports: ModelImports) -> list[str]:
    """R-PAR-3: bare-name bases recorded as imported from a parent module."""
    names = [arg.value.value for arg in node.bases if isinstance(arg.value, cst.Name)]
    return [name for name in names if name in imports.names]


def read_parents(
    imports: ModelImports, *, source: Path, root: Path, overlay: Mapping[Path, str]
) -> dict[str, tuple[Path, str]]:
    """R-IO-7: each registered parent's path and text, in registration order.

    Raises:
        ConvertError: R-ERR-4, a parent module without a file.
    """
    found: dict[str, tuple[Path, str]] = {}
    for name, parent in imports.parents.items():
        path = parent_path(parent, source=source, root=root)
        text = read_text(path, overlay)
        if text is None:
            raise ConvertError(
                source,
                f"parent module {name} not found (looked for {path})",
                line=parent.line,
                hint="check the import path; the parent's file must exist",
            )
        found[name] = (path, text)
    return found


def choose_targets(
    classes: Mapping[str, cst.ClassDef],
    imports: ModelImports,
    texts: Mapping[str, str],
    *,
    model: str,
    casing: CasingTable,
) -> tuple[dict[str, str], list[str]]:
    """R-NAME-7: one rename target per parent module, plus the R-ERR-8 warnings."""
    default = casing.cased(model)
    candidates: dict[str, list[tuple[str, str]]] = {name: [] for name in imports.parents}
    for class_name, node in classes.items():
        bases = model_specific_bases(node, imports)
        if len(bases) == 1:
            candidates[imports.names[bases[0]]].append((class_name, bases[0]))
    targets: dict[str, str] = {}
    warnings: list[str] = []
    for name, parent in imports.parents.items():
        if not candidates[name]:
            targets[name] = model
            continue
        prefix, notes = infer_prefix(
            candidates[name],
            default=default,
            parent_model=parent.model,
            parent_source=texts[name],
            casing=casing,
        )
        targets[name] = casing.lowered(prefix)
        warnings += notes
    return targets, warnings


def _parse_parent(path: Path, text: str) -> cst.Module:
    """One parse per parent text, whatever child renames it: ``modeling_llama.py`` is read by
    over a hundred models, each renaming it into its own name (the fan-out of a parent edit).
    The renamed trees share the subtrees renaming leaves alone, and so do the per-node caches."""
    return parse_module(text, path)


# A parsed parent holds about 27 bytes per character of its text (0.54 MB for the 20 KB of
# modeling_llama.py).
# The daemon keeps few: it converts the saved file and its parents stay the same. A batch
# process (``check``, a daemon's worker) meets the corpus's 400 parents in an order that comes
# back to ``modeling_llama.py`` every few sources: with 32 kept, a whole-corpus check parses
# 767 times, with 160 it parses 456 times (at most 5.1 MB of text kept, ~140 MB of trees), then
# exits (counted over the 5.23.0 corpus in dependency order, one process).
DAEMON_PARSES = 32
BATCH_PARSES = 160
_parsed = functools.lru_cache(maxsize=DAEMON_PARSES)(_parse_parent)


def keep_batch_parses() -> None:
    """Let this process keep ``BATCH_PARSES`` parsed parents: call it in a process that
    converts many sources and then exits, never in the daemon."""
    global _parsed
    if _parsed.cache_info().maxsize != BATCH_PARSES:
        _parsed = functools.lru_cache(maxsize=BATCH_PARSES)(_parse_parent)


@functools.lru_cache(maxsize=64)
def _renamed(
    path: Path, text: str, table: RenameTable, model: str, target: str
) -> tuple[cst.Module, Inventory, frozenset[str]]:
    """Parse, rename and inventory one parent; cached because a watched modular file is
    converted again on every save against the same parents. Callers never mutate these."""
    renamed = rename_module(_parsed(path, text), table, model_name=model, target=target)
    return (
        renamed,
        gather_inventory(renamed, modular=False),
        frozenset(gather_sibling_imports(renamed)),
    )


def build_parent(
    info: ParentImport,
    path: Path,
    text: str,
    *,
    target: str,
    model: str,
    casing: CasingTable,
) -> Parent:
    """R-NAME-8 then R-TOP-1 for one parent.

    Raises:
        ConvertError: the parent is not valid Python.
    """
    table = rename_table(info.model, target, casing)
    renamed, inventory, siblings = _renamed(path, text, table, model, target)
    namespace = Namespace(dict(inventory.nodes), dict(inventory.kinds), dict(inventory.pseudo_of))
    return Parent(
        info=info,
        path=path,
        text=text,
        target=target,
        table=table,
        module=renamed,
        inventory=inventory,
        namespace=namespace,
        siblings=set(siblings),
    )


@dataclass
class ModularSpace:
    """The modular inventory after R-PAR-6, with the parent each pulled name came from."""

    namespace: Namespace
    pulled_from: dict[str, str] = field(default_factory=dict)


def pull_imported(
    modular: Inventory, imports: ModelImports, parents: Mapping[str, Parent]
) -> ModularSpace:
    """R-PAR-6: functions and assignments imported from parents join the modular inventory."""
    space = ModularSpace(
        Namespace(dict(modular.nodes), dict(modular.kinds), dict(modular.pseudo_of))
    )
    for name, module_name in imports.names.items():
        parent = parents[module_name]
        kind = parent.inventory.kinds.get(name)
        if kind not in ("function", "assignment") or modular.kinds.get(name) == kind:
            continue
        source = parent.namespace
        space.namespace.define(name, source.nodes[name], kind)
        space.pulled_from[name] = module_name
        for dependency in sorted(source.direct(name)):
            # "Not yet known" means not defined by the modular itself: a later pull re-tags
            # a dependency an earlier one brought (qwen2_5_omni's rotate_half, R-TOP-10).
            if dependency not in modular.nodes:
                # R-PAR-6 step 2: stored as functions whatever their kind.
                space.namespace.define(dependency, source.nodes[dependency], "function")
                space.pulled_from[dependency] = module_name
        if kind != "function":
            continue
        injected = [name, *sorted(source.dependencies(name))]
        for other_name, other in parents.items():
            if other_name != module_name:
                for injected_name in injected:
                    other.namespace.inject(
                        injected_name,
                        source.nodes[injected_name],
                        source.kinds[injected_name],
                        source.direct(injected_name),
                    )
    return space


def _modular_assignment_wins(name: str, node: cst.CSTNode) -> bool:
    """R-PAR-7: which modular assignments override a parent value of the same name."""
    if any(marker in name for marker in _MODULAR_WINS):
        return True
    if "_DOCSTRING" not in name:
        return False
    assert isinstance(node, cst.SimpleStatementLine)
    assign = node.body[0]
    return not (isinstance(assign, cst.Assign) and dotted_name(assign.value) == "None")


def overlay_modular(modular: Inventory, parent: Parent) -> None:
    """R-PAR-7: overlay the modular's own definitions on one parent's name space."""
    space = parent.namespace
    for name, node in modular.nodes.items():
        kind = modular.kinds[name]
        if kind == "function":
            space.define(name, node, "function")
        elif kind == "assignment":
            if space.kinds.get(name) != "assignment" or _modular_assignment_wins(name, node):
                space.define(name, node, "assignment")
        elif kind == "pseudo":
            if name not in space.nodes:
                space.define(name, node, "pseudo")
        elif name not in parent.inventory.classes and name not in parent.siblings:
            space.define(name, node, "class")  # a known name for dependencies only
    for owner, keys in modular.pseudo_of.items():
        if space.nodes.get(owner) is modular.nodes.get(owner):
            space.pseudo_of[owner] = list(keys)
