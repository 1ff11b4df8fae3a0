"""Read-only gathering over the modular file: which parents it imports and where they live.

P4 of the spec: every from-import is classified (R-PAR-1), parent modules are registered in
order of first import, imported names are recorded, and each parent's file is located
(R-IO-7). Nothing here builds nodes; the visitors only collect (house style habit 3).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from daemon.converter import FILE_TYPES_BY_PREFIX
from daemon.converter.memo import NodeMemo
from daemon.errors import ConvertError

# R-IO-3 / R-PAR-1: the file types, longest first so `image_processing_pil` wins over
# `image_processing` and `video_processing` over `processing` when matching a prefix.
FILE_TYPES = FILE_TYPES_BY_PREFIX
_MODEL_IMPORT_SHAPE = re.compile(r"\.\.[A-Za-z_]\w*\.(?:" + "|".join(FILE_TYPES) + ")")
_AUTO_SKIP = "auto.modeling_auto"


def dotted_name(node: cst.BaseExpression | None) -> str | None:
    """``a.b.C`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def module_text(node: cst.ImportFrom) -> str:
    """R-PAR-1 step 1: one ``.`` per relative level, then the dotted module name as written."""
    name = dotted_name(node.module) if node.module is not None else ""
    return "." * len(node.relative) + (name or "")


def registers_parent(node: cst.ImportFrom) -> bool:
    """R-PAR-1 steps 2-3: does this from-import name a parent model module?"""
    text = module_text(node)
    name = dotted_name(node.module) if node.module is not None else None
    if _AUTO_SKIP in text or name is None or "." not in name:
        return False
    return (
        "transformers.models." in text
        or "...models." in text
        or _MODEL_IMPORT_SHAPE.search(text) is not None
    )


def is_plain_import(node: cst.ImportFrom) -> bool:
    """R-PAR-1: a module-level from-import stays a plain import unless it is a model import."""
    text = module_text(node)
    model_shaped = "transformers.models." in text or _MODEL_IMPORT_SHAPE.search(text) is not None
    return not (model_shaped and _AUTO_SKIP not in text)


def normalise_module(name: str) -> str:
    """R-PAR-1 step 4: ``..llama.modeling_x`` -> ``transformers.models.llama.modeling_x``."""
    name = name.lstrip(".")
    if "models" not in name:
        name = f"models.{name}"
    if not name.startswith("transformers"):
        name = f"transformers.{name}"
    return name


def file_type_of(module_file: str) -> str | None:
    """The file type a module file name such as ``modeling_llama`` starts with, if any."""
    for kind in FILE_TYPES:
        if module_file.startswith(f"{kind}_"):
            return kind
    return None


@dataclass
class ParentImport:
    """One registered parent module (R-PAR-1 step 6)."""

    module: str  # normalised dotted name, transformers.models.<m>.<file>
    statement: cst.ImportFrom
    positions: Mapping[cst.CSTNode, CodeRange] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def line(self) -> int:
        """The 1-based line of the import (0 when unknown); positions are resolved on demand."""
        position = self.positions.get(self.statement)
        return position.start.line if position is not None else 0

    @property
    def model(self) -> str:
        """The parent's model name: the second-to-last dotted component (R-NAME-8)."""
        return self.module.split(".")[-2]

    @property
    def file_name(self) -> str:
        return self.module.split(".")[-1]

    @property
    def file_type(self) -> str | None:
        return file_type_of(self.file_name)


@dataclass
class ModelImports:
    """What the modular file imports from parent model modules."""

    parents: dict[str, ParentImport] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # imported name -> parent module


class GatherModelImportsVisitor(cst.CSTVisitor):
    """Collect R-PAR-1 parent registrations from every from-import, at any depth.

    Also detects the forbidden imports of R-ERR-2 and R-ERR-3, raising ``ConvertError``.
    """

    def __init__(self, source: Path, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        super().__init__()
        self.source = source
        self.positions = positions
        self.found = ModelImports()

    def line_of(self, node: cst.CSTNode) -> int:
        position = self.positions.get(node)
        return position.start.line if position is not None else 0

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        name = dotted_name(node.module) if node.module is not None else None
        if not node.relative and name == "transformers":
            raise ConvertError(  # R-ERR-3
                self.source,
                "`from transformers import ...` is not allowed in a modular file",
                line=self.line_of(node),
                hint="import from the model's module with a relative path, "
                "e.g. `from ..llama.modeling_llama import LlamaModel`",
            )
        if not registers_parent(node) or name is None:
            return
        module = normalise_module(name)
        parent = self.found.parents.setdefault(module, ParentImport(module, node, self.positions))
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            imported = dotted_name(alias.name) or ""
            if parent.file_type == "modeling" and "Config" in imported:
                raise ConvertError(  # R-ERR-2
                    self.source,
                    f"{imported} is imported from the modeling file {module}",
                    line=self.line_of(node),
                    hint=f"import {imported} from the configuration file instead",
                )
            self.found.names.pop(imported, None)  # R-PAR-1 step 5: a later import overwrites
            self.found.names[imported] = module


class LazyPositions(Mapping[cst.CSTNode, CodeRange]):
    """``PositionProvider`` metadata of a module, resolved on first use.

    Positions only serve error messages, and resolving them walks the whole modular file
    (about a sixth of a warm conversion), so a conversion that succeeds never pays for them.
    The module must not be replaced by a copy: lines are looked up by node identity.
    """

    def __init__(self, module: cst.Module) -> None:
        self._module = module
        self._resolved: Mapping[cst.CSTNode, CodeRange] | None = None

    def _positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        if self._resolved is None:
            wrapper = MetadataWrapper(self._module, unsafe_skip_copy=True)
            self._resolved = wrapper.resolve(PositionProvider)
        return self._resolved

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        return self._positions()[node]

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._positions())

    def __len__(self) -> int:
        return len(self._positions())


def gather_model_imports(
    module: cst.Module,
    source: Path,
    positions: Mapping[cst.CSTNode, CodeRange] | None = None,
) -> ModelImports:
    """Run R-PAR-1 over ``module`` (the parsed modular file).

    Args:
        module: the parsed modular file.
        source: its path, for error messages.
        positions: its ``PositionProvider`` metadata, when the caller already resolved it.
    """
    if positions is None:
        positions = LazyPositions(module)
    visitor = GatherModelImportsVisitor(source, positions)
    for node in import_froms(module):
        visitor.visit_ImportFrom(node)
    return visitor.found


@functools.cache
def _fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(node_type))


# Every kind of node that holds statements; expressions never do (a lambda holds one expression).
_STATEMENT_HOLDERS = (
    cst.BaseStatement,
    cst.BaseSuite,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Else,
    cst.Finally,
    cst.MatchCase,
)


def import_froms(module: cst.Module) -> Iterator[cst.ImportFrom]:
    """Every ``from ... import`` of ``module`` at any depth, in source order.

    The order and the set are those of a ``CSTVisitor``'s ``visit_ImportFrom`` calls; only
    statement holders are entered (their statement fields come in source order: body, handlers,
    orelse, finalbody), which skips the expressions that are most of a file's nodes. Cached per
    top-level statement: a save reparses only the statements it touched (``reparse``).
    """
    for statement in module.body:
        found = _IMPORT_FROMS.get(statement)
        if found is None:
            found = _IMPORT_FROMS.put(statement, tuple(_import_froms_in(statement)))
        yield from found


_IMPORT_FROMS: NodeMemo[tuple[cst.ImportFrom, ...]] = NodeMemo()


def _import_froms_in(top: cst.CSTNode) -> Iterator[cst.ImportFrom]:
    stack: list[cst.CSTNode] = [top]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.SimpleStatementLine | cst.SimpleStatementSuite):
            yield from (s for s in node.body if isinstance(s, cst.ImportFrom))
            continue
        children: list[cst.CSTNode] = []
        for name in _fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, _STATEMENT_HOLDERS):
                children.append(value)
            elif isinstance(value, list | tuple):
                children.extend(v for v in value if isinstance(v, _STATEMENT_HOLDERS))
        stack.extend(reversed(children))


def parent_path(parent: ParentImport, *, source: Path, root: Path) -> Path:
    """Where a parent module's file lives (R-IO-7).

    A relative import is resolved against the modular file's own directory, which covers both
    a transformers checkout and a user's own package (``examples/basic/src/zoo``). An absolute
    ``transformers.models.<m>.<file>`` is read from ``<root>/src/transformers/models``.
    """
    statement = parent.statement
    if statement.relative:
        base = source.parent
        for _ in range(len(statement.relative) - 1):
            base = base.parent
        written = dotted_name(statement.module) or ""
        return base.joinpath(*written.split(".")).with_suffix(".py")
    parts = parent.module.split(".")
    return root.joinpath("src", *parts).with_suffix(".py")


def read_text(path: Path, overlay: Mapping[Path, str]) -> str | None:
    """The overlay's text for ``path`` when present, else the file on disk, else None."""
    if path in overlay:
        return overlay[path]
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


class GatherSiblingImportsVisitor(cst.CSTVisitor):
    """R-TOP-6: names a (renamed) parent imports from a sibling file-type module, at top level."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        written = dotted_name(node.module) if node.module is not None else None
        if len(node.relative) != 1 or written is None or file_type_of(written) is None:
            return False
        if isinstance(node.names, cst.ImportStar):
            return False
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            name = dotted_name(bound) if isinstance(bound, cst.BaseExpression) else None
            if name is not None:
                self.names.add(name)
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # imports inside definitions travel with their node (R-IMP-7)

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False


def gather_sibling_imports(module: cst.Module) -> set[str]:
    """The sibling-import names of one renamed parent module (R-TOP-6)."""
    visitor = GatherSiblingImportsVisitor()
    module.visit(visitor)
    return visitor.names
