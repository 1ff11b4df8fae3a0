"""The daemon: observe, debounce, reconvert, stage or flag, until SIGINT or SIGTERM."""

from __future__ import annotations

import itertools
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import structlog

from daemon import example, git
from daemon.config import Config
from daemon.log import get_logger
from daemon.runner import Runner
from daemon.scheduler import BatchDriver, Debouncer
from daemon.watcher import PathFilter, Watcher, scan

log = get_logger()

SUPERVISE_INTERVAL_S = 1.0


class Daemon:
    """The watch loop of one repository; ``stop`` may be called from a signal handler."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        self.runner = Runner(root, config)
        self.sources = PathFilter(root=root, include=config.include, exclude=config.exclude)
        # Parents (hand-written or generated) are plain .py files: watch them too, and let
        # the runner keep only those some source reads.
        self.events = PathFilter(
            root=root, include=(*config.include, "**/*.py"), exclude=config.exclude
        )
        self._stop = threading.Event()
        self._batches = itertools.count(1)
        self.driver = BatchDriver(
            Debouncer(config.debounce_ms, config.max_wait_ms),
            self.on_batch,
            on_error=self._batch_failed,
        )

    def stop(self) -> None:
        self._stop.set()

    def on_batch(self, paths: frozenset[Path]) -> None:
        """Reconvert what a settled set of changed paths affects (on the driver thread)."""
        batch = next(self._batches)
        with structlog.contextvars.bound_contextvars(batch=batch):
            sources = {p for p in paths if self.sources(p) and p.exists()}
            self.runner.learn(sources)  # new files, and new imports of edited ones
            known = sources | set(self.runner.parents)
            todo = self.runner.affected(paths, known, skip_unchanged=True)
            log.debug("batch.started", paths=len(paths), sources=len(todo))
            for source in todo:
                if self._stop.is_set():
                    break  # between two atomic writes: nothing is half-written
                self.runner.run(source)

    def _batch_failed(self, exc: BaseException) -> None:
        log.error("batch.failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    def reconcile(self) -> None:
        """Start-up: convert the sources that changed since the ledger last saw them."""
        found = scan(self.root, self.sources)
        self.runner.learn(found)
        stale = [
            s
            for s in found
            if self.runner.ledger.sources.get(_rel(s, self.root)) is not None
            and not self.runner.unchanged_since_last_run(s)
        ]
        for source in self.runner.affected(stale, set(found)):
            self.runner.run(source)
        log.info("daemon.reconciled", sources=len(found), converted=len(stale))

    def run(self) -> None:
        """Block until ``stop()``; threads are joined on the way out."""
        self.reconcile()
        with self.driver, Watcher(self.root, self.events, self.driver.submit) as watcher:
            log.info(
                "daemon.started",
                root=str(self.root),
                sources=len(self.runner.parents),
                git_mode=self.config.git_mode,
            )
            while not self._stop.wait(SUPERVISE_INTERVAL_S):
                if not watcher.is_alive():
                    log.error("watcher.died", hint="restarting the observer")
                    watcher.restart()
                self._resume_deferred()
            self.driver.flush(timeout=30)
        log.info("daemon.stopped")

    def _resume_deferred(self) -> None:
        """Sources held back during a merge, rebase or bisect run once it is over (rule 5)."""
        if not self.runner.deferred or git.operation_in_progress(self.root) is not None:
            return
        deferred, self.runner.deferred = self.runner.deferred, set()
        for source in sorted(deferred):
            self.driver.submit(source)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@contextmanager
def _signals_stop(daemon: Daemon, received: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM both take the clean shutdown path (house style habit 7)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        daemon.stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def watch(root: Path, config: Config) -> int:
    """``modwatch watch``: run until a signal; 0 after SIGTERM, 130 after SIGINT."""
    if not scan(root, PathFilter(root=root, include=config.include, exclude=config.exclude)):
        root = example.bootstrap(root)
    daemon = Daemon(root, config)
    received: list[int] = []
    with _signals_stop(daemon, received):
        daemon.run()
    return 130 if signal.SIGINT in received else 0
