"""Converting many modular files in memory, level by level, optionally in worker processes.

A child reads its parents' *fresh* outputs, never stale files on disk (R-QRK-18), so the
outputs of each dependency level are passed, as an overlay, to the conversions of the next.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from daemon.checkcache import CheckCache
from daemon.converter import Converted, Result, convert
from daemon.converter.order import dependency_edges, dependency_levels
from daemon.converter.parents import BATCH_PARSES, keep_batch_parses
from daemon.converter.pipeline import REPARSER
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


def _overlay_for(parents: Iterable[Path], overlay: dict[Path, str]) -> dict[Path, str]:
    """Only the fresh outputs this source reads: keeps what crosses to a worker small."""
    return {p: overlay[p] for p in parents if p in overlay}


class WarmParents:
    """Which parents each worker process has most likely parsed and kept, as the process
    handing out sources can tell: the parents of the last ``keep`` sources it converted.

    Each worker parses and keeps its own parents: handed out without regard to them, a
    whole-corpus check with two workers parsed 601 times (18.0 MB of text) for 400 distinct
    parents (11.4 MB). A source whose parents its worker already holds skips those parses.
    """

    def __init__(self, weight: Callable[[Path], int], keep: int = BATCH_PARSES) -> None:
        self.weight = weight  # what parsing a parent costs
        self.keep = keep
        self._held: dict[int, OrderedDict[Path, None]] = {}

    def converted(self, worker: int, parents: Iterable[Path]) -> None:
        held = self._held.setdefault(worker, OrderedDict())
        for parent in parents:
            held.pop(parent, None)
            held[parent] = None
        while len(held) > self.keep:
            held.popitem(last=False)

    def warmth(self, worker: int | None, parents: Iterable[Path]) -> int:
        """How much of parsing ``parents`` ``worker`` would skip."""
        held = self._held.get(worker) if worker is not None else None
        return sum(self.weight(p) for p in parents if p in held) if held else 0


# A batch allocates millions of nodes that stay alive (the parsed parents it keeps). With
# CPython's default threshold of 700 allocations the collector keeps re-scanning them: over
# 100 corpus files, 9.1 s of 36.2 s of CPU went to it (25 %); with 50,000 it was 2.2 s. Cycles
# (libcst's scope analysis makes some) are still collected, only in fewer, larger passes.
BATCH_GC_THRESHOLD = (50_000, 20, 20)


def as_batch_process() -> None:
    """Settings for a process that converts many sources, then exits (``check``, a worker):
    more parsed parents kept, a less eager garbage collector. Never the daemon's own."""
    keep_batch_parses()
    REPARSER.keep_none()  # each source is converted once here: no tree to splice into
    if gc.get_threshold() != BATCH_GC_THRESHOLD:
        gc.set_threshold(*BATCH_GC_THRESHOLD)


@functools.lru_cache(maxsize=4096)
def _parse_weight(path: Path) -> int:
    """What parsing a parent costs, in characters: its size on disk (its fresh text, if it
    differs, is about as long); a missing parent costs nothing."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def convert_in_worker(source: Path, root: Path, overlay: dict[Path, str], fmt: bool) -> Result:
    as_batch_process()  # a worker converts part of a batch, then exits
    return convert(source, root=root, overlay=overlay, format=fmt)


def convert_in_pool_worker(
    source: Path, root: Path, overlay: dict[Path, str], fmt: bool
) -> tuple[Result, int]:
    """``convert_in_worker``, with the worker's pid: the worker that answered is the idle one."""
    return convert_in_worker(source, root, overlay, fmt), os.getpid()


def timed_convert_in_worker(source: Path, root: Path, fmt: bool) -> tuple[Result, float]:
    """A daemon's worker conversion from the files on disk, with the seconds it took there."""
    as_batch_process()
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
        as_batch_process()  # ``check`` converts here, then exits
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

    parents_of = {s: parent_paths(s, texts[s], root) for s in ordered}
    warm = WarmParents(_parse_weight)
    idle: list[int | None] = [None]  # the worker that answered last, free for the next source

    def order(source: Path) -> tuple[int, int, str]:
        # The longest chain of readers first, so the tail is not left to one core; among
        # equal chains (most of the corpus reads nothing back), those whose parents the free
        # worker holds parsed: over the corpus, 486 parses of 13.9 MB instead of 601 of 18.0.
        return (
            -chain[source],
            -warm.warmth(idle[0], parents_of[source]),
            str(source),
        )

    with worker_pool(jobs) as pool:

        def submit(source: Path) -> Future[tuple[Result, int]] | None:
            if cached(source):
                return None
            fresh = _overlay_for(parents_of[source], overlay)
            return pool.submit(convert_in_pool_worker, source, root, fresh, format)

        def finished(source: Path, answer: tuple[Result, int] | None) -> tuple[Path, ...]:
            if answer is not None:
                result, worker = answer
                record(source, result)
                warm.converted(worker, parents_of[source])
                idle[0] = worker
            return ()

        stream(
            ordered,
            blocked_by=lambda s: waiting.get(s, set()),
            jobs=jobs,
            submit=submit,
            finished=finished,
            order=order,
        )
    return {s: results[s] for s in ordered}


def worker_pool(jobs: int, *, subprocesses: bool = False) -> Executor:
    """``jobs`` worker processes: forked for a one-shot check; plain subprocesses for a
    process with threads (the daemon, see ``daemon.workers``)."""
    if subprocesses:
        return SubprocessExecutor(jobs)
    return ProcessPoolExecutor(max_workers=jobs)


def stream(
    first: Iterable[Path],
    *,
    blocked_by: Callable[[Path], set[Path]],
    jobs: int,
    submit: Callable[[Path], Future[T] | None],
    finished: Callable[[Path, T | None], Iterable[Path]],
    order: Callable[[Path], Any] = str,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``first``, and whatever ``finished`` adds, each source once, at most ``jobs`` at a
    time: a source starts as soon as none of ``blocked_by(source)`` is still to run or running
    (not a whole level or wave later), the ready ones in ``order``.

    ``submit`` starts a source and returns its future, or None when it did the source itself
    (a cache hit, a conversion in this process); ``finished`` sees each source once with its
    result (None for those), in the order they finish, and returns sources to run next (those
    already seen are ignored). A cycle, where nothing could start, runs its first source anyway
    so that each file reports itself. ``stopped`` ends the stream between two results,
    cancelling what has not started.
    """
    pending = dict.fromkeys(first)  # insertion-ordered set
    seen = set(pending)
    running: dict[Future[T], Path] = {}
    while (pending or running) and not stopped():
        busy = set(pending) | set(running.values())
        ready = sorted(
            (s for s in pending if s not in running.values() and not (blocked_by(s) - {s}) & busy),
            key=order,
        )
        if not ready and not running:
            ready = sorted(pending, key=order)[:1]
        done: list[tuple[Path, T | None]] = []
        for source in ready:
            if len(running) >= jobs:
                break
            future = submit(source)
            if future is None:
                done.append((source, None))
                break  # what it triggers may come first: look again
            running[future] = source
        if not done and running:
            completed, _ = wait(running, return_when=FIRST_COMPLETED)
            done = [(running.pop(f), f.result()) for f in completed]
        for source, result in done:
            pending.pop(source, None)
            for following in finished(source, result):
                if following not in seen:
                    seen.add(following)
                    pending[following] = None
    for future in running:
        future.cancel()


def _chain_lengths(ordered: list[Path], readers: dict[Path, set[Path]]) -> dict[Path, int]:
    """For each source, the longest chain of sources that read it, transitively."""
    chain: dict[Path, int] = {}
    for source in reversed(ordered):  # readers come later in a dependency order
        chain[source] = 1 + max((chain[r] for r in readers[source]), default=0)
    return chain
