"""Converting many modular files in memory, level by level, optionally in worker processes.

A child reads its parents' *fresh* outputs, never stale files on disk (R-QRK-18), so the
outputs of each dependency level are passed, as an overlay, to the conversions of the next.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from daemon.checkcache import CheckCache
from daemon.converter import Converted, Result, convert
from daemon.converter.order import dependency_edges, dependency_levels
from daemon.errors import DaemonError
from daemon.graph import parent_paths
from daemon.outputs import read_text
from daemon.workers import SubprocessExecutor

T = TypeVar("T")


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


def convert_in_worker(source: Path, root: Path, overlay: dict[Path, str], fmt: bool) -> Result:
    return convert(source, root=root, overlay=overlay, format=fmt)


def timed_convert_in_worker(source: Path, root: Path, fmt: bool) -> tuple[Result, float]:
    """A daemon's worker conversion from the files on disk, with the seconds it took there."""
    started = time.perf_counter()
    result = convert(source, root=root, overlay={}, format=fmt)
    return result, time.perf_counter() - started


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

    def submit(pool: Executor, source: Path) -> Future[Result] | None:
        if cached(source):
            return None
        fresh = _overlay_for(source, root, overlay)
        return pool.submit(convert_in_worker, source, root, fresh, format)

    def finished(source: Path, result: Result | None) -> None:
        if result is not None:
            record(source, result)

    with worker_pool(jobs) as pool:
        stream(ordered, waiting, pool=pool, jobs=jobs, submit=submit, finished=finished)
    return {s: results[s] for s in ordered}


def worker_pool(jobs: int, *, subprocesses: bool = False) -> Executor:
    """``jobs`` worker processes: forked for a one-shot check; plain subprocesses for a
    process with threads (the daemon, see ``daemon.workers``)."""
    if subprocesses:
        return SubprocessExecutor(jobs)
    return ProcessPoolExecutor(max_workers=jobs)


def stream(
    ordered: Sequence[Path],
    waiting: Mapping[Path, set[Path]],
    *,
    pool: Executor,
    jobs: int,
    submit: Callable[[Executor, Path], Future[T] | None],
    finished: Callable[[Path, T | None], None],
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``ordered`` through ``pool``: a source starts once every source it waits for has
    finished (not its whole level), the longest chain of readers first, so the tail of the
    order is not left to one core. ``submit`` returns None for a source done without a
    worker; ``finished`` sees each source once, in the order they finish. ``stopped`` ends the
    stream between two results, cancelling what has not started."""
    waits = {s: set(waiting.get(s, ())) & set(ordered) for s in ordered}
    readers: dict[Path, set[Path]] = {s: set() for s in ordered}
    for source, parents in waits.items():
        for parent in parents:
            readers[parent].add(source)
    chain = _chain_lengths(list(ordered), readers)
    ready = [s for s in ordered if not waits[s]]
    running: dict[Future[T], Path] = {}
    while ready or running:
        ready.sort(key=lambda s: (-chain[s], str(s)))
        done: list[tuple[Path, T | None]] = []
        while ready and len(running) < jobs:
            source = ready.pop(0)
            future = submit(pool, source)
            if future is None:
                done.append((source, None))
            else:
                running[future] = source
        if running and not done:
            completed, _ = wait(running, return_when=FIRST_COMPLETED)
            done = [(running.pop(f), f.result()) for f in completed]
        for source, result in done:
            finished(source, result)
            for reader in readers[source]:
                waits[reader].discard(source)
                if not waits[reader]:
                    ready.append(reader)
        if stopped():
            for future in running:
                future.cancel()
            return


def _chain_lengths(ordered: list[Path], readers: dict[Path, set[Path]]) -> dict[Path, int]:
    """For each source, the longest chain of sources that read it, transitively."""
    chain: dict[Path, int] = {}
    for source in reversed(ordered):  # readers come later in a dependency order
        chain[source] = 1 + max((chain[r] for r in readers[source]), default=0)
    return chain
