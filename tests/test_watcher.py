"""PathFilter and scan (pure), the handler behind a fake observer, and real-inotify saves."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog.events import (
    DirCreatedEvent,
    DirModifiedEvent,
    FileAttribEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.polling import PollingObserver

from daemon.errors import DaemonError
from daemon.watcher import PathFilter, Watcher, compile_glob, match_glob, scan

WAIT = 5.0  # deadline for an inotify event to arrive; never reached when things work
ROOT = Path("/repo")


# --- globs and PathFilter (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/modular_*.py", "modular_x.py", True),  # **/ matches zero directories
        ("**/modular_*.py", "src/models/x/modular_x.py", True),
        ("**/modular_*.py", "src/models/x/modeling_x.py", False),
        ("modular_*.py", "a/b/modular_x.py", True),  # no "/": matches the name at any depth
        ("src/modular_*.py", "src/modular_x.py", True),
        ("src/modular_*.py", "src/a/modular_x.py", False),
        ("models/*/modular_*.py", "models/a/modular_x.py", True),
        ("models/*/modular_*.py", "models/a/b/modular_x.py", False),  # * stays in one part
        ("models/**/modular_*.py", "models/a/b/modular_x.py", True),
        ("build/**", "build", True),  # dir/** covers the directory itself
        ("build/**", "build/a/b.py", True),
        ("build/**", "builder/a.py", False),
        ("modular_[ab].py", "modular_a.py", True),
        ("modular_[!ab].py", "modular_a.py", False),
        ("modular_?.py", "modular_xy.py", False),
    ],
)
def test_glob_matching(pattern, path, expected):
    """Globs follow the documented semantics for **, *, ? and classes."""
    assert match_glob(compile_glob(pattern), Path(path).parts) is expected


@pytest.mark.parametrize(
    "name",
    [
        "4913",  # vim's writability probe
        "5036",  # ... and its next try when 4913 is taken
        "modular_x.py~",  # vim / emacs backup
        ".modular_x.py.swp",
        ".modular_x.py.swx",
        ".#modular_x.py",  # emacs lock symlink
        "#modular_x.py#",  # emacs auto-save
        "modular_x.py___jb_tmp___",
        "modular_x.py___jb_old___",
        "modular_x.py.orig",
        "modular_x.py.tmp",
        ".modwatch-modeling_x.py.tmp",
        "modular_x.pyc",
    ],
)
def test_editor_temporaries_are_ignored(name):
    """No editor or tool temporary is ever a source, even under an include-everything glob."""
    everything = PathFilter(ROOT, include=("**",))
    assert not everything(ROOT / "models" / name)


@pytest.mark.parametrize("ignored", [".git", "__pycache__", ".venv", "venv", "node_modules"])
def test_files_in_ignored_directories_are_rejected(ignored):
    """Noise directories are ignored at any depth (scenario 35)."""
    f = PathFilter(ROOT)
    assert not f(ROOT / ignored / "modular_x.py")
    assert not f(ROOT / "a" / ignored / "b" / "modular_x.py")
    assert f.ignores_dir(ROOT / "a" / ignored)


def test_include_and_exclude_globs():
    """Included files pass unless an exclude matches them or one of their directories."""
    f = PathFilter(ROOT, exclude=("tests", "docs/**", "**/legacy/modular_*.py"))
    assert f(ROOT / "src" / "modular_x.py")
    assert not f(ROOT / "src" / "modeling_x.py")
    assert not f(ROOT / "tests" / "modular_x.py")
    assert not f(ROOT / "src" / "tests" / "deep" / "modular_x.py")
    assert not f(ROOT / "docs" / "modular_x.py")
    assert not f(ROOT / "legacy" / "modular_x.py")
    assert f(ROOT / "legacy" / "sub" / "modular_x.py")
    assert f.ignores_dir(ROOT / "docs")
    assert not f.ignores_dir(ROOT / "legacy")
    assert not f.ignores_dir(ROOT)


def test_extra_files_match_and_paths_outside_root_do_not():
    """Explicitly watched files pass without matching a glob; other roots never do."""
    parent = ROOT / "src" / "modeling_llama.py"
    f = PathFilter(ROOT, extra=frozenset({parent}))
    assert f(parent)
    assert not f(ROOT / "src" / "modeling_other.py")
    assert not f(Path("/elsewhere/modular_x.py"))


def test_relative_root_and_paths_are_normalised(tmp_path, monkeypatch):
    """A relative root or path means the same as its absolute form."""
    monkeypatch.chdir(tmp_path)
    f = PathFilter(Path("."))
    assert f(tmp_path / "modular_x.py")
    assert f(Path("sub/modular_x.py"))


# --- scan ---------------------------------------------------------------------------------


def make_tree(root: Path, *files: str) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")


def test_scan_returns_matching_files_sorted(tmp_path):
    """scan finds every matching file below root, sorted, and nothing else."""
    make_tree(
        tmp_path,
        "models/b/modular_b.py",
        "models/a/modular_a.py",
        "modular_top.py",
        "models/a/modeling_a.py",
        "models/a/modular_a.py~",
        ".git/modular_git.py",
        "node_modules/x/modular_n.py",
        "tests/modular_t.py",
    )
    f = PathFilter(tmp_path, exclude=("tests",))
    assert scan(tmp_path, f) == [
        tmp_path / "models/a/modular_a.py",
        tmp_path / "models/b/modular_b.py",
        tmp_path / "modular_top.py",
    ]


def test_scan_does_not_descend_into_ignored_directories(tmp_path, monkeypatch):
    """Ignored and excluded directories are pruned, not walked and filtered (rule 10)."""
    make_tree(tmp_path, ".git/objects/ab/cd", ".venv/lib/x.py", "build/a/b.py", "src/modular_x.py")
    visited: list[Path] = []
    real_walk = os.walk

    def spy_walk(top, *args, **kwargs):
        for entry in real_walk(top, *args, **kwargs):
            visited.append(Path(entry[0]))
            yield entry

    monkeypatch.setattr(os, "walk", spy_walk)
    assert scan(tmp_path, PathFilter(tmp_path, exclude=("build/**",))) == [
        tmp_path / "src/modular_x.py"
    ]
    assert sorted(visited) == [tmp_path, tmp_path / "src"]


def test_scan_of_a_subdirectory_uses_the_filter_root(tmp_path):
    """Scanning a new model directory applies patterns relative to the filter's root."""
    make_tree(tmp_path, "models/new/modular_new.py", "models/new/sub/modular_deep.py")
    f = PathFilter(tmp_path, include=("models/*/modular_*.py",))
    assert scan(tmp_path / "models" / "new", f) == [tmp_path / "models/new/modular_new.py"]
    assert scan(tmp_path / ".git", PathFilter(tmp_path)) == []


def test_scan_accepts_any_predicate_and_still_prunes_noise_dirs(tmp_path):
    """A plain callable filter gets the built-in pruning of .git, .venv and friends."""
    make_tree(tmp_path, "a/modular_a.py", ".venv/modular_v.py", "b/.git/modular_g.py")
    assert scan(tmp_path, lambda p: p.suffix == ".py") == [tmp_path / "a/modular_a.py"]


# --- the handler, behind a fake observer --------------------------------------------------


class FakeObserver:
    """Stands in for watchdog's observer; tests call dispatch() as its thread would."""

    def __init__(self) -> None:
        self.handler: FileSystemEventHandler | None = None
        self.alive = False
        self.emitters: list[FakeObserver] = [self]
        self._inotify_fd: threading.Thread | None = None  # like InotifyObserver's reader

    def schedule(self, event_handler, path, *, recursive, event_filter):
        self.handler = event_handler

    def start(self) -> None:
        self.alive = True

    def stop(self) -> None:
        self.alive = False

    def join(self, timeout: float | None = None) -> None:
        pass

    def is_alive(self) -> bool:
        return self.alive

    def dispatch(self, event: FileSystemEvent) -> None:
        assert self.handler is not None
        self.handler.dispatch(event)


@pytest.fixture
def fake(tmp_path) -> Iterator[tuple[FakeObserver, list[Path], list[BaseException]]]:
    observer = FakeObserver()
    submitted: list[Path] = []
    errors: list[BaseException] = []
    with Watcher(
        tmp_path,
        PathFilter(tmp_path),
        submitted.append,
        on_error=errors.append,
        observer_factory=lambda: observer,
    ):
        yield observer, submitted, errors


def test_move_submits_destination_and_source(fake, tmp_path):
    """A move is a write to dest and maybe-deleted for src; each side is filtered alone."""
    observer, submitted, _ = fake
    real, tmp = tmp_path / "modular_x.py", tmp_path / "modular_x.py___jb_tmp___"
    observer.dispatch(FileMovedEvent(str(tmp), str(real)))  # ignored src must not hide dest
    observer.dispatch(FileMovedEvent(str(real), str(tmp_path / "modular_y.py")))
    assert submitted == [real, real, tmp_path / "modular_y.py"]


def test_content_free_events_are_not_submitted(fake, tmp_path):
    """Opens, read-only closes, attribute changes and directory modifications carry no content."""
    observer, submitted, _ = fake
    path = str(tmp_path / "modular_x.py")
    for event in (FileOpenedEvent(path), FileClosedNoWriteEvent(path), FileAttribEvent(path)):
        observer.dispatch(event)
    observer.dispatch(DirModifiedEvent(str(tmp_path)))
    observer.dispatch(FileCreatedEvent(path))
    observer.dispatch(FileModifiedEvent(path))  # this observer reports no closes: a write
    observer.dispatch(FileDeletedEvent(path))
    observer.dispatch(FileCreatedEvent(os.fsencode(path)))  # bytes paths are decoded
    assert submitted == [Path(path)] * 4


def test_created_directory_is_scanned(fake, tmp_path):
    """A new directory's matching files are submitted even without their own events."""
    observer, submitted, _ = fake
    make_tree(tmp_path, "models/new/modular_new.py", "models/new/modeling_new.py")
    observer.dispatch(DirCreatedEvent(str(tmp_path / "models")))
    assert submitted == [tmp_path / "models/new/modular_new.py"]


def test_handler_errors_go_to_on_error_and_never_escape(tmp_path):
    """An exception in submit is reported; one in on_error is swallowed (rule 8)."""
    observer = FakeObserver()

    def submit(path: Path) -> None:
        raise RuntimeError(f"cannot take {path.name}")

    def on_error(exc: BaseException) -> None:
        raise ValueError("on_error broke too")

    with Watcher(
        tmp_path, PathFilter(tmp_path), submit, on_error=on_error, observer_factory=lambda: observer
    ):
        observer.dispatch(FileCreatedEvent(str(tmp_path / "modular_x.py")))  # does not raise


def test_a_dead_inotify_reader_makes_the_watcher_not_alive(tmp_path):
    """When watchdog's shared reader thread has died, is_alive says so (alive but deaf)."""
    observer = FakeObserver()
    with Watcher(tmp_path, PathFilter(tmp_path), print, observer_factory=lambda: observer) as w:
        assert w.is_alive()
        observer._inotify_fd = threading.Thread()  # a thread that is not running
        assert not w.is_alive()


def test_watch_limit_becomes_an_actionable_error(tmp_path):
    """ENOSPC from inotify is reported with the sysctl to raise (scenario 29)."""

    def exhausted() -> FakeObserver:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    watcher = Watcher(tmp_path, PathFilter(tmp_path), print, observer_factory=exhausted)
    with pytest.raises(DaemonError, match="max_user_watches") as info:
        watcher.start()
    assert info.value.hint is not None
    assert "sysctl -w fs.inotify.max_user_watches=" in info.value.hint
    assert not watcher.is_alive()


def test_failed_start_tears_the_observer_down(tmp_path):
    """A missing root raises, and the inotify threads built for it are stopped."""
    before = set(threading.enumerate())
    watcher = Watcher(tmp_path / "missing", PathFilter(tmp_path), print)
    with pytest.raises(FileNotFoundError):
        watcher.start()
    assert not watcher.is_alive()
    assert {t for t in threading.enumerate() if t.is_alive()} <= before


# --- real inotify -------------------------------------------------------------------------


class Recorder:
    """submit() callback that remembers paths and lets a test wait for a specific one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paths: list[Path] = []
        self._seen: dict[Path, threading.Event] = {}

    def _event(self, path: Path) -> threading.Event:
        with self._lock:
            return self._seen.setdefault(path, threading.Event())

    def __call__(self, path: Path) -> None:
        with self._lock:
            self.paths.append(path)
        self._event(path).set()

    def wait_for(self, path: Path) -> bool:
        return self._event(path).wait(WAIT)

    def sync(self, directory: Path) -> list[Path]:
        """Write a cookie file and wait for it (rule 9); returns what came before it."""
        cookie = directory / f"modular_cookie_{uuid.uuid4().hex}.py"
        cookie.write_text("")
        assert self.wait_for(cookie), "cookie never arrived"
        with self._lock:
            return [p for p in self.paths[: self.paths.index(cookie)] if "cookie" not in p.name]

    def clear(self) -> None:
        with self._lock:
            self.paths.clear()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def watching(root) -> Iterator[tuple[Watcher, Recorder, list[BaseException]]]:
    recorder, errors = Recorder(), list[BaseException]()
    with Watcher(root, PathFilter(root), recorder, on_error=errors.append) as watcher:
        yield watcher, recorder, errors
    assert errors == []


def vim_save(p: Path, data: str) -> None:
    (p.parent / "4913").write_text("")
    os.unlink(p.parent / "4913")
    bak = p.with_name(p.name + "~")
    os.rename(p, bak)
    p.write_text(data)
    os.unlink(bak)


def jetbrains_save(p: Path, data: str) -> None:
    tmp, old = p.with_name(p.name + "___jb_tmp___"), p.with_name(p.name + "___jb_old___")
    tmp.write_text(data)
    os.rename(p, old)
    os.rename(tmp, p)
    os.unlink(old)


def vscode_save(p: Path, data: str) -> None:
    with open(p, "w") as f:  # truncates: the empty window is exposed (scenario 4)
        f.flush()
        time.sleep(0.03)  # simulates the editor's gap, not synchronisation
        f.write(data)


def atomic_replace(p: Path, data: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.replace(tmp, p)


def emacs_save(p: Path, data: str) -> None:
    lock = p.with_name(".#" + p.name)
    os.symlink("user@host.1:1", lock)  # dangling on purpose
    os.rename(p, p.with_name(p.name + "~"))
    p.write_text(data)
    os.unlink(lock)


@pytest.mark.parametrize(
    "save",
    [vim_save, jetbrains_save, vscode_save, atomic_replace, emacs_save],
    ids=lambda f: f.__name__,
)
def test_editor_save_submits_only_the_real_path(watching, root, save: Callable[[Path, str], None]):
    """Every editor's save strategy ends in the real path being submitted, never a temp name."""
    _, recorder, _ = watching
    target = root / "models" / "x" / "modular_x.py"
    target.parent.mkdir(parents=True)
    target.write_text("a = 1\n")
    recorder.sync(root)
    recorder.clear()
    save(target, "a = 2\n")
    assert set(recorder.sync(root)) == {target}
    assert target.read_text() == "a = 2\n"


def test_a_file_still_open_for_writing_is_submitted_only_on_close(watching, root):
    """A slow writer's partial content is never submitted; its close is (scenarios 4, 6)."""
    _, recorder, _ = watching
    target = root / "modular_x.py"
    target.write_text("a = 1\n")
    recorder.sync(root)
    recorder.clear()
    with open(target, "w") as f:  # truncates: an empty window
        f.write("a = ")
        f.flush()
        assert recorder.sync(root) == []
        f.write("2\n")
    assert recorder.sync(root) == [target]


def test_hold_open_writes_can_be_turned_off(root):
    """With hold_open_writes=False every modify is submitted, as with polling."""
    target = root / "modular_x.py"
    target.write_text("")
    recorder = Recorder()
    with Watcher(root, PathFilter(root), recorder, hold_open_writes=False), open(target, "w") as f:
        f.write("a = ")
        f.flush()
        # truncate and write are two modifies; watchdog merges them only if still queued
        assert set(recorder.sync(root)) == {target}


def test_new_model_directory_after_start_is_seen(watching, root):
    """A directory tree created after start is watched and its modular file submitted (28)."""
    _, recorder, _ = watching
    new = root / "models" / "new" / "deeper" / "modular_new.py"
    new.parent.mkdir(parents=True)  # several levels at once: races watchdog arming watches
    new.write_text("x = 1\n")
    assert recorder.wait_for(new)
    recorder.clear()
    new.write_text("x = 2\n")  # and later edits in it are seen too
    assert new in recorder.sync(root)


def test_nested_mkdir_races_do_not_deafen_the_watcher(watching, root):
    """`mkdir -p` makes watchdog warn from its reader thread; with warnings as errors (as in
    this suite) that used to kill the thread. [measured: about 1 run in 30]"""
    watcher, recorder, _ = watching
    for i in range(30):
        new = root / f"m{i}" / "a" / "b" / "modular_new.py"
        new.parent.mkdir(parents=True)
        new.write_text("")
        assert new in recorder.sync(root)
    assert watcher.is_alive()


def test_replaced_and_moved_in_directories_are_seen(watching, root, tmp_path):
    """rm -rf + re-create, and a directory moved in from outside, both yield their files (27)."""
    _, recorder, _ = watching
    model = root / "models" / "foo" / "modular_foo.py"
    make_tree(root, "models/foo/modular_foo.py")
    recorder.sync(root)
    shutil.rmtree(root / "models" / "foo")
    make_tree(root, "models/foo/modular_foo.py")
    outside = tmp_path / "staging" / "bar"
    make_tree(outside, "modular_bar.py")
    os.rename(outside, root / "models" / "bar")
    seen = recorder.sync(root)
    assert model in seen
    assert root / "models" / "bar" / "modular_bar.py" in seen


def test_rename_and_delete_are_submitted(watching, root):
    """Both sides of a rename and a deleted file reach submit (rules 3, 4)."""
    _, recorder, _ = watching
    a, b = root / "modular_a.py", root / "modular_b.py"
    a.write_text("")
    recorder.sync(root)
    recorder.clear()
    os.rename(a, b)
    b.unlink()
    assert set(recorder.sync(root)) == {a, b}


def test_noise_paths_are_not_submitted(watching, root):
    """Writes under .git, .venv, __pycache__ and to swap/orig files submit nothing (35)."""
    _, recorder, _ = watching
    make_tree(
        root,
        ".git/objects/ab/modular_x.py",
        ".venv/lib/modular_x.py",
        "__pycache__/modular_x.cpython-311.pyc",
        ".modular_x.py.swp",
        "modular_x.py.orig",
    )
    assert recorder.sync(root) == []


def test_a_raising_submit_does_not_kill_the_observer(root):
    """After submit raises, later events are still delivered and the watcher stays alive (31)."""
    recorder, errors = Recorder(), list[BaseException]()
    bad = root / "modular_bad.py"

    def submit(path: Path) -> None:
        if path == bad:
            raise RuntimeError("submit failed")
        recorder(path)

    with Watcher(root, PathFilter(root), submit, on_error=errors.append) as watcher:
        bad.write_text("")
        recorder.sync(root)
        assert watcher.is_alive()
    assert errors and all(str(e) == "submit failed" for e in errors)


def test_deleting_the_root_is_reported_by_is_alive(root):
    """The emitter dies with the root while watchdog's observer lives on; is_alive sees it (26)."""
    with Watcher(root, PathFilter(root), Recorder()) as watcher:
        assert watcher.is_alive()
        shutil.rmtree(root)
        deadline = time.monotonic() + WAIT
        while watcher.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # polling with a deadline, not a fixed wait
        assert not watcher.is_alive()
    watcher.stop()  # idempotent after the context manager stopped it


def test_polling_observer_can_be_injected(root):
    """observer_factory swaps inotify for polling, e.g. where inotify is unavailable."""
    recorder = Recorder()
    factory = lambda: PollingObserver(timeout=0.05)  # noqa: E731
    target = root / "modular_x.py"
    target.write_text("a = 1\n")
    with Watcher(root, PathFilter(root), recorder, observer_factory=factory) as watcher:
        assert watcher.is_alive()
        target.write_text("a = 22\n")  # polling sees no closes: the modify itself counts
        assert target in recorder.sync(root)
    assert not watcher.is_alive()
