"""All of modwatch's git access: where a worktree keeps its files, whether git is busy, staging.

The only module importing GitPython (house style, habit 8). Values out are plain ``Path``,
``str``, ``bool`` and :class:`StageResult`. GitPython is used for reads only, each ``Repo``
inside a ``with`` block so its persistent ``git cat-file`` children die with it (rule 11,
scenario 33). Everything that writes goes through the git command line (rule 11).
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from git import GitCommandError, Repo

from daemon.errors import GitError


# A hook exports GIT_INDEX_FILE, GIT_DIR, GIT_PREFIX...; inherited by a daemon started from
# the hook they would point every later git at the hook's temporary index (scenario 23).
# `--local-env-vars` is git's own list of such variables, so it matches the installed git.
@functools.cache
def _local_env() -> frozenset[str]:
    """Return the names of git's repository-local environment variables."""
    cmd = ["git", "rev-parse", "--local-env-vars"]
    return frozenset(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split())


# Inherited list-valued variables that an empty value neutralises; see _repo() for why.
_EMPTY_IS_NONE = ("GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT")

_sleep = time.sleep  # the retry loop's only clock; tests wrap it to synchronise with it


@dataclass(frozen=True)
class StageResult:
    """What :func:`stage` did: outputs staged, outputs flagged, and why they were flagged."""

    staged: tuple[Path, ...]
    flagged: tuple[Path, ...]
    reason: str | None


@dataclass(frozen=True)
class _Where:
    """Absolute locations of one worktree, resolved once per call."""

    root: Path
    git_dir: Path
    common_dir: Path
    index: Path


def _env(index: Path | None = None) -> dict[str, str]:
    """The environment for every git we run: no inherited locations, no optional locks."""
    env = {k: v for k, v in os.environ.items() if k not in _local_env()}
    # Reads must never take index.lock, or the user's own `git add` fails (rule 6, scenario 18).
    env["GIT_OPTIONAL_LOCKS"] = "0"
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    return env


def _git(
    cwd: Path, *args: str, index: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git in ``cwd`` with the scrubbed environment; on failure raise GitError if ``check``."""
    done = subprocess.run(["git", *args], cwd=cwd, env=_env(index), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}",
            hint=f"run `git -C {cwd} status` and resolve what it reports",
        )
    return done


def _git_paths(root: Path, *names: str) -> list[Path]:
    """Resolve several ``--git-path`` names in one git call."""
    args = [a for name in names for a in ("--git-path", name)]
    out = _git(root, "rev-parse", "--path-format=absolute", *args).stdout
    return [Path(p) for p in out.splitlines()]


def _locate(root: Path, index_file: Path | None = None) -> _Where:
    """Resolve the worktree's directories; ``index_file`` (relative to ``root``) overrides."""
    args = "--path-format=absolute --show-toplevel --absolute-git-dir --git-common-dir"
    lines = _git(root, "rev-parse", *args.split(), "--git-path", "index").stdout.splitlines()
    top, gdir, cdir, index = (Path(line) for line in lines)
    return _Where(top, gdir, cdir, top / index_file if index_file is not None else index)


@contextmanager
def _repo(where: _Where) -> Iterator[Repo]:
    """Open a GitPython ``Repo`` whose git children see only this worktree's locations."""
    with Repo(where.root) as repo:  # __exit__ closes it and kills the cat-file children
        # GitPython copies os.environ into each git it runs and cannot unset a key, so an
        # inherited GIT_INDEX_FILE would leak in (scenario 23): pin the locations instead.
        pinned = {k: "" for k in _EMPTY_IS_NONE if k in os.environ}
        pinned.update(
            GIT_DIR=str(where.git_dir),
            GIT_WORK_TREE=str(where.root),
            GIT_COMMON_DIR=str(where.common_dir),
            GIT_OBJECT_DIRECTORY=str(where.common_dir / "objects"),
            GIT_INDEX_FILE=str(where.index),
            GIT_OPTIONAL_LOCKS="0",
        )
        repo.git.update_environment(**pinned)
        yield repo


def find_worktree(path: Path) -> Path | None:
    """Return the top level of the worktree containing ``path``, or None outside a worktree."""
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        probe = probe.parent
    done = _git(probe, "rev-parse", "--path-format=absolute", "--show-toplevel", check=False)
    top = done.stdout.strip()
    return Path(top) if done.returncode == 0 and top else None


def git_dir(root: Path) -> Path:
    """Return the worktree's own git dir (``.git/worktrees/<wt>`` in a linked worktree)."""
    return _locate(root).git_dir


def common_dir(root: Path) -> Path:
    """Return the git dir shared by all worktrees (where hooks and shared locks live)."""
    # Not GitPython's Repo.common_dir: it honours an inherited GIT_COMMON_DIR (scenario 23).
    return _locate(root).common_dir


def hooks_path_config(root: Path) -> str | None:
    """Return ``core.hooksPath`` as configured for ``root`` (``~`` expanded), or None if unset."""
    # --type=path expands ~ as git does when it looks the hooks up; exit 1 means unset.
    done = _git(root, "config", "--type=path", "--get", "core.hooksPath", check=False)
    if done.returncode == 1:
        return None
    if done.returncode != 0:
        raise GitError(
            f"cannot read core.hooksPath in {root}: {done.stderr.strip()}",
            hint=f"run `git -C {root} config --show-origin --get-all core.hooksPath`",
        )
    return done.stdout.rstrip("\n")


def git_path(root: Path, name: str) -> Path:
    """Return where git keeps ``name`` for this worktree (``git rev-parse --git-path``)."""
    return _git_paths(root, name)[0]


def operation_in_progress(root: Path) -> str | None:
    """Return the git operation in progress in this worktree, or None.

    Returns:
        ``"rebase"``, ``"am"``, ``"merge"``, ``"cherry-pick"``, ``"revert"`` or ``"bisect"``.
        A leftover ``REBASE_HEAD`` alone does not count (scenario 15).
    """
    return operation_from(operation_markers(root))


_MARKERS = ["rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD"]
_MARKERS += ["BISECT_LOG", "sequencer/todo"]


def operation_markers(root: Path) -> dict[str, Path]:
    """Where git keeps the marker of each operation in this worktree (one git process; the
    answer holds until the git directory moves, so a daemon resolves it once)."""
    return dict(zip(_MARKERS, _git_paths(root, *_MARKERS), strict=True))


def operation_from(found: dict[str, Path]) -> str | None:
    """``operation_in_progress`` from resolved markers: a few stats, no process."""
    # A rebase is the outer operation even while one of its steps stops with MERGE_HEAD.
    if found["rebase-merge"].is_dir():
        return "rebase"
    if found["rebase-apply"].is_dir():
        return "am" if (found["rebase-apply"] / "applying").exists() else "rebase"
    markers = {"MERGE_HEAD": "merge", "CHERRY_PICK_HEAD": "cherry-pick"}
    markers |= {"REVERT_HEAD": "revert", "BISECT_LOG": "bisect"}
    for name, op in markers.items():
        if found[name].exists():
            return op
    # A multi-commit cherry-pick or revert whose stopped step was committed by hand leaves
    # only sequencer/, and `git status` still reports it in progress (rule 12).
    todo = found["sequencer/todo"]
    words = todo.read_text().split()[:1] if todo.is_file() else []
    ops = {"pick": "cherry-pick", "p": "cherry-pick", "revert": "revert"}
    return next((ops[w] for w in words if w in ops), None)


def _locked(where: _Where) -> bool:
    """Return whether the lock of the index we would write exists."""
    return where.index.with_name(where.index.name + ".lock").exists()


def index_locked(root: Path) -> bool:
    """Return whether some git holds this worktree's ``index.lock`` right now."""
    return git_path(root, "index.lock").exists()


def _rel(where: _Where, path: Path) -> str:
    """Return ``path`` relative to the worktree top, as git wants it."""
    try:
        return path.resolve().relative_to(where.root.resolve()).as_posix()
    except ValueError:
        raise GitError(f"{path} is outside the worktree {where.root}") from None


def _spec(where: _Where, path: Path) -> str:
    """Return a pathspec for exactly ``path``, whatever git's cwd and the name's characters."""
    return f":(top,literal){_rel(where, path)}"


def _unmerged(repo: Repo) -> bool:
    return bool(repo.git.ls_files("--unmerged"))


def _tracked(repo: Repo, spec: str) -> bool:
    return bool(repo.git.ls_files("--", spec))


def _partially_staged(repo: Repo, spec: str) -> bool:
    # `git status`, not `git diff`: diff rewrites the index when it meets stat-dirty files,
    # taking index.lock even under GIT_OPTIONAL_LOCKS=0 (git 2.39); status honours it (rule 6).
    xy = repo.git.status(
        "--porcelain=v1", "--untracked-files=no", "--", spec, strip_newline_in_stdout=False
    )
    return any(line[0] not in " ?!" and line[1] not in " ?!" for line in xy.splitlines())


def has_unmerged_paths(root: Path) -> bool:
    """Return whether the index has conflict entries (``git ls-files --unmerged``)."""
    with _repo(_locate(root)) as repo:
        return _unmerged(repo)


def is_tracked(root: Path, path: Path) -> bool:
    """Return whether ``path`` is in the index (staged new files count as tracked)."""
    where = _locate(root)
    with _repo(where) as repo:
        return _tracked(repo, _spec(where, path))


def is_partially_staged(root: Path, path: Path) -> bool:
    """Return whether ``path`` has staged changes against HEAD and unstaged ones on top."""
    where = _locate(root)
    with _repo(where) as repo:
        return _partially_staged(repo, _spec(where, path))


def head_text(root: Path, path: Path) -> str | None:
    """Return ``path``'s content at HEAD (undecodable bytes replaced), or None if absent."""
    where = _locate(root)
    with _repo(where) as repo:
        # git resolves the name: GitPython's own ref reading would follow an inherited
        # GIT_COMMON_DIR (scenario 23). Exit 1 under --quiet means no such object.
        try:
            sha = repo.git.rev_parse("--verify", "--quiet", f"HEAD:{_rel(where, path)}")
        except GitCommandError as exc:
            if exc.status == 1:
                return None
            raise
        stream = repo.odb.stream(bytes.fromhex(sha))  # the persistent `cat-file --batch`
        if stream.type != b"blob":
            return None
        data: bytes = stream.read()
        return data.decode("utf-8", errors="replace")


def staged_paths(root: Path) -> list[Path]:
    """Return the absolute paths whose index content differs from HEAD."""
    where = _locate(root)
    names = _git(where.root, "diff", "--cached", "--name-only", "-z", index=where.index).stdout
    return [where.root / name for name in names.split("\0") if name]


def _refusal(where: _Where, source: Path) -> str | None:
    """Return why outputs of ``source`` must not be staged now, or None when they may be."""
    op = operation_in_progress(where.root)
    if op is not None:  # rules 5 and 12: flag, never touch the index mid-operation
        return f"operation_in_progress:{op}"
    spec = _spec(where, source)
    with _repo(where) as repo:
        if _unmerged(repo):  # scenario 21
            return "unmerged_paths"
        if not _tracked(repo, spec):
            return "source_untracked"
        if _partially_staged(repo, spec):  # staging would mix with the user's hunks (19)
            return "source_partially_staged"
    return None


# A user's `git add && git commit` rewrites the index twice within milliseconds; staging
# only into an index quiet for this long keeps our `git add` out of their sequence
# (scenario 18: 6 of 200 user commands failed on index.lock before this wait, 0 after).
QUIET_INDEX_S = 0.25


def _wait_until_quiet(where: _Where, limit_s: float = 2.0) -> None:
    """Wait (bounded) until the index has not been written for ``QUIET_INDEX_S``."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            age = time.time() - where.index.stat().st_mtime
        except FileNotFoundError:
            return
        if age >= QUIET_INDEX_S:
            return
        time.sleep(QUIET_INDEX_S - age)  # not _sleep: tests count only the lock back-offs


def stage(
    root: Path,
    outputs: Sequence[Path],
    *,
    source: Path,
    retries: int = 5,
    backoff_s: float = 0.1,
    index_file: Path | None = None,
) -> StageResult:
    """Stage ``outputs`` generated from ``source`` with ``git add``, or flag them all.

    Args:
        root: the worktree top level.
        outputs: generated files to stage.
        source: the ``modular_*.py`` file they were generated from.
        retries: how many more ``git add`` attempts to make while ``index.lock`` is held.
        backoff_s: the first wait; each further wait doubles.
        index_file: stage into this index instead of the worktree's own. Only the ``hook``
            command passes it (its inherited ``GIT_INDEX_FILE``), so staging lands in the
            index being committed (habit 8); everything else stages into the real index.

    Returns:
        Everything staged with ``reason=None``, or everything flagged with a reason:
        ``operation_in_progress:<op>``, ``unmerged_paths``, ``source_untracked``,
        ``source_partially_staged`` or ``index_locked``.

    Raises:
        GitError: ``git add`` failed for another reason than the lock (e.g. an ignored path).
    """
    outs = tuple(outputs)
    if not outs:
        return StageResult((), (), None)
    where = _locate(root, index_file)
    specs = [_spec(where, out) for out in outs]
    for attempt in range(retries + 1):
        if attempt:
            _sleep(backoff_s * 2 ** (attempt - 1))
        # Re-decide on every attempt: the lock may have belonged to a merge that just began.
        reason = _refusal(where, source)
        if reason is not None:
            return StageResult((), outs, reason)
        if _locked(where):
            continue  # never delete index.lock; wait for its owner (rule 6, scenario 17)
        _wait_until_quiet(where)
        done = _git(where.root, "add", "--", *specs, index=where.index, check=False)
        if done.returncode == 0:
            return StageResult(outs, (), None)
        lock_name = where.index.name + ".lock"
        if lock_name not in done.stderr and not _locked(where):
            raise GitError(
                f"git add failed in {where.root}: {done.stderr.strip()}",
                hint="check that the outputs are not ignored: git check-ignore -v <output>",
            )
    return StageResult((), outs, "index_locked")


def init_repo(root: Path) -> None:
    """``git init`` a new repository on branch ``main`` (used for the bundled example)."""
    _git(root, "init", "-q", "-b", "main")


def commit_all(root: Path, message: str) -> None:
    """Commit everything in a repository modwatch created itself (the bundled example).

    A fallback identity is given so this works on a machine where git has none configured.
    """
    _git(root, "add", "-A")
    identity = ("-c", "user.name=modwatch", "-c", "user.email=modwatch@localhost")
    has_name = _git(root, "config", "user.name", check=False).returncode == 0
    _git(root, *(() if has_name else identity), "commit", "-q", "--allow-empty", "-m", message)


def head_commit(root: Path) -> str | None:
    """The commit HEAD points at (None in a repository without commits)."""
    done = _git(root, "rev-parse", "--verify", "-q", "HEAD", check=False)
    return done.stdout.strip() or None


_Stamp = tuple[int, int, int, int] | None  # inode, mtime, ctime, size; None: absent


def _stamp_of(path: Path) -> _Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class HeadWatch:
    """HEAD's commit, asking git only when a file it is read from changed.

    Every batch asks whether HEAD moved (rule 12); ``git rev-parse`` was 3 ms of each warm
    save. HEAD is read from the worktree's ``HEAD``, the loose ref it names, ``packed-refs``
    and a reftable's ``tables.list``; git rewrites each through a lock file and a rename, so
    a new commit or checkout gives at least one of them a new inode and times. The stamp is
    taken before git runs: a change in between makes the next stamp differ, never hides one.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: list[Path] | None = None  # resolved on first use: ``convert`` never asks
        self._stamp: tuple[object, ...] | None = None
        self._commit: str | None = None

    def commit(self) -> str | None:
        """The commit HEAD points at (None without commits), as ``head_commit``."""
        if self._files is None:
            names = ("HEAD", "packed-refs", "reftable/tables.list", "refs/heads")
            self._files = _git_paths(self.root, *names)
        stamp = self._stamp_now(*self._files)
        if stamp is None or stamp != self._stamp:
            self._commit = head_commit(self.root)
            self._stamp = stamp
        return self._commit

    @staticmethod
    def _stamp_now(
        head: Path, packed: Path, tables: Path, heads: Path
    ) -> tuple[object, ...] | None:
        try:
            content = head.read_bytes()
        except OSError:
            return None
        stamp: list[object] = [content, _stamp_of(head), _stamp_of(packed), _stamp_of(tables)]
        if content.startswith(b"ref: "):
            ref = content[5:].strip().decode("utf-8", "surrogateescape")
            if not ref.startswith("refs/heads/"):
                return None  # a ref kept elsewhere: ask git every time
            stamp.append(_stamp_of(heads.parent.parent / ref))
        return tuple(stamp)


def changed_files(root: Path, before: str, after: str) -> list[Path]:
    """Files that differ between two commits (a tree-to-tree diff: no index, no lock)."""
    out = _git(root, "diff", "--name-only", "-z", "--no-renames", before, after).stdout
    top = _locate(root).root
    return [top / name for name in out.split("\0") if name]


def uncommitted_files(root: Path) -> list[Path]:
    """Files modified, added or untracked relative to HEAD (``git status``, no lock taken)."""
    out = _git(root, "status", "--porcelain", "-z", "--untracked-files=all").stdout
    top = _locate(root).root
    entries = out.split("\0")
    paths = []
    skip = False
    for entry in entries:
        if skip:  # the original name of a rename
            skip = False
            continue
        if len(entry) > 3:
            paths.append(top / entry[3:])
            skip = entry[0] in "RC"
    return paths
