"""The order in which modular files are converted: dependency levels (R-PAR-8).

This is a lighter analysis than the conversion itself, with Python's own parser: a child reads
its parents' generated files from disk, so parents must be regenerated first.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from daemon.errors import ConvertError

# R-PAR-8 step 1: ``a.<file type>_b`` where ``a`` is a substring of ``b`` and not ``auto``.
_MODEL_MODULE = re.compile(
    r"(\w+)\.(modeling|configuration|tokenization|processing|image_processing"
    r"|video_processing|feature_extraction)_(\w+)"
)
# Fallback for a file being typed into: from-import module names, line by line.
_FROM_IMPORT_LINE = re.compile(r"^\s*from\s+([.\w]+)\s+import\b", re.MULTILINE)


def node_name(path: Path) -> str:
    """The graph node of a modular file: the text after the last ``modular_``, without ``.py``.

    Args:
        path: a modular file such as ``models/data2vec/modular_data2vec_audio.py``.

    Returns:
        ``data2vec_audio`` for the example (R-PAR-8 step 2).
    """
    text = path.as_posix()
    name = text.rsplit("modular_", 1)[1] if "modular_" in text else path.name
    return name.removesuffix(".py")


def model_dependencies(text: str) -> set[str]:
    """The model names a modular file imports from (R-PAR-8 steps 1-2).

    Every from-import at any depth whose module name looks like ``a.<file type>_b`` with ``a``
    inside ``b`` contributes its second-to-last dotted component.

    Args:
        text: the modular file's source. A file that does not parse (it is being typed into)
            is scanned line by line instead, so it still orders after its parents.

    Returns:
        The dependency names, such as ``{"llama"}``.
    """
    return {
        module.split(".")[-2] for module in _from_import_modules(text) if _is_model_module(module)
    }


# (dots, module) of one ``from <module> import`` statement with a module name.
FromImport = tuple[int, str]


# A check reads each modular file's imports three times (its level, its edges, the parents
# its worker is sent), the daemon on every batch: one ``ast`` parse per text (~5 ms) serves all.
# Keyed by a digest, not the text: the daemon would otherwise keep every text it ever read.
_FROM_IMPORTS: OrderedDict[bytes, tuple[FromImport, ...] | None] = OrderedDict()
_FROM_IMPORTS_SIZE = 1024


def from_imports(text: str) -> tuple[FromImport, ...] | None:
    """Every ``from <module> import`` with a module name, at any depth, in source order;
    None when ``text`` does not parse (it is being typed into)."""
    key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    if key in _FROM_IMPORTS:
        _FROM_IMPORTS.move_to_end(key)
        return _FROM_IMPORTS[key]
    found = _read_from_imports(text)
    _FROM_IMPORTS[key] = found
    if len(_FROM_IMPORTS) > _FROM_IMPORTS_SIZE:
        _FROM_IMPORTS.popitem(last=False)
    return found


def _read_from_imports(text: str) -> tuple[FromImport, ...] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None
    nodes: list[ast.ImportFrom] = []
    _gather_import_froms(tree.body, nodes)
    nodes.sort(key=lambda node: (node.lineno, node.col_offset))  # ``try`` bodies come first
    return tuple((node.level, node.module) for node in nodes if node.module)


# The fields holding nested statements (``handlers`` and ``cases`` hold nodes with a ``body``).
_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def _gather_import_froms(statements: list[Any], found: list[ast.ImportFrom]) -> None:
    """The from-imports among ``statements`` and the statements nested in them: an import is
    a statement, so expressions (most of the nodes ``ast.walk`` would visit) are skipped."""
    for statement in statements:
        if isinstance(statement, ast.ImportFrom):
            found.append(statement)
            continue
        for name in _BLOCK_FIELDS:
            inner = getattr(statement, name, None)
            if inner:
                _gather_import_froms(inner, found)


def _from_import_modules(text: str) -> list[str]:
    found = from_imports(text)
    if found is None:
        return _FROM_IMPORT_LINE.findall(text)
    return [module for _, module in found]


def _is_model_module(module: str) -> bool:
    return any(
        match.group(1) != "auto" and match.group(1) in match.group(3)
        for match in _MODEL_MODULE.finditer(module)
    )


def dependency_levels(sources: Mapping[Path, str]) -> list[list[Path]]:
    """Group modular files into levels that can be converted in order (R-PAR-8 step 3).

    Only edges to files in ``sources`` count. Files without any model import are simply level
    0 (the official tool refuses them, R-ERR-9; a watcher must not).

    Args:
        sources: modular file path -> its text.

    Returns:
        The levels in conversion order, each sorted by path.

    Raises:
        ConvertError: the files depend on each other in a cycle (R-ERR-10); names the cycle.
    """
    edges = _edges(sources)
    levels: list[list[Path]] = []
    remaining = set(sources)
    while remaining:
        level = sorted(path for path in remaining if not edges[path] & remaining)
        if not level:
            cycle = _find_cycle(remaining, edges)
            chain = " -> ".join(str(path) for path in [*cycle, cycle[0]])
            raise ConvertError(
                cycle[0],
                f"modular files import from each other in a cycle: {chain}",
                hint="break the cycle: a model cannot inherit from its own descendants",
            )
        levels.append(level)
        remaining.difference_update(level)
    return levels


def dependency_edges(sources: Mapping[Path, str]) -> dict[Path, set[Path]]:
    """Each file's dependencies among the other files in ``sources`` (what a scheduler that
    starts a file as soon as its own parents are done needs, instead of whole levels)."""
    return _edges(sources)


def _edges(sources: Mapping[Path, str]) -> dict[Path, set[Path]]:
    """Each file's dependencies among the other files in ``sources``."""
    by_name: dict[str, set[Path]] = {}
    for path in sources:
        by_name.setdefault(node_name(path), set()).add(path)
    edges: dict[Path, set[Path]] = {}
    for path, text in sources.items():
        targets = _union(by_name.get(name, set()) for name in model_dependencies(text))
        edges[path] = targets - {path}
    return edges


def _union(sets: Iterable[set[Path]]) -> set[Path]:
    result: set[Path] = set()
    for paths in sets:
        result |= paths
    return result


def _find_cycle(remaining: set[Path], edges: Mapping[Path, set[Path]]) -> list[Path]:
    """A cycle among ``remaining``, in which every file has a dependency left in ``remaining``.

    Walking from any file along its smallest remaining dependency must revisit a file.
    """
    walk: list[Path] = []
    seen: dict[Path, int] = {}
    current = min(remaining)
    while current not in seen:
        seen[current] = len(walk)
        walk.append(current)
        current = min(edges[current] & remaining)
    cycle = walk[seen[current] :]
    start = cycle.index(min(cycle))  # report it from its smallest path, whatever the walk
    return cycle[start:] + cycle[:start]
