"""Converting many modular files in memory, level by level, optionally in worker processes.

A child reads its parents' *fresh* outputs, never stale files on disk (R-QRK-18), so the
outputs of each dependency level are passed, as an overlay, to the conversions of the next.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path

from daemon.converter import Converted, Result, convert
from daemon.converter.order import dependency_levels
from daemon.errors import DaemonError
from daemon.graph import parent_paths
from daemon.outputs import read_text


def default_jobs() -> int:
    """All cores, as CI machines are dedicated to the check."""
    return os.cpu_count() or 1


def levels_of(sources: Iterable[Path]) -> list[list[Path]]:
    """The sources in conversion order (a cycle: one level, each file reports itself)."""
    texts = {p: read_text(p) or "" for p in sources}
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
) -> dict[Path, Result]:
    """Convert ``sources`` without writing; ``jobs`` > 1 uses that many processes.

    Results come back keyed by source, in conversion order.
    """
    overlay: dict[Path, str] = {}
    results: dict[Path, Result] = {}

    def record(source: Path, result: Result) -> None:
        results[source] = result
        if isinstance(result, Converted):
            overlay.update({o.path: o.text for o in result.outputs})
        if on_done is not None:
            on_done(source, result)

    levels = levels_of(sources)
    if jobs <= 1:
        for level in levels:
            for source in level:
                record(source, convert(source, root=root, overlay=overlay, format=format))
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for level in levels:
            futures: dict[Future[Result], Path] = {
                pool.submit(_convert_in_worker, s, root, _overlay_for(s, root, overlay), format): s
                for s in level
            }
            for future in as_completed(futures):
                record(futures[future], future.result())
    ordered = [s for level in levels for s in level]
    return {s: results[s] for s in ordered}
