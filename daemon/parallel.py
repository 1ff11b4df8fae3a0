"""Converting many modular files in memory, level by level, optionally in worker processes.

A child reads its parents' *fresh* outputs, never stale files on disk (R-QRK-18), so the
outputs of each dependency level are passed, as an overlay, to the conversions of the next.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from daemon.checkcache import CheckCache
from daemon.converter import Converted, Result, convert
from daemon.converter.order import dependency_edges, dependency_levels
from daemon.errors import DaemonError
from daemon.graph import parent_paths
from daemon.outputs import read_text


def default_jobs() -> int:
    """All cores, as CI machines are dedicated to the check."""
    return os.cpu_count() or 1


def levels_of(texts: dict[Path, str]) -> list[list[Path]]:
    """The sources in conversion order (a cycle: one level, each file reports itself)."""
    try:
        return dependency_levels(texts)
    except DaemonError:
        return [sorted(texts)]


def _overlay_for(source: Path, root: Path, overlay: dict[Path, str]) -> dict[Path, str]:
    """Only the fresh outputs this source reads: keeps what crosses to a worker small."""
    wanted = parent_paths(source, read_text(source) or "", root)
    return {p: overlay[p] for p in wanted if p in overlay}


def _convert_in_worker(source: Path, root: Path, overlay: dict[Path, str], fmt: bool) -> Result:
    return convert(source, root=root, overlay=overlay, format=fmt)


def convert_all_in_memory(
    sources: Iterable[Path],
    root: Path,
    *,
    format: bool = True,
    jobs: int = 1,
    on_done: Callable[[Path, Result], None] | None = None,
    cache: CheckCache | None = None,
) -> dict[Path, Result]:
    """Convert ``sources`` without writing; ``jobs`` > 1 uses that many processes.

    With ``cache``, a source none of whose inputs changed since it was recorded is not
    converted: its result is read back from the files on disk. Results come back keyed by
    source, in conversion order.
    """
    overlay: dict[Path, str] = {}
    results: dict[Path, Result] = {}

    def record(source: Path, result: Result, *, converted: bool = True) -> None:
        results[source] = result
        # A cached result's outputs are the files on disk, which its readers read anyway.
        if isinstance(result, Converted) and converted:
            overlay.update({o.path: o.text for o in result.outputs})
            if cache is not None:
                cache.store(source, result, overlay)
        if on_done is not None:
            on_done(source, result)

    def cached(source: Path) -> bool:
        hit = cache.lookup(source, overlay) if cache is not None else None
        if hit is not None:
            record(source, hit, converted=False)
        return hit is not None

    texts = {p: read_text(p) or "" for p in sources}
    levels = levels_of(texts)
    if jobs <= 1:
        for level in levels:
            for source in level:
                if not cached(source):
                    record(source, convert(source, root=root, overlay=overlay, format=format))
        return results
    ordered = [s for level in levels for s in level]
    # One level: no edges, or a cycle whose files each report themselves.
    waiting = dependency_edges(texts) if len(levels) > 1 else {s: set() for s in ordered}
    readers: dict[Path, set[Path]] = {s: set() for s in ordered}
    for source, parents in waiting.items():
        for parent in parents:
            readers[parent].add(source)
    chain = _chain_lengths(ordered, readers)
    ready = [s for s in ordered if not waiting[s]]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        running: dict[Future[Result], Path] = {}
        while ready or running:
            # A file starts as soon as its own parents are done, not its whole level; the
            # longest chain of readers first, so the tail of the order is not left to one core.
            ready.sort(key=lambda s: (-chain[s], str(s)))
            finished: list[Path] = []
            while ready and len(running) < jobs:
                source = ready.pop(0)
                if cached(source):
                    finished.append(source)
                    continue
                fresh = _overlay_for(source, root, overlay)
                running[pool.submit(_convert_in_worker, source, root, fresh, format)] = source
            if running and not finished:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    source = running.pop(future)
                    record(source, future.result())
                    finished.append(source)
            for source in finished:
                for reader in readers[source]:
                    waiting[reader].discard(source)
                    if not waiting[reader]:
                        ready.append(reader)
    return {s: results[s] for s in ordered}


def _chain_lengths(ordered: list[Path], readers: dict[Path, set[Path]]) -> dict[Path, int]:
    """For each source, the longest chain of sources that read it, transitively."""
    chain: dict[Path, int] = {}
    for source in reversed(ordered):  # readers come later in a dependency order
        chain[source] = 1 + max((chain[r] for r in readers[source]), default=0)
    return chain
