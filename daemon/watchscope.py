"""Which directories to watch (rule 10), and whether the kernel really watches them.

``watch_scope`` is pure: from the directories that hold sources and their parents it derives
a few watches instead of one recursive watch on the whole repository (watchdog cannot exclude
a subtree, so a recursive root watch would also cover ``.git/objects``, docs and tests).

The rest reads the kernel's answer. watchdog 7.1 swallows inotify errors on every directory
below a watch's root, so with ``max_user_watches`` exhausted it starts "successfully" and
hears nothing from most subdirectories [measured: limit 3, daemon started, no error]. The
inotify fd's ``fdinfo`` lists the inode of every armed watch; a directory of the scope missing
from it, confirmed by a probe that gets ``ENOSPC``, is the limit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import DaemonError

INOTIFY_PROC = Path("/proc/sys/fs/inotify")
_IN_CREATE, _IN_ONLYDIR = 0x00000100, 0x01000000  # <sys/inotify.h>
_LIMITS = {errno.ENOSPC: "max_user_watches", errno.EMFILE: "max_user_instances"}


@dataclass(frozen=True)
class WatchSpec:
    """One watchdog schedule: a directory, alone or with everything below it."""

    path: Path
    recursive: bool


def watch_scope(root: Path, dirs: Iterable[Path], git_dir: Path | None) -> tuple[WatchSpec, ...]:
    """The watches that cover ``dirs`` (directories holding sources or parents) and new
    siblings of them, plus shallow watches of ``root`` and ``git_dir``.

    Each directory's parent is watched recursively (``models/`` for ``models/gemma``), so a
    new model directory is heard at once (scenario 28); the root shallowly, for cookies and
    new top-level directories; the git directory shallowly (index.lock, HEAD, rebase and
    merge markers), as watchman's ``ignore_vcs`` does. A directory at the root, or no
    directory at all, falls back to one recursive watch of the root.
    """
    root = Path(os.path.abspath(root))
    containers: set[Path] = set()
    for d in dirs:
        d = Path(os.path.abspath(d))
        if d == root or not d.is_relative_to(root):
            containers.add(root)
        else:
            containers.add(d.parent)
    if not containers:
        containers.add(root)
    kept: list[Path] = []
    for c in sorted(containers, key=lambda p: (len(p.parts), p)):
        if not any(c.is_relative_to(k) for k in kept):
            kept.append(c)
    specs = [WatchSpec(c, recursive=True) for c in kept]
    if root not in kept:
        specs.insert(0, WatchSpec(root, recursive=False))
    if git_dir is not None:
        git_dir = Path(os.path.abspath(git_dir))
        if not any(git_dir.is_relative_to(k) for k in kept):
            specs.append(WatchSpec(git_dir, recursive=False))
    return tuple(specs)


def covers(scope: Sequence[WatchSpec], directory: Path) -> bool:
    """Does a watch of ``scope`` report changes in ``directory``'s entries?"""
    return any(
        directory == spec.path or (spec.recursive and directory.is_relative_to(spec.path))
        for spec in scope
    )


def scope_dirs(scope: Sequence[WatchSpec], prune: Callable[[Path], bool]) -> list[Path]:
    """Every directory the scope's watches cover (what watchdog arms), pruned like ``scan``."""
    found: list[Path] = []
    for spec in scope:
        found.append(spec.path)
        if not spec.recursive:
            continue
        for dirpath, dirnames, _ in os.walk(spec.path):
            here = Path(dirpath)
            # watchdog itself does not prune; the daemon does not care about those directories
            # (.git, __pycache__) being unwatched, so they are not required here.
            dirnames[:] = [
                d for d in dirnames if not prune(here / d) and not (here / d).is_symlink()
            ]
            found.extend(here / d for d in dirnames)
    return found


def watched_inodes(pid: int | str = "self") -> set[tuple[int, int]]:
    """(device, inode) of every inotify watch armed by process ``pid``, from its fdinfo."""
    fd_dir = Path(f"/proc/{pid}/fd")
    watched: set[tuple[int, int]] = set()
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return watched
    for fd in fds:
        try:
            if os.readlink(fd_dir / fd) != "anon_inode:inotify":
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue  # closed meanwhile
        for line in info.splitlines():
            if line.startswith("inotify wd:"):
                fields = dict(part.split(":", 1) for part in line.split()[1:] if ":" in part)
                watched.add((int(fields["sdev"], 16), int(fields["ino"], 16)))
    return watched


def _kernel_dev(st_dev: int) -> int:
    # fdinfo prints the kernel's internal dev_t (major << 20 | minor), not st_dev's encoding.
    return (os.major(st_dev) << 20) | os.minor(st_dev)


def unwatched(dirs: Iterable[Path], watched: set[tuple[int, int]]) -> list[Path]:
    """The directories of ``dirs`` that exist and carry no armed watch."""
    missing: list[Path] = []
    for d in dirs:
        try:
            st = d.stat()
        except OSError:
            continue  # vanished since the walk: nothing to hear there
        if (_kernel_dev(st.st_dev), st.st_ino) not in watched:
            missing.append(d)
    return missing


def probe_add_watch(path: Path) -> int:
    """Try to arm one inotify watch on ``path`` in a fresh instance; 0 or the errno.

    Tells "the watch limit is reached" (ENOSPC, EMFILE) from "this directory appeared after
    the walk", without guessing from watchdog's swallowed errors.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        return ctypes.get_errno()
    try:
        wd = libc.inotify_add_watch(fd, os.fsencode(path), _IN_ONLYDIR | _IN_CREATE)
        return 0 if wd >= 0 else ctypes.get_errno()
    finally:
        os.close(fd)


def limit_error(code: int, needed: int | None = None) -> DaemonError | None:
    """An actionable error for an exhausted inotify limit (rule 10, scenario 29), else None."""
    limit = _LIMITS.get(code)
    if limit is None:
        return None
    try:
        current = (INOTIFY_PROC / limit).read_text().strip()
    except OSError:
        current = "unknown"
    need = f", {needed} directories to watch" if needed is not None else ""
    return DaemonError(
        f"cannot watch: inotify limit fs.inotify.{limit} reached (currently {current}{need})",
        hint=f"sudo sysctl -w fs.inotify.{limit}=524288, or watch a narrower directory",
    )


def check_coverage(scope: Sequence[WatchSpec], prune: Callable[[Path], bool]) -> DaemonError | None:
    """The limit error when directories of ``scope`` are silently unwatched, else None."""
    dirs = scope_dirs(scope, prune)
    missing = unwatched(dirs, watched_inodes())
    if not missing:
        return None
    return limit_error(probe_add_watch(missing[0]), needed=len(dirs))
