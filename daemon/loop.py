"""The daemon: observe, debounce, reconvert, stage or flag, until SIGINT or SIGTERM.

Threads: watchdog's observer (filters and enqueues), the batch driver (does the work),
the control server (answers ``modwatch status``), and the main thread, which supervises
them, pings the systemd watchdog and handles signals.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from pathlib import Path

import structlog

from daemon import config as config_module
from daemon import control, example, git
from daemon.config import Config
from daemon.converter import Result
from daemon.errors import DaemonError
from daemon.graph import producers, readers, upstream
from daemon.log import get_logger
from daemon.parallel import default_jobs, stream, timed_convert_in_worker, worker_pool
from daemon.runner import Runner, RunRecord
from daemon.scheduler import BatchDriver, Debouncer
from daemon.service import Notifier
from daemon.signals import Requests, handled
from daemon.watcher import PathFilter, Watcher, polling_observer, scan
from daemon.watchscope import WatchSpec, covers, watch_scope

log = get_logger()

SUPERVISE_INTERVAL_S = 1.0
STUCK_BATCH_S = 60.0  # a batch running longer than this stops the watchdog pings
COOKIE_PREFIX = ".modwatch-cookie-"
RESCAN_INTERVAL_S = 300.0  # rule 8: reconcile periodically, events can be lost silently
MIN_WAITING_FOR_WORKERS = 3  # below this, starting worker processes costs more than it saves
INDEX_LOCK_HOLD_S = 60.0  # longer than any checkout; then staging itself waits and flags


class Daemon:
    """The watch loop of one repository; ``stop`` and ``reload`` are signal-safe.

    ``close()`` once the signal handlers are gone (``watch`` does).
    """

    def __init__(self, root: Path, config: Config, notifier: Notifier | None = None) -> None:
        self.root = root
        self.config = config
        self.notifier = notifier or Notifier()
        self.runner = Runner(root, config)
        self.requests = Requests()  # stop and reload, asked by signal handlers or threads
        self._reconcile_wanted = threading.Event()
        self._rescope_wanted = threading.Event()
        self._last_reconcile = time.monotonic()
        self._batches = itertools.count(1)
        self._cookies = itertools.count(1)
        self._waiting: dict[Path, threading.Event] = {}
        self._lock = threading.Lock()
        self.recent: collections.deque[dict[str, object]] = collections.deque(maxlen=20)
        self.batch_started: float | None = None
        self.watcher: Watcher | None = None
        self._polling = False
        self._identity = self._root_identity()
        self._head = self.runner.head_commit()
        self._git_dir = Path(os.path.abspath(git.git_dir(root))) if self.runner.in_git else None
        self._set_filters(config)
        self.driver = BatchDriver(
            Debouncer(config.debounce_ms, config.max_wait_ms),
            self.on_batch,
            on_error=self._batch_failed,
        )

    def _set_filters(self, config: Config) -> None:
        self.sources = PathFilter(root=self.root, include=config.include, exclude=config.exclude)
        # Parents (hand-written or generated) are plain .py files: watch them too; the runner
        # keeps only those some source reads.
        self.events = PathFilter(
            root=self.root, include=(*config.include, "**/*.py"), exclude=config.exclude
        )

    def _wants(self, path: Path) -> bool:
        return path.name.startswith(COOKIE_PREFIX) or self.events(path)

    # -- signals ----------------------------------------------------------------------------

    def stop(self) -> None:
        self.requests.request_stop()

    def reload(self) -> None:
        self.requests.request_reload()

    def close(self) -> None:
        self.requests.close()

    # -- batches (driver thread) ------------------------------------------------------------

    def on_batch(self, paths: frozenset[Path]) -> None:
        """Reconvert what a settled set of changed paths affects."""
        cookies = {p for p in paths if p.name.startswith(COOKIE_PREFIX)}
        paths = paths - cookies
        batch = next(self._batches)
        self.batch_started = time.monotonic()
        try:
            with structlog.contextvars.bound_contextvars(batch=batch):
                try:
                    self._convert(paths)
                except Exception as exc:  # habit 1: per batch, log and carry on
                    log.error("batch.failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        finally:
            self.batch_started = None
            self._release_cookies(cookies)
        self.notifier.status(self.summary())

    def _convert(self, paths: frozenset[Path]) -> None:
        """Convert the edited sources first, then the sources that read an output this batch
        actually rewrote (or a changed hand-written parent): the saved file is written before
        its dependents are even planned, and each source runs once."""
        direct, foreign = self._plan(paths)
        if not direct and not foreign:
            return  # the echo of our own writes, a touch, noise: no git, no work
        if self._hold_while_git_works():
            direct, foreign = self._plan(paths)  # what git left behind is what counts
        check_only = self._head_moved() and self.config.hook_on_checkout == "flag"
        first = set(direct) | readers(self.runner.parents, foreign)
        self._run_all({s for s in first if s.exists()}, check_only=check_only)

    def _run_all(self, first: set[Path], *, check_only: bool) -> None:
        """Run ``first``, then every source that reads an output a run rewrote, each once.

        A source starts only when no source still to run, or running, is upstream of it (it
        reads that one's outputs, directly or through others): a source triggered late, by a
        rewrite further up, is then never run before the file it reads is written. Few sources
        run here in order, the saved file first and warm; once 3 or more are waiting, worker
        processes take them (``jobs``) and the daemon applies each result as it comes back.
        A stop ends the batch between two atomic writes.
        """
        parents = self.runner.parents
        producer = producers(parents)
        above: dict[Path, set[Path]] = {}
        wanted, done = set(first), set[Path]()
        workers: list[Executor] = []
        jobs = self.config.jobs or default_jobs()

        def blocked_by(source: Path) -> set[Path]:
            if source not in above:
                above[source] = upstream(parents, producer, source)
            return above[source]

        def submit(source: Path) -> Future[tuple[Result, float]] | None:
            if not workers:
                if check_only or jobs < 2 or len(wanted - done) < MIN_WAITING_FOR_WORKERS:
                    return None  # converted here, in ``finished``
                workers.append(worker_pool(jobs, subprocesses=True))
                log.info("workers.started", workers=jobs, waiting=len(wanted - done))
            return workers[0].submit(timed_convert_in_worker, source, self.root, self.config.format)

        def finished(source: Path, timed: tuple[Result, float] | None) -> set[Path]:
            result, seconds = timed if timed is not None else (None, 0.0)
            record = self._run_one(source, check_only=check_only, result=result, elapsed=seconds)
            done.add(source)
            rewritten = {o.path for o in record.outputs if o.status == "written"}
            following = {s for s in readers(parents, rewritten) - done if s.exists()}
            wanted.update(following)
            return following

        def run(sources: set[Path]) -> None:
            stream(
                sources,
                blocked_by=blocked_by,
                jobs=jobs,
                submit=submit,
                finished=finished,
                stopped=self._stop_asked,
            )

        try:
            run(wanted)
        except BrokenProcessPool as exc:  # a worker killed (OOM, say): finish in-process
            log.warning("workers.failed", error=str(exc), remaining=len(wanted - done))
            workers.pop().shutdown(cancel_futures=True)
            jobs = 1
            run(wanted - done)
        finally:
            for pool in workers:
                pool.shutdown(cancel_futures=True)  # the workers go with the batch

    def _plan(self, paths: frozenset[Path]) -> tuple[list[Path], set[Path]]:
        sources = {p for p in paths if self.sources(p) and p.exists()}
        # New files, and new imports of edited ones. A save or two is converted here next,
        # from the same parse; a checkout's many files go to workers, read by ``ast`` here.
        self.runner.learn(sources, converting_here=len(sources) < MIN_WAITING_FOR_WORKERS)
        if self._outside_scope(sources):
            self._rescope_wanted.set()  # the supervisor re-arms with the wider scope
        return self.runner.plan(paths, sources | set(self.runner.parents))

    def _run_one(
        self,
        source: Path,
        *,
        check_only: bool,
        result: Result | None = None,
        elapsed: float = 0.0,
    ) -> RunRecord:
        if check_only and self.runner.matches_head(source):
            # Rule 12: right after a checkout, check and flag; never rewrite what the
            # commit holds (it may need another converter version).
            record = self.runner.check_only(source)
        else:
            record = self.runner.run(source, result=result, elapsed=elapsed)
        self._remember(record)
        return record

    def _head_moved(self) -> bool:
        """Did HEAD move (checkout, merge, rebase, pull) since the previous batch?"""
        if not self.runner.in_git:
            return False
        head = self.runner.head_commit()
        moved = head != self._head
        self._head = head
        return moved

    def checkout(self, request: dict[str, object]) -> dict[str, object]:
        """The hook's ``checkout`` command: reconcile the files changed between two commits."""
        before, after = request.get("from"), request.get("to")
        if not isinstance(before, str) or not isinstance(after, str):
            raise DaemonError("checkout needs 'from' and 'to' commits")
        changed = git.changed_files(self.root, before, after)
        for path in changed:
            self.driver.submit(path)
        return {"queued": len(changed)}

    def _hold_while_git_works(self) -> bool:
        """Rule 5: while ``index.lock`` exists git is mid-operation (a checkout rewriting
        thousands of files); start only once it is gone, so the storm is one batch.

        Returns True when it had to wait."""
        lock = self.runner.index_lock
        if lock is None or not lock.exists():
            return False
        log.info("batch.held", reason="index_locked")
        deadline = time.monotonic() + INDEX_LOCK_HOLD_S
        while lock.exists() and time.monotonic() < deadline and not self._stop_asked():
            time.sleep(0.05)  # its removal is an event only this (the batch) thread would handle
        return True

    def _remember(self, record: RunRecord) -> None:
        self.recent.append({**record.fields(self.root), "at": time.time()})

    def _batch_failed(self, exc: BaseException) -> None:
        log.error("batch.failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    # -- cookies (rule 9): "everything up to now is processed" -------------------------------

    def sync(self, timeout: float = 30.0) -> bool:
        """Write a cookie into each watch and wait until batches have carried them all.

        One per watch: watchdog reads each watch on a thread and an inotify instance of its
        own, so events are in order within a watch only. A lone cookie at the root could
        overtake a save under ``models/`` (the soak saw a sync return before the save of its
        cycle had been heard)."""
        name = f"{COOKIE_PREFIX}{os.getpid()}-{next(self._cookies)}"
        cookies = {directory / name: threading.Event() for directory in self._cookie_dirs()}
        with self._lock:
            self._waiting.update(cookies)
        try:
            for cookie in cookies:
                cookie.write_text("", encoding="utf-8")
            deadline = time.monotonic() + timeout
            for done in cookies.values():
                if not done.wait(max(0.0, deadline - time.monotonic())):
                    return False
            return True
        finally:
            with self._lock:
                for cookie in cookies:
                    self._waiting.pop(cookie, None)
            for cookie in cookies:
                cookie.unlink(missing_ok=True)

    def _cookie_dirs(self) -> set[Path]:
        """The directory of each watch the running watcher armed, but git's (never write
        there): a file created there is an event of that watch."""
        watcher = self.watcher
        specs = watcher.scope if watcher is not None else ()
        dirs = {spec.path for spec in specs if spec.path != self._git_dir and spec.path.is_dir()}
        return dirs or {self.root}

    def _release_cookies(self, cookies: set[Path]) -> None:
        with self._lock:
            for cookie in cookies:
                event = self._waiting.get(cookie)
                if event is not None:
                    event.set()

    # -- status ------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line for systemd's STATUS= and ``modwatch status``."""
        last = self.recent[-1] if self.recent else None
        last_text = f"last run {last['source']}: {last['outcome']}" if last else "no run yet"
        flagged = len(self.runner.flags.entries)
        return f"watching {len(self.runner.parents)} sources; {last_text}; {flagged} flagged"

    def status(self, _request: dict[str, object]) -> dict[str, object]:
        """The ``status`` control command."""
        self.runner.settle_flags()
        return {
            "pid": os.getpid(),
            "root": str(self.root),
            "sources": sorted(_rel(p, self.root) for p in self.runner.parents),
            "queue": len(self.driver.pending) if hasattr(self.driver, "pending") else 0,
            "busy": self.batch_started is not None,
            "last_runs": list(self.recent),
            "flagged": self.runner.flags.reasons(),
            "git": {
                "mode": self.config.git_mode,
                "operation": self.runner.operation(),
                "index_locked": git.index_locked(self.root) if self.runner.in_git else False,
            },
            "summary": self.summary(),
        }

    def _sync_command(self, request: dict[str, object]) -> dict[str, object]:
        timeout = request.get("timeout", 30.0)
        return {"synced": self.sync(float(timeout) if isinstance(timeout, int | float) else 30.0)}

    def handlers(self) -> dict[str, Callable[[dict[str, object]], dict[str, object]]]:
        return {"status": self.status, "sync": self._sync_command, "checkout": self.checkout}

    # -- the main thread ----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Start-up: convert the sources that changed since the ledger last saw them.

        A source the ledger has never seen is left alone until it changes: converting all of
        a large checkout at every first start would take minutes (``modwatch check`` is the
        full verification).
        """
        found = scan(self.root, self.sources)
        self.runner.learn(found)
        stale = [s for s in found if self.runner.stale_since_last_run(s)]
        for source in self.runner.affected(stale, set(found)):
            self._remember(self.runner.run(source))
        log.info("daemon.reconciled", sources=len(found), converted=len(stale))

    def run(self) -> None:
        """Block until ``stop()``; threads are joined on the way out."""
        self.reconcile()
        with ExitStack() as stack:
            stack.enter_context(self.driver)
            self.watcher = self._start_watcher()
            stack.callback(self._close_watcher)
            log.info(
                "daemon.started",
                root=str(self.root),
                sources=len(self.runner.parents),
                git_mode=self.config.git_mode,
            )
            self.notifier.ready()
            self.notifier.status(self.summary())
            self._supervise()
            self.notifier.stopping()
            self.driver.flush(timeout=10)
        log.info("daemon.stopped")

    def scope(self) -> tuple[WatchSpec, ...]:
        """Rule 10: the directories of the sources and of the parents they read, not the
        whole tree (``.git/objects``, docs, tests)."""
        dirs = {p.parent for p in self.runner.parents}
        dirs.update(parent.parent for ps in self.runner.parents.values() for parent in ps)
        return watch_scope(self.root, dirs, self._git_dir)

    def _new_watcher(self) -> Watcher:
        scope = self.scope()
        if self._polling:  # stat polling cannot overflow
            return Watcher(
                self.root,
                self._wants,
                self.driver.submit,
                observer_factory=polling_observer,
                scope=scope,
            )
        return Watcher(
            self.root, self._wants, self.driver.submit, on_overflow=self._overflowed, scope=scope
        )

    def _outside_scope(self, sources: set[Path]) -> bool:
        """Is a newly learnt source (or a parent it reads) in a directory nobody watches?"""
        watcher = self.watcher
        if watcher is None:
            return False
        dirs = {s.parent for s in sources}
        dirs.update(p.parent for s in sources for p in self.runner.parents.get(s, ()))
        return not all(covers(watcher.scope, d) for d in dirs)

    def _start_watcher(self) -> Watcher:
        """Start a watcher; when inotify limits are exhausted, say how to lift them and poll
        instead of crash-looping under systemd (scenario 29)."""
        watcher = self._new_watcher()
        try:
            watcher.start()
        except DaemonError as exc:
            if self._polling:
                raise
            log.error("watcher.limit", error=exc.message, hint=exc.hint, fallback="polling")
            self._polling = True
            watcher = self._new_watcher()
            watcher.start()
        return watcher

    def _overflowed(self) -> None:
        """Called on watchdog's thread: the main loop reconciles (rule 8)."""
        self._reconcile_wanted.set()

    def full_reconcile(self, why: str) -> None:
        """Submit every source and parent: each is re-read and compared by content hash,
        so only what really changed while events were lost is converted."""
        known = set(self.runner.parents)
        found = scan(self.root, self.sources)
        self.runner.learn(found)
        # New files (their creation may be what was lost) and sources whose source, parents
        # or outputs changed since their last run; never the sources the ledger has not seen
        # (a fresh checkout: converting them all is `modwatch check`'s job, not a rescan's).
        wanted = [s for s in found if s not in known or self.runner.stale_since_last_run(s)]
        for path in wanted:
            self.driver.submit(path)
        self._last_reconcile = time.monotonic()
        log.info("daemon.reconcile", reason=why, sources=len(found), submitted=len(wanted))
        self._retouch_cookies()

    def _check_coverage(self) -> None:
        """Directories created since the start may have hit the watch limit (watchdog says
        nothing): then poll, as at start-up (scenario 29)."""
        watcher = self.watcher
        if self._polling or watcher is None or (limit := watcher.coverage()) is None:
            return
        log.error("watcher.limit", error=limit.message, hint=limit.hint, fallback="polling")
        self._polling = True
        self._close_watcher()
        self.watcher = self._start_watcher()

    def _close_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def _supervise(self) -> None:
        while not self._stopping():
            if self.requests.take_reload():
                self._do_reload()
            if self.watcher is None or not self.watcher.is_alive():
                self._rearm("watcher.died")
            elif self._root_identity() != self._identity:
                self._rearm("watcher.root_replaced")
            elif self._rescope_wanted.is_set():
                self._rescope_wanted.clear()
                self._rearm("watcher.rescoped", problem=False)
            if self._reconcile_wanted.is_set():
                self._reconcile_wanted.clear()
                self.full_reconcile("overflow")
            elif time.monotonic() - self._last_reconcile > RESCAN_INTERVAL_S:
                # Watches added since the start (new directories) may have hit the limit; a
                # (re)started watcher checked its own. First: the rescan covers a switch.
                self._check_coverage()
                self.full_reconcile("periodic")
            if self.healthy():
                self.notifier.watchdog()
            self._resume_deferred()

    def _stopping(self) -> bool:
        """Wait one supervision interval (less if something is asked); True to stop."""
        self.requests.wait(SUPERVISE_INTERVAL_S)
        return self._stop_asked()

    def _stop_asked(self) -> bool:
        return self.requests.stop

    def healthy(self) -> bool:
        """Watcher and driver alive, and no batch stuck: only then ping the watchdog."""
        stuck = (
            self.batch_started is not None and time.monotonic() - self.batch_started > STUCK_BATCH_S
        )
        alive = self.watcher is not None and self.watcher.is_alive()
        return alive and self.driver.is_alive() and not stuck

    def _root_identity(self) -> tuple[int, int] | None:
        try:
            st = self.root.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _rearm(self, why: str, *, problem: bool = True) -> None:
        """Rule 8: a dead or deaf observer, or a replaced root, is re-armed and reconciled
        (as is a watch scope that a new source outgrew)."""
        (log.warning if problem else log.info)(why, hint="re-arming the observer and reconciling")
        self._close_watcher()
        self._identity = self._root_identity()
        if self._identity is None:
            return  # the root is gone for now; try again on the next tick
        self.runner.reopen()
        self.watcher = self._start_watcher()
        log.info("watcher.rearmed")
        self.full_reconcile(why)

    def _retouch_cookies(self) -> None:
        """A cookie written while the watcher was being replaced may never be heard: write it
        again, after the reconcile's submissions, so its sync still means "everything before
        is processed" (rule 9)."""
        with self._lock:
            waiting = list(self._waiting)
        for cookie in waiting:
            with contextlib.suppress(OSError):
                cookie.write_text("", encoding="utf-8")

    def _do_reload(self) -> None:
        """SIGHUP: re-read the configuration and rebuild the watch set."""
        self.notifier.reloading()
        try:
            self.config = config_module.load(self.root)
        except Exception as exc:  # a bad edit of the config keeps the old one running
            log.error("daemon.reload_failed", error=str(exc))
        else:
            self.runner.config = self.config
            self._set_filters(self.config)
            self._close_watcher()
            self.watcher = self._start_watcher()
            self.full_reconcile("reload")  # what changed while no watcher ran
            log.info("daemon.reloaded", sources=len(self.runner.parents))
        self.notifier.ready()
        self.notifier.status(self.summary())

    def _resume_deferred(self) -> None:
        """Sources held back during a merge, rebase or bisect run once it is over (rule 5)."""
        if not self.runner.deferred or self.runner.operation() is not None:
            return
        deferred, self.runner.deferred = self.runner.deferred, set()
        for source in sorted(deferred):
            self.driver.submit(source)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def watch(root: Path, config: Config) -> int:
    """``modwatch watch``: run until a signal; 0 after SIGTERM, 130 after SIGINT.

    A second daemon on the same worktree prints ``already running (pid N)`` and exits 0.
    """
    sources = scan(root, PathFilter(root=root, include=config.include, exclude=config.exclude))
    if not sources or example.is_source_checkout(root):
        # In modwatch's own checkout the only modular file is the bundled example's: watch a
        # copy, so the example in the repository stays clean.
        root = example.bootstrap(root)
    git_dir = git.git_dir(root) if git.find_worktree(root) is not None else None
    with ExitStack() as stack:
        if git_dir is not None:
            try:
                stack.enter_context(control.DaemonLock(control.lock_path(git_dir)))
            except control.AlreadyRunning as exc:
                print(f"modwatch: already running (pid {exc.pid}) for {root}", flush=True)
                return 0
        daemon = Daemon(root, config)
        stack.callback(daemon.close)  # after the handlers are restored (exits unwind first)
        if git_dir is not None:
            stack.enter_context(
                control.ControlServer(control.socket_path(git_dir), daemon.handlers())
            )
        received: list[int] = []
        with handled(daemon.requests, received):
            daemon.run()
    return 130 if signal.SIGINT in received else 0
