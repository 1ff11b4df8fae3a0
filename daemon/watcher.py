"""Filesystem watching: a pure path filter, the initial scan, and a guarded watchdog observer.

This is the only module that imports watchdog. Its handler only filters and enqueues; every
decision about what a change means is made later, on our thread, after re-reading the file
(reliability rule 1: an event is a hint, not a fact).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from daemon.errors import DaemonError
from daemon.watchscope import WatchSpec, check_coverage, limit_error

__all__ = ["ObserverLike", "PathFilter", "Watcher", "scan"]

_log = structlog.get_logger()

IGNORED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules"})
IGNORED_NAMES = (
    "*.pyc",
    "*~",  # vim and emacs backups
    ".*.sw?",  # vim swap files: .swp, .swo, .swx (its swap-name probe), ...
    ".#*",  # emacs lock symlink (dangling: never stat it)
    "#*#",  # emacs auto-save
    "*___jb_tmp___",  # JetBrains safe-write
    "*___jb_old___",
    "*.orig",
    "*.tmp",
    ".modwatch-*.tmp",  # our own atomic-write temp files (also covered by *.tmp)
)
# Events that can mean "content may have changed". Passing them to schedule() also narrows the
# inotify mask, so reads (IN_OPEN / IN_CLOSE_NOWRITE), including our own, cost nothing.
_EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]
_WRITE_TYPES = frozenset({"created", "modified", "closed", "moved", "deleted"})


class _Thread(Protocol):
    def is_alive(self) -> bool: ...


class ObserverLike(Protocol):
    """The part of watchdog's ``BaseObserver`` we use: the seam tests fake."""

    @property
    def emitters(self) -> Collection[_Thread]: ...

    def schedule(
        self,
        event_handler: FileSystemEventHandler,
        path: str,
        *,
        recursive: bool,
        event_filter: list[type[FileSystemEvent]] | None,
    ) -> object: ...

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool: ...


def compile_glob(pattern: str) -> tuple[str, ...]:
    """Split a ``/``-separated glob into parts; one without ``/`` matches a name at any depth."""
    parts = tuple(p for p in pattern.split("/") if p)
    return parts if "/" in pattern else ("**", *parts)


def match_glob(glob: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Match path ``parts`` against a compiled glob.

    ``**`` is zero or more whole parts (so ``**/x`` matches a top-level ``x`` and ``d/**``
    matches ``d`` itself); ``*``, ``?`` and ``[...]`` stay within one part (fnmatchcase).
    """
    if not glob:
        return not parts
    if glob[0] == "**":
        return any(match_glob(glob[1:], parts[i:]) for i in range(len(parts) + 1))
    return (
        bool(parts) and fnmatch.fnmatchcase(parts[0], glob[0]) and match_glob(glob[1:], parts[1:])
    )


_IGNORED_NAME_RE = re.compile("|".join(map(fnmatch.translate, IGNORED_NAMES)))


def _is_ignored_name(name: str) -> bool:
    # vim's write probe is "4913", stepping by 123 while the name is taken.
    return name.isdigit() or _IGNORED_NAME_RE.match(name) is not None


@dataclass(frozen=True)
class PathFilter:
    """Decides, without touching the filesystem, whether a path is a source we care about.

    Patterns are matched against the path relative to ``root`` in POSIX form; a pattern
    without ``/`` matches the file name at any depth. ``exclude`` also applies to every parent
    directory, so ``tests`` or ``build/**`` prune whole trees. ``extra`` lists files watched
    explicitly (hand-written parent modules) and always match.
    """

    root: Path
    include: tuple[str, ...] = ("**/modular_*.py",)
    exclude: tuple[str, ...] = ()
    extra: frozenset[Path] = frozenset()
    _include: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _exclude: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: derived fields are set once, here
        set_(self, "root", Path(os.path.abspath(self.root)))
        set_(self, "extra", frozenset(Path(os.path.abspath(p)) for p in self.extra))
        set_(self, "_include", tuple(map(compile_glob, self.include)))
        set_(self, "_exclude", tuple(map(compile_glob, self.exclude)))

    def __call__(self, path: Path) -> bool:
        """True when ``path`` (a file) should be submitted."""
        path = Path(os.path.abspath(path))
        if path in self.extra:
            return True
        rel = self._relative(path)
        if rel is None or _is_ignored_name(rel.name) or self._in_ignored_dir(rel):
            return False
        return any(match_glob(g, rel.parts) for g in self._include)

    def ignores_dir(self, path: Path) -> bool:
        """True when nothing below directory ``path`` can match (used to prune walks)."""
        rel = self._relative(Path(os.path.abspath(path)))
        return rel is not None and rel.parts != () and self._in_ignored_dir(rel)

    def _relative(self, path: Path) -> Path | None:
        try:
            return path.relative_to(self.root)
        except ValueError:
            return None

    def _in_ignored_dir(self, rel: Path) -> bool:
        if not IGNORED_DIRS.isdisjoint(rel.parts):
            return True
        prefixes = [rel.parts[: n + 1] for n in range(len(rel.parts))]
        return any(match_glob(g, pre) for g in self._exclude for pre in prefixes)


def _ignored_dir_name(path: Path) -> bool:
    return path.name in IGNORED_DIRS


def scan(root: Path, path_filter: Callable[[Path], bool]) -> list[Path]:
    """Return the matching files below ``root`` (sorted), not descending into ignored dirs.

    ``root`` may be a subdirectory of a PathFilter's root (a newly created model directory).
    Any other predicate gets only the built-in directory pruning. Directories that vanish
    mid-walk are skipped: os.walk ignores their errors.
    """
    prune: Callable[[Path], bool] = _ignored_dir_name
    if isinstance(path_filter, PathFilter):
        prune = path_filter.ignores_dir
    if prune(root):
        return []
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # In-place pruning keeps os.walk out of .git/, .venv/ etc. (rule 10).
        dirnames[:] = [d for d in dirnames if not prune(here / d)]
        found.extend(here / f for f in filenames if path_filter(here / f))
    return sorted(found)


class _Handler(FileSystemEventHandler):
    """Turns watchdog events into ``submit(path)`` calls; never raises, never does real work."""

    def __init__(
        self,
        path_filter: Callable[[Path], bool],
        submit: Callable[[Path], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._filter = path_filter
        self._submit = submit
        self._on_error = on_error
        self.closes_follow_writes = False  # set by Watcher.start once the observer is known

    def dispatch(self, event: FileSystemEvent) -> None:
        # watchdog calls handlers unguarded: one exception here ends the observer thread while
        # the emitters keep running, a watcher that is alive and deaf (rule 8).
        try:
            self._route(event)
        except Exception as exc:
            try:
                self._on_error(exc)
            except Exception:
                _log.exception("watcher.on_error_failed")

    def _route(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WRITE_TYPES:  # opened, closed_no_write, attrib: no content
            return
        if event.event_type == "modified" and self.closes_follow_writes:
            # inotify reports IN_CLOSE_WRITE for every fd that was open for writing, so a
            # modify is only "still being written": wait for the close (scenarios 4, 6).
            return
        src = Path(os.fsdecode(event.src_path))
        dest = Path(os.fsdecode(event.dest_path)) if event.dest_path else None
        if event.is_directory:
            # A new or moved-in directory (new model, `rm -rf dir && git checkout -- dir`):
            # scan it, as files created before watchdog armed the new watch are not reported
            # (scenarios 27, 28). Duplicates of watchdog's own synthetic events coalesce later.
            if event.event_type in {"created", "moved"}:
                for found in scan(dest or src, self._filter):
                    self._submit(found)
            return
        # A move is a write to its destination and "maybe deleted" for its source; a delete
        # is enqueued too. The consumer re-reads and checks existence (rules 1, 3, 4).
        for path in (src, dest) if dest else (src,):
            if self._filter(path):
                self._submit(path)


def _report(exc: BaseException) -> None:
    """Default ``on_error``: log the handler failure and keep watching."""
    _log.error("watcher.handler_failed", exc_info=exc)


class Watcher:
    """Watches ``scope`` (by default ``root``, recursively) and calls ``submit(path)`` for
    every matching change.

    ``submit`` runs on watchdog's thread, so it must be cheap and thread-safe
    (``BatchDriver.submit``). Exceptions from it go to ``on_error``.

    Args:
        root: the repository root (watched recursively when no ``scope`` is given).
        path_filter: decides which paths are submitted (a PathFilter, or any predicate).
        submit: receives each matching path (created, modified, closed, moved either way,
            deleted, or found in a new directory).
        on_error: receives exceptions raised while handling an event.
        observer_factory: builds the observer; pass ``PollingObserver`` where inotify is
            unavailable or in tests that need it.
        hold_open_writes: with inotify, submit a written file on its close, not on each
            modify, so half-written content never reaches a batch. Observers without close
            events always submit on modify.
        on_overflow: called (on watchdog's thread) when the inotify queue overflowed.
        scope: the watches to arm (``watchscope.watch_scope``); the inotify ones are checked
            against the kernel's armed watches on start.
    """

    def __init__(
        self,
        root: Path,
        path_filter: Callable[[Path], bool],
        submit: Callable[[Path], None],
        *,
        on_error: Callable[[BaseException], None] = _report,
        observer_factory: Callable[[], ObserverLike] = Observer,
        hold_open_writes: bool = True,
        on_overflow: Callable[[], None] | None = None,
        scope: Sequence[WatchSpec] = (),
    ) -> None:
        self.root = root
        self._handler = _Handler(path_filter, submit, on_error)
        self._factory = observer_factory
        self._hold_open_writes = hold_open_writes
        self._observer: ObserverLike | None = None
        self._overflow = _OverflowHook(on_overflow) if on_overflow is not None else None
        self.scope = tuple(scope) or (WatchSpec(root, recursive=True),)
        self._prune = path_filter.ignores_dir if isinstance(path_filter, PathFilter) else None

    def start(self) -> None:
        """Arm the watches and start the observer.

        Raises:
            DaemonError: when an inotify limit is reached (with the sysctl that lifts it).
            OSError: for other failures, such as a missing root.
        """
        if self._observer is not None:
            return
        # `mkdir -p` under a recursive watch makes watchdog re-add a watch it already added and
        # warn from its inotify reader thread. Harmless, unless warnings are errors (-W error,
        # pytest's filterwarnings): then the reader thread dies and we go deaf. [measured]
        warnings.filterwarnings(
            "ignore", "Callback with id .* already exists", RuntimeWarning, r"watchdog\."
        )
        observer: ObserverLike | None = None
        try:
            # The inotify observer opens its fd (and starts a reader thread) in __init__,
            # so it is built here, not in Watcher.__init__, and torn down on failure.
            observer = self._factory()
            self._handler.closes_follow_writes = self._hold_open_writes and _emits_closes(observer)
            for spec in self.scope:
                observer.schedule(
                    self._handler,
                    str(spec.path),
                    recursive=spec.recursive,
                    event_filter=_EVENT_TYPES,
                )
            observer.start()
            if _emits_closes(observer):
                self._observer = observer  # for coverage(); reset below on failure
                if (limit := self.coverage()) is not None:
                    raise limit
            if self._overflow is not None:
                self._overflow.install()
        except BaseException as exc:
            self._observer = None
            if observer is not None:
                observer.stop()
            if isinstance(exc, OSError) and (limit := limit_error(exc.errno or 0)) is not None:
                raise limit from exc
            raise
        self._observer = observer

    def coverage(self) -> DaemonError | None:
        """The limit error when inotify left directories of the scope unwatched, else None.

        watchdog swallows the errors of every directory below a watch's root, so an exhausted
        ``max_user_watches`` only shows in the kernel's list of armed watches.
        """
        if self._observer is None or not _emits_closes(self._observer):
            return None  # polling watches no inode
        return check_coverage(self.scope, self._prune or _ignored_dir_name)

    def stop(self) -> None:
        """Stop the observer and join its threads; safe to call twice."""
        observer, self._observer = self._observer, None
        if self._overflow is not None:
            self._overflow.remove()
        if observer is not None:
            observer.stop()
            observer.join()

    def is_alive(self) -> bool:
        """True while the observer, its emitters and its inotify reader run.

        Deleting the watched root stops the emitter but not the observer (rule 8), so the
        observer thread alone says nothing; a supervisor should restart and rescan on False.
        A cookie round-trip (rule 9) remains the only end-to-end proof of hearing.
        """
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        # The inotify observer's shared reader thread can die on its own, leaving observer and
        # emitters alive and deaf; it is private, hence the defensive getattr.
        reader = getattr(observer, "_inotify_fd", None)
        if isinstance(reader, threading.Thread) and not reader.is_alive():
            return False
        emitters = list(observer.emitters)
        return bool(emitters) and all(e.is_alive() for e in emitters)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _OverflowHook(logging.Handler):
    """Rule 8: watchdog only *logs* an inotify queue overflow; turn that record into a call.

    Lost events cannot be replayed, so the caller reconciles by content hash instead.
    """

    LOGGER = "watchdog.observers.inotify_c"

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Inotify queue overflowed"):
            try:
                self._on_overflow()
            except Exception:
                _log.exception("watcher.on_overflow_failed")

    def install(self) -> None:
        logger = logging.getLogger(self.LOGGER)
        logger.addHandler(self)
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)  # log.py quiets watchdog; overflows must still arrive

    def remove(self) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


def polling_observer() -> ObserverLike:
    """The fallback when inotify limits are exhausted: stat-polling, once a second."""
    return PollingObserver(timeout=1.0)


def _emits_closes(observer: ObserverLike) -> bool:
    """Whether the observer reports closes of written files (only inotify does)."""
    return type(observer).__module__ == "watchdog.observers.inotify"
