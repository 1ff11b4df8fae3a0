"""Assemble the outputs of one modular file: route, merge, gather, place, import, render.

P3-P12 for one file. ``Conversion.convert`` returns the raw text of every output without the
banner; the pipeline adds banner and formatting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import libcst as cst

from daemon.converter.imports import (
    TORCH_GUARDED_TYPES,
    PoolEntry,
    bound_name,
    build_pool,
    guard_torch,
    select_imports,
)
from daemon.converter.inventory import TopNode, code_of, gather_inventory
from daemon.converter.layout import (
    OutputFile,
    class_closure,
    order_modular_dependencies,
    order_parent_dependencies,
)
from daemon.converter.memo import NodeMemo
from daemon.converter.merge import MergeError, merge_class
from daemon.converter.naming import CasingTable, common_suffix, rename_table
from daemon.converter.naming import rename_text as rename_token
from daemon.converter.parents import (
    ModularSpace,
    Parent,
    build_parent,
    choose_targets,
    model_specific_bases,
    overlay_modular,
    pull_imported,
    read_parents,
)
from daemon.converter.rename import rename_docs
from daemon.converter.resolve import LazyPositions, dotted_name, gather_model_imports
from daemon.converter.supercall import UnrollError
from daemon.converter.trailers import FILE_ORDER, Trailers, gather_trailers, route
from daemon.errors import ConvertError

# A save parses the modular file afresh, so each of its classes is a new object even when its
# text did not change, and merging it again would build (and later render) the same class
# again. Per parent class object (a cached parent keeps its objects): the merges of modular
# classes with that text, under that name, base and casing table. Equal text means equal
# trees (the parser is deterministic), and the merge reads nothing else.
_MergeKey = tuple[str, str, str, str]
_MERGES: NodeMemo[dict[_MergeKey, tuple[CasingTable, cst.ClassDef]]] = NodeMemo()

_MERGES_PER_CLASS = 8

_PIL_SKIP = ("image_processing_backends", "image_processing_utils", "image_processing_outputs")


class Conversion:
    """The state of converting one modular file."""

    def __init__(
        self,
        source: Path,
        module: cst.Module,
        *,
        model: str,
        root: Path,
        overlay: Mapping[Path, str],
    ) -> None:
        self.source = source
        self.model = model
        self.root = root
        self.overlay = overlay
        self.casing = CasingTable()
        self.warnings: list[str] = []
        self.parent_paths: tuple[Path, ...] = ()
        self.current_node: cst.CSTNode | None = None  # the class being placed, for errors
        self.module = module
        self._positions = LazyPositions(module)
        self.files: dict[str, OutputFile] = {}
        self.cross_file: list[PoolEntry] = []
        self.siblings: dict[str, set[str]] = {}

    @property
    def current_line(self) -> int | None:
        """The 1-based line of the class being placed, if any (for unexpected errors)."""
        return self.line_of(self.current_node) if self.current_node is not None else None

    def line_of(self, node: cst.CSTNode) -> int | None:
        """The 1-based line of a modular node, when it is one."""
        position = self._positions.get(node)
        return position.start.line if position is not None else None

    def fail(self, message: str, node: cst.CSTNode | None, **hint: str) -> ConvertError:
        line = self.line_of(node) if node is not None else None
        return ConvertError(self.source, message, line=line or self.current_line, **hint)

    # -- P3 to P7 -------------------------------------------------------------------------

    def _gather(self) -> None:
        self.cased = self.casing.cased(self.model)
        self.imports = gather_model_imports(self.module, self.source, self._positions)
        self.inventory = gather_inventory(self.module, modular=True)
        self._check_bases()
        read = read_parents(self.imports, source=self.source, root=self.root, overlay=self.overlay)
        self.parent_paths = tuple(path for path, _ in read.values())
        texts = {name: text for name, (_, text) in read.items()}
        targets, warnings = choose_targets(
            self.inventory.classes, self.imports, texts, model=self.model, casing=self.casing
        )
        self.warnings += warnings
        self.parents: dict[str, Parent] = {}
        for name, (path, text) in read.items():
            self.parents[name] = build_parent(
                self.imports.parents[name],
                path,
                text,
                target=targets[name],
                model=self.model,
                casing=self.casing,
            )
        for parent in self.parents.values():
            overlay_modular(self.inventory, parent)
            parent.namespace.freeze()
            self.siblings.setdefault(parent.file_type, set()).update(parent.siblings)
        self.space: ModularSpace = pull_imported(self.inventory, self.imports, self.parents)

    def _check_bases(self) -> None:
        """R-ERR-1: at most one model-specific base per class."""
        for name, node in self.inventory.classes.items():
            bases = model_specific_bases(node, self.imports)
            if len(bases) > 1:
                raise self.fail(
                    f"class {name} has several model-specific bases: {', '.join(bases)}",
                    node,
                    hint="inherit from one parent model class; merge the others by hand",
                )

    # -- P8 and P9 ------------------------------------------------------------------------

    def _file(self, kind: str) -> OutputFile:
        return self.files.setdefault(kind, OutputFile(kind))

    def _divert(self, dependencies: set[str], kinds: Mapping[str, str], kind: str) -> None:
        """R-TOP-7: direct class dependencies of another file type become imports."""
        for name in sorted(dependencies):
            if kinds.get(name) != "class":
                continue
            target = route(name, self.cased)
            if target == kind:
                continue
            dependencies.discard(name)
            line = cst.parse_statement(f"from .{target}_{self.model} import {name}\n")
            assert isinstance(line, cst.SimpleStatementLine)
            self.cross_file.append(line)
            self.siblings.setdefault(kind, set()).add(name)

    def _merged(self, node: cst.ClassDef, base: str) -> tuple[cst.ClassDef, Parent]:
        parent = self.parents[self.imports.names[base]]
        renamed = rename_token(base, parent.table)
        original = parent.inventory.classes.get(renamed)
        if original is None:
            raise self.fail(  # R-ERR-7
                f"class {node.name.value}: base {base} renames to {renamed}, which is not a "
                f"class of {parent.info.module}",
                node,
            )
        name = node.name.value
        key = (name, renamed, base, code_of(node))
        earlier = _MERGES.get(original)
        if earlier is None:
            earlier = _MERGES.put(original, {})
        if (hit := earlier.pop(key, None)) is not None and hit[0] is self.casing:
            earlier[key] = hit  # the newest again: the bound below drops the least recent
            return hit[1], parent
        if name != renamed:  # R-NAME-10: per-class documentation renaming
            suffix = common_suffix(name, renamed)
            old = renamed[: len(renamed) - len(suffix)]
            new = name[: len(name) - len(suffix)]
            table = rename_table(self.casing.lowered(old), self.casing.lowered(new), self.casing)
            original = rename_docs(original, table)
        try:
            merged = merge_class(node, original, base)
        except MergeError as error:
            raise self.fail(error.message, error.node) from error
        except UnrollError as error:
            raise self.fail(
                f"class {name}: super().{error.method}() has no method {error.method} to "
                f"unroll in parent class {renamed}",
                error.node,
            ) from error
        if len(earlier) >= _MERGES_PER_CLASS:
            earlier.pop(next(iter(earlier)))  # saves of one class pile up here
        earlier[key] = (self.casing, merged)
        return merged, parent

    def _place_merged(self, name: str, node: cst.ClassDef, base: str, kind: str) -> None:
        merged, parent = self._merged(node, base)
        space = parent.namespace
        excluded = self.siblings.get(kind, set())
        direct = space.augmented(space.direct_of(merged, name), name) - excluded
        self._divert(direct, space.kinds, kind)
        direct -= set(self.inventory.classes)
        file = self._file(kind)
        class_map = parent.class_map()
        missing = class_closure(direct, class_map, file.nodes)
        order = order_parent_dependencies(
            missing,
            parent_positions=parent.inventory.positions,
            modular_positions=self.inventory.positions,
            parent_classes=parent.inventory.classes,
            class_map=class_map,
        )
        for dependency in order:
            file.place(dependency, space.nodes[dependency])
        file.place(name, merged)

    def _place_unmerged(self, name: str, node: cst.ClassDef, kind: str) -> None:
        space = self.space.namespace
        excluded = self.siblings.get(kind, set())
        direct = space.augmented(space.direct_of(node, name), name) - excluded
        self._divert(direct, space.kinds, kind)
        file = self._file(kind)
        missing = direct - set(file.nodes)
        order = order_modular_dependencies(
            missing,
            modular_positions=self.inventory.positions,
            pulled_from=self.space.pulled_from,
            parent_positions={n: p.inventory.positions for n, p in self.parents.items()},
        )
        for dependency in order:
            file.place(dependency, space.nodes[dependency])
        file.place(name, node)

    def _place_classes(self) -> None:
        for name, node in self.inventory.classes.items():
            self.current_node = node
            kind = route(name, self.cased)
            bases = model_specific_bases(node, self.imports)
            if bases:
                self._place_merged(name, node, bases[0], kind)
            else:
                self._place_unmerged(name, node, kind)
        self.current_node = None

    # -- P10: trailers --------------------------------------------------------------------

    def _trailers(self) -> Trailers:
        return gather_trailers(self.inventory, self.cased)

    # -- P11: imports ---------------------------------------------------------------------

    def _pool(self) -> list[PoolEntry]:
        modular = _in_source_order(self.inventory.imports, self.inventory.guarded, self.module)
        parents = [
            _in_source_order(p.inventory.imports, p.inventory.guarded, p.module)
            for p in self.parents.values()
        ]
        return build_pool(modular, self.cross_file, parents)

    def _copy_into_pil(self, pool: Sequence[PoolEntry], trailers: Trailers) -> None:
        """R-IMP-5: image-processing nodes imported by the PIL file are copied into it."""
        if "image_processing" not in self.files or "image_processing_pil" not in self.files:
            return
        pil, fast = self.files["image_processing_pil"], self.files["image_processing"]
        nodes = [node for _, node in pil.ordered()] + trailers.get("image_processing_pil", [])
        for entry in select_imports(pool, nodes, set(pil.nodes)):
            statement = entry.body[0] if isinstance(entry, cst.SimpleStatementLine) else None
            if not isinstance(statement, cst.ImportFrom) or statement.module is None:
                continue
            module = dotted_name(statement.module) or ""
            if not module.startswith("image_processing_") or module.startswith(_PIL_SKIP):
                continue
            assert not isinstance(statement.names, cst.ImportStar)
            for alias in statement.names:
                self._copy_one(bound_name(alias), fast, pil)
            return

    def _copy_one(self, name: str, fast: OutputFile, pil: OutputFile) -> None:
        if name not in fast.nodes:
            raise self.fail(f"{name} is imported by the PIL file but not defined", None)
        slot = fast.slots[name]
        beside = [n for n, s in pil.slots.items() if s == slot]
        if not beside:
            raise self.fail(f"cannot place the copy of {name} in the PIL file (R-IMP-5)", None)
        other = pil.nodes[beside[0]]
        shift = -0.5 if isinstance(other, cst.ClassDef | cst.FunctionDef) else 0.5
        pil.nodes[name] = fast.nodes[name]
        pil.slots[name] = slot + shift

    # -- P12 ------------------------------------------------------------------------------

    def convert(self) -> dict[str, str]:
        """Run P3-P12; return the raw text (no banner) of each output by file type."""
        self._gather()
        self._place_classes()
        trailers = self._trailers()
        pool = self._pool()
        self._copy_into_pil(pool, trailers)
        kinds = set(self.files) | set(trailers)
        texts: dict[str, str] = {}
        for kind in sorted(kinds, key=FILE_ORDER.index):
            file = self._file(kind)
            nodes: list[TopNode] = [node for _, node in file.ordered()]
            tail = trailers.get(kind, [])
            imports = select_imports(pool, [*nodes, *tail], set(file.nodes))
            if kind in TORCH_GUARDED_TYPES:
                imports = guard_torch(imports)
            texts[kind] = module_code(self.module.header, [*imports, *nodes, *tail])
        return texts


def module_code(header: Sequence[cst.EmptyLine], body: Sequence[cst.CSTNode]) -> str:
    """``cst.Module(header=header, body=body, default_newline="\\n", default_indent="    ").code``.

    A module renders as its header, body and footer lines one after the other, each at
    indentation zero with the module's defaults, which are ``code_of``'s; so the text is the
    concatenation of the (cached) ``code_of`` of each part, and the classes copied unchanged from
    a cached parent, or already rendered for the import selection, are not rendered again.
    An empty module is one newline.
    """
    if not header and not body:
        return "\n"
    return "".join(code_of(node) for node in (*header, *body))


def _in_source_order(
    imports: Sequence[cst.SimpleStatementLine], guarded: Sequence[cst.If], module: cst.Module
) -> list[PoolEntry]:
    """Import lines and guarded blocks of one file interleaved in source order (R-IMP-1)."""
    order = {id(s): i for i, s in enumerate(module.body)}
    entries: list[tuple[float, int, PoolEntry]] = []
    for index, line in enumerate(imports):
        entries.append((order.get(id(line), 0), index, line))
    for index, block in enumerate(guarded):
        entries.append((_block_order(block, module, order), len(imports) + index, block))
    return [entry for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1]))]


def _block_order(block: cst.If, module: cst.Module, order: Mapping[int, int]) -> float:
    """Top-level index of a guarded block; nested ones (``elif``) sort just after theirs."""
    if id(block) in order:
        return order[id(block)]
    for statement in module.body:
        if isinstance(statement, cst.If) and _contains(statement, block):
            return order[id(statement)] + 0.5
    return len(order)


def _contains(outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if node is inner:
                found = True
            return not found

    outer.visit(_Find())
    return found
