"""Which files a modular file reads as parents, from its imports alone (no conversion).

The daemon needs this before it has converted anything: a save of a hand-written parent
(``modeling_llama.py``) or a regenerated one must reconvert its dependents (rule 7:
propagate through a graph, not through our own file events).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from daemon.converter import FILE_TYPES
from daemon.converter.order import from_imports

# R-PAR-1: `..<model>.<file type>_<name>` registers a parent module.
_FILE_TYPE = re.compile(
    r"^(modeling|configuration|tokenization|processing|image_processing_pil|image_processing|"
    r"video_processing|feature_extraction)_\w+$"
)


def _relative_target(source: Path, level: int, module: str) -> Path | None:
    parts = module.split(".")
    if len(parts) < 2 or not _FILE_TYPE.match(parts[-1]) or "auto" in parts:
        return None
    base = source.parent
    for _ in range(level - 1):
        base = base.parent
    return base.joinpath(*parts).with_suffix(".py")


def _absolute_target(root: Path, module: str) -> Path | None:
    parts = module.split(".")
    if len(parts) < 4 or parts[:2] != ["transformers", "models"] or parts[2] == "auto":
        return None
    if not _FILE_TYPE.match(parts[-1]):
        return None
    return root.joinpath("src", *parts).with_suffix(".py")


def parent_paths(source: Path, text: str, root: Path) -> tuple[Path, ...]:
    """The parent files ``source`` imports from, in first-import order (invalid text: none)."""
    return paths_of_imports(source, from_imports(text) or (), root)


def paths_of_imports(
    source: Path, imports: Iterable[tuple[int, str]], root: Path
) -> tuple[Path, ...]:
    """``parent_paths`` from ``(dots, module)`` pairs of ``from <module> import`` statements."""
    found: dict[Path, None] = {}
    for level, module in imports:
        if level:
            target = _relative_target(source, level, module)
        else:
            target = _absolute_target(root, module)
        if target is not None:
            found.setdefault(target.resolve(strict=False), None)
    return tuple(found)


def dependents(parents: Mapping[Path, Iterable[Path]], changed: Iterable[Path]) -> set[Path]:
    """Every source that reads a changed file, directly or through other sources' outputs.

    ``parents`` maps each source to its parent files; a source's outputs live beside it,
    so a source depends on another when one of its parents sits beside that other source
    and is one of its outputs (``modeling_gemma.py`` next to ``modular_gemma.py``).
    """
    pending = {p.resolve(strict=False) for p in changed}
    result: set[Path] = set()
    while pending:
        hit = {s for s, ps in parents.items() if s not in result and pending & set(ps)}
        result |= hit
        pending = {output_sibling for s in hit for output_sibling in possible_outputs(s)}
    return result


@functools.lru_cache(maxsize=8192)
def possible_outputs(source: Path) -> frozenset[Path]:
    """The generated files a source may have: ``modular_x.py`` -> ``<type>_x.py`` beside it.

    Cached: the daemon maps every source's outputs to it on each batch (326 sources x 8 kinds
    of ``Path.with_name`` were 35 ms of a warm save's planning)."""
    name = source.name.removeprefix("modular_")
    return frozenset(source.with_name(f"{kind}_{name}") for kind in FILE_TYPES)


def readers(parents: Mapping[Path, Iterable[Path]], changed: Iterable[Path]) -> set[Path]:
    """The sources that read one of ``changed`` directly (one level of ``dependents``)."""
    changed = {p.resolve(strict=False) for p in changed}
    return {s for s, ps in parents.items() if changed & set(ps)}


def waits_for(
    sources: Iterable[Path], parents: Mapping[Path, Iterable[Path]]
) -> dict[Path, set[Path]]:
    """For each of ``sources``, the others among them whose outputs it reads."""
    pending = set(sources)
    outputs = {s: possible_outputs(s) for s in pending}
    return {
        s: {t for t in pending if t != s and outputs[t] & set(parents.get(s, ()))} for s in pending
    }


def producers(sources: Iterable[Path]) -> dict[Path, Path]:
    """Each possible output of ``sources`` -> the source that generates it."""
    return {output: s for s in sources for output in possible_outputs(s)}


def upstream(
    parents: Mapping[Path, Iterable[Path]], producer: Mapping[Path, Path], source: Path
) -> set[Path]:
    """Every source whose outputs ``source`` reads, directly or through other sources' outputs
    (``source`` itself excluded, even in a cycle); ``producer`` from ``producers``."""
    found: set[Path] = set()
    stack = [source]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            origin = producer.get(parent)
            if origin is not None and origin not in found:
                found.add(origin)
                stack.append(origin)
    found.discard(source)
    return found


def topological(sources: Iterable[Path], parents: Mapping[Path, Iterable[Path]]) -> list[Path]:
    """``sources`` ordered so that one whose outputs another reads comes first (from the
    graph already known: no re-parsing); ties and cycles fall back to path order."""
    pending = set(sources)
    needs = waits_for(pending, parents)
    ordered: list[Path] = []
    while pending:
        ready = sorted(s for s in pending if not needs[s] & pending)
        if not ready:  # a cycle: each file still reports its own result
            ready = sorted(pending)
        ordered.extend(ready)
        pending -= set(ready)
    return ordered
