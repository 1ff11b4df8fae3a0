"""daemon.git against real repositories: the staging policy, locks, worktrees, env, leaks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon import git as dgit
from daemon.errors import GitError
from tests.conftest import git

SOURCE = "modular_x.py"
OUTPUT = "modeling_x.py"
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A repository with a committed source and conflict-prone file, and an untracked output."""
    (git_repo / SOURCE).write_text("x = 1\n")
    (git_repo / "c.txt").write_text("base\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "source")
    (git_repo / OUTPUT).write_text("# generated\nx = 1\n")
    return git_repo


def _stage(root: Path, **kwargs) -> dgit.StageResult:
    kwargs.setdefault("backoff_s", 0.001)
    return dgit.stage(root, [root / OUTPUT], source=root / SOURCE, **kwargs)


def _try(cwd: Path, *args: str) -> int:
    """Run a git command that is expected to stop (e.g. on a conflict); return its exit code."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True).returncode


def _index(root: Path) -> bytes:
    return (dgit.git_dir(root) / "index").read_bytes()


def _diverge(repo: Path) -> None:
    """Give ``main`` and ``other`` conflicting edits of c.txt; leave ``main`` checked out."""
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "c.txt").write_text("theirs\n")
    git(repo, "commit", "-q", "-am", "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "c.txt").write_text("ours\n")
    git(repo, "commit", "-q", "-am", "ours")


def _assert_flagged(repo: Path, before: bytes, reason: str) -> None:
    """Stage and check that everything is flagged with ``reason`` and the index is untouched."""
    assert _stage(repo) == dgit.StageResult((), (repo / OUTPUT,), reason)
    assert _index(repo) == before
    assert repo / OUTPUT not in dgit.staged_paths(repo)


def test_clean_tracked_source_is_staged(repo: Path) -> None:
    """Outputs of a clean tracked source are staged into the index."""
    assert _stage(repo) == dgit.StageResult((repo / OUTPUT,), (), None)
    assert git(repo, "diff", "--cached", "--name-only").split() == [OUTPUT]
    assert dgit.staged_paths(repo) == [repo / OUTPUT]


def test_no_outputs_is_a_no_op(repo: Path) -> None:
    """Staging nothing stages and flags nothing."""
    assert dgit.stage(repo, [], source=repo / SOURCE) == dgit.StageResult((), (), None)


def test_merge_in_progress_is_flagged(repo: Path) -> None:
    """A conflicted merge (MERGE_HEAD) flags the outputs and leaves the index alone."""
    _diverge(repo)
    assert _try(repo, "merge", "other") != 0
    assert dgit.git_path(repo, "MERGE_HEAD").exists()
    _assert_flagged(repo, _index(repo), "operation_in_progress:merge")


def test_rebase_in_progress_is_flagged(repo: Path) -> None:
    """A stopped rebase (rebase-merge/) flags the outputs."""
    _diverge(repo)
    git(repo, "checkout", "-q", "other")
    assert _try(repo, "rebase", "main") != 0
    assert dgit.git_path(repo, "rebase-merge").is_dir()
    _assert_flagged(repo, _index(repo), "operation_in_progress:rebase")


def test_cherry_pick_in_progress_is_flagged(repo: Path) -> None:
    """A conflicted cherry-pick (CHERRY_PICK_HEAD) flags the outputs."""
    _diverge(repo)
    assert _try(repo, "cherry-pick", "other") != 0
    assert dgit.git_path(repo, "CHERRY_PICK_HEAD").exists()
    _assert_flagged(repo, _index(repo), "operation_in_progress:cherry-pick")


def test_stopped_multi_commit_cherry_pick_is_flagged(repo: Path) -> None:
    """A multi-commit cherry-pick whose stopped step was committed (only sequencer/ left)."""
    _diverge(repo)
    git(repo, "checkout", "-q", "other")
    (repo / "d.txt").write_text("d\n")
    git(repo, "add", "d.txt")
    git(repo, "commit", "-q", "-m", "d")
    git(repo, "checkout", "-q", "main")
    assert _try(repo, "cherry-pick", "other~1", "other") != 0
    git(repo, "add", "c.txt")
    git(repo, "commit", "-q", "--no-edit")
    assert not dgit.git_path(repo, "CHERRY_PICK_HEAD").exists()
    _assert_flagged(repo, _index(repo), "operation_in_progress:cherry-pick")


def test_revert_in_progress_is_flagged(repo: Path) -> None:
    """A conflicted revert (REVERT_HEAD) flags the outputs."""
    _diverge(repo)
    assert _try(repo, "revert", "--no-edit", "other") != 0
    assert dgit.git_path(repo, "REVERT_HEAD").exists()
    _assert_flagged(repo, _index(repo), "operation_in_progress:revert")


def test_am_in_progress_is_flagged(repo: Path, tmp_path: Path) -> None:
    """A stopped `git am` (rebase-apply/applying) flags the outputs as am, not rebase."""
    _diverge(repo)
    patch = tmp_path / "theirs.patch"
    patch.write_text(git(repo, "format-patch", "-1", "--stdout", "other"))
    assert _try(repo, "am", str(patch)) != 0
    assert (dgit.git_path(repo, "rebase-apply") / "applying").exists()
    _assert_flagged(repo, _index(repo), "operation_in_progress:am")


def test_bisect_in_progress_is_flagged(repo: Path) -> None:
    """A started bisect (BISECT_LOG) flags the outputs."""
    git(repo, "bisect", "start")
    assert dgit.git_path(repo, "BISECT_LOG").exists()
    _assert_flagged(repo, _index(repo), "operation_in_progress:bisect")


def test_stale_rebase_head_alone_is_staged(repo: Path) -> None:
    """A leftover REBASE_HEAD without rebase-merge/ or rebase-apply/ does not block staging."""
    dgit.git_path(repo, "REBASE_HEAD").write_text(git(repo, "rev-parse", "HEAD"))
    assert dgit.operation_in_progress(repo) is None
    assert _stage(repo).staged == (repo / OUTPUT,)


def test_untracked_source_is_flagged(repo: Path) -> None:
    """Outputs of a source git does not know are flagged."""
    (repo / "modular_new.py").write_text("y = 1\n")
    before = _index(repo)
    result = dgit.stage(repo, [repo / OUTPUT], source=repo / "modular_new.py")
    assert result == dgit.StageResult((), (repo / OUTPUT,), "source_untracked")
    assert _index(repo) == before


def test_partially_staged_source_is_flagged(repo: Path) -> None:
    """A source with staged and unstaged changes flags its outputs."""
    (repo / SOURCE).write_text("x = 2\n")
    git(repo, "add", SOURCE)
    (repo / SOURCE).write_text("x = 3\n")
    _assert_flagged(repo, _index(repo), "source_partially_staged")


def test_partially_staged_needs_both_staged_and_unstaged_changes(repo: Path) -> None:
    """Only staged, or only unstaged, changes are not partial staging."""
    assert not dgit.is_partially_staged(repo, repo / SOURCE)
    (repo / SOURCE).write_text("x = 2\n")
    assert not dgit.is_partially_staged(repo, repo / SOURCE)
    git(repo, "add", SOURCE)
    assert not dgit.is_partially_staged(repo, repo / SOURCE)
    (repo / SOURCE).write_text("x = 3\n")
    assert dgit.is_partially_staged(repo, repo / SOURCE)


def test_unmerged_paths_are_flagged(repo: Path) -> None:
    """Conflict entries without any operation marker (a conflicted stash pop) flag outputs."""
    (repo / "c.txt").write_text("stashed\n")
    git(repo, "stash", "-q")
    (repo / "c.txt").write_text("committed\n")
    git(repo, "commit", "-q", "-am", "committed")
    assert _try(repo, "stash", "pop") != 0
    assert dgit.operation_in_progress(repo) is None
    assert dgit.has_unmerged_paths(repo)
    _assert_flagged(repo, _index(repo), "unmerged_paths")


def test_index_lock_released_during_backoff_is_staged_after_retry(repo, monkeypatch) -> None:
    """index.lock held until stage() backs off, then removed by its owner: staged on retry."""
    lock = dgit.git_path(repo, "index.lock")
    lock.write_text("")
    backing_off, released = threading.Event(), threading.Event()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        backing_off.set()
        assert released.wait(timeout=10)

    def owner() -> None:  # the user's git: finishes once the daemon is waiting for it
        assert backing_off.wait(timeout=10)
        lock.unlink()
        released.set()

    monkeypatch.setattr(dgit, "_sleep", sleep)
    thread = threading.Thread(target=owner)
    thread.start()
    try:
        result = _stage(repo, backoff_s=0.25)
    finally:
        backing_off.set()
        thread.join()
    assert result.staged == (repo / OUTPUT,)
    assert waits == [0.25]
    assert dgit.staged_paths(repo) == [repo / OUTPUT]


def test_index_lock_taken_after_the_check_is_retried(repo, monkeypatch) -> None:
    """`git add` failing on an index.lock that appeared after the check is retried, not raised."""
    lock = dgit.git_path(repo, "index.lock")
    lock.write_text("")
    waits: list[float] = []
    monkeypatch.setattr(dgit, "_locked", lambda where: False)  # the check ran just before

    def sleep(seconds: float) -> None:  # the owner finishes while we back off
        waits.append(seconds)
        lock.unlink()

    monkeypatch.setattr(dgit, "_sleep", sleep)
    assert _stage(repo, backoff_s=0.5).staged == (repo / OUTPUT,)
    assert waits == [0.5]


def test_index_lock_held_throughout_is_flagged_and_kept(repo, monkeypatch) -> None:
    """A lock that outlasts every retry flags index_locked; the lock file is never deleted."""
    lock = dgit.git_path(repo, "index.lock")
    lock.write_text("")
    waits: list[float] = []
    monkeypatch.setattr(dgit, "_sleep", waits.append)
    _assert_flagged(repo, _index(repo), "index_locked")
    assert waits == [0.001, 0.002, 0.004, 0.008, 0.016]  # exponential, `retries` waits
    assert lock.exists()
    assert dgit.index_locked(repo)


def test_linked_worktree_uses_its_own_markers_and_index(repo: Path) -> None:
    """In `git worktree add` checkouts, markers and index live under .git/worktrees/<wt>."""
    wt = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wt-branch", str(wt))
    (wt / OUTPUT).write_text("# generated\n")
    admin = repo.resolve() / ".git" / "worktrees" / "wt"
    assert dgit.find_worktree(wt / "no" / "such" / "file.py") == wt.resolve()
    assert dgit.git_dir(wt) == admin
    assert dgit.common_dir(wt) == repo.resolve() / ".git"
    assert dgit.git_path(wt, "MERGE_HEAD") == admin / "MERGE_HEAD"
    assert dgit.git_path(wt, "index.lock") == admin / "index.lock"

    main_lock = repo / ".git" / "index.lock"
    main_lock.write_text("")
    main_index = (repo / ".git" / "index").read_bytes()
    assert not dgit.index_locked(wt)
    assert _stage(wt, retries=0) == dgit.StageResult((wt / OUTPUT,), (), None)
    assert dgit.staged_paths(wt) == [wt.resolve() / OUTPUT]
    assert (repo / ".git" / "index").read_bytes() == main_index
    assert main_lock.exists()

    head = git(repo, "rev-parse", "HEAD")
    (repo / ".git" / "MERGE_HEAD").write_text(head)
    assert dgit.operation_in_progress(repo) == "merge"
    assert dgit.operation_in_progress(wt) is None
    (admin / "MERGE_HEAD").write_text(head)
    assert dgit.operation_in_progress(wt) == "merge"


def test_inherited_git_env_does_not_leak(repo: Path, tmp_path: Path, monkeypatch) -> None:
    """GIT_INDEX_FILE/GIT_DIR/... exported by a hook that started us do not redirect git."""
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    git(other, "commit", "-q", "--allow-empty", "-m", "other")
    other_index = (other / ".git" / "index").read_bytes()
    hook_index = tmp_path / "hook-index"
    with monkeypatch.context() as env:
        env.setenv("GIT_INDEX_FILE", str(hook_index))
        env.setenv("GIT_DIR", str(other / ".git"))
        env.setenv("GIT_WORK_TREE", str(other))
        env.setenv("GIT_COMMON_DIR", str(other / ".git"))
        env.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git" / "objects"))
        env.setenv("GIT_PREFIX", "sub/")
        assert dgit.find_worktree(repo) == repo.resolve()
        assert dgit.common_dir(repo) == repo.resolve() / ".git"
        assert dgit.head_text(repo, repo / SOURCE) == "x = 1\n"
        assert _stage(repo) == dgit.StageResult((repo / OUTPUT,), (), None)
    assert git(repo, "diff", "--cached", "--name-only").split() == [OUTPUT]
    assert not hook_index.exists()
    assert (other / ".git" / "index").read_bytes() == other_index


def test_hook_index_file_stages_into_the_commit(repo: Path) -> None:
    """From a pre-commit hook of `git commit -a`, index_file= stages into the commit's index."""
    script = f"""\
import os, sys
sys.path.insert(0, {str(PROJECT)!r})
from pathlib import Path
from daemon.git import stage
root = Path.cwd()
(root / {OUTPUT!r}).write_text("# generated\\nx = 2\\n")
args = dict(source=root / {SOURCE!r}, retries=1, backoff_s=0.001)
print("real:", stage(root, [root / {OUTPUT!r}], **args).reason)
index = Path(os.environ["GIT_INDEX_FILE"])
print("hook:", stage(root, [root / {OUTPUT!r}], index_file=index, **args).reason)
"""
    (repo / "hook.py").write_text(script)
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text(f'#!/bin/sh\nexec "{sys.executable}" hook.py\n')
    (hooks / "pre-commit").chmod(0o755)
    (repo / SOURCE).write_text("x = 2\n")
    done = subprocess.run(["git", "commit", "-a", "-m", "x=2"], cwd=repo, capture_output=True)
    assert done.returncode == 0, done.stderr
    # The real index is locked by `git commit -a` itself, so only the hook's index works.
    assert b"real: index_locked\nhook: None\n" in done.stderr  # git sends hook stdout there
    assert git(repo, "show", f"HEAD:{OUTPUT}") == "# generated\nx = 2\n"
    assert git(repo, "status", "--porcelain", "--", OUTPUT, SOURCE) == ""


def test_reads_report_plain_values(repo: Path, tmp_path: Path) -> None:
    """find_worktree, is_tracked and head_text answer with plain values, None when absent."""
    assert dgit.find_worktree(repo / SOURCE) == repo.resolve()
    assert dgit.find_worktree(tmp_path / "elsewhere" / "x.py") is None
    assert dgit.find_worktree(repo / ".git") is None
    assert dgit.is_tracked(repo, repo / SOURCE)
    assert not dgit.is_tracked(repo, repo / OUTPUT)
    assert not dgit.is_tracked(repo, repo / "modular_[x].py")  # a name, not a glob
    assert dgit.head_text(repo, repo / SOURCE) == "x = 1\n"
    assert dgit.head_text(repo, repo / OUTPUT) is None
    (repo / "pkg").mkdir()
    (repo / "pkg" / "m.py").write_text("m\n")
    git(repo, "add", "pkg")
    assert dgit.is_tracked(repo, repo / "pkg" / "m.py")
    assert dgit.head_text(repo, repo / "pkg" / "m.py") is None  # staged, not committed
    assert not dgit.has_unmerged_paths(repo)


def test_head_text_on_unborn_branch_is_none(tmp_path: Path) -> None:
    """A repository without commits has nothing at HEAD."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / SOURCE).write_text("x\n")
    assert dgit.head_text(tmp_path, tmp_path / SOURCE) is None


def test_ignored_output_raises_git_error(repo: Path) -> None:
    """A `git add` failure that is not the lock (an ignored output) is a GitError with a hint."""
    (repo / ".gitignore").write_text(f"{OUTPUT}\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    with pytest.raises(GitError, match="ignored") as info:
        _stage(repo)
    assert info.value.hint is not None and "check-ignore" in info.value.hint


def test_path_outside_worktree_raises_git_error(repo: Path, tmp_path: Path) -> None:
    """Asking about a file outside the worktree is a GitError, not a wrong answer."""
    with pytest.raises(GitError, match="outside the worktree"):
        dgit.is_tracked(repo, tmp_path / "stray.py")


def _children() -> dict[int, bytes]:
    """Return this process's git children (all threads) and their command lines.

    Other children are not ours to count: an earlier test's process pool leaves
    multiprocessing's resource tracker running for the rest of the session.
    """
    pids = [
        int(p) for f in Path("/proc/self/task").glob("*/children") for p in f.read_text().split()
    ]
    found = {}
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:  # exited between the two reads
            continue
        if Path(cmdline.split(b"\0")[0].decode()).name.startswith("git"):
            found[pid] = cmdline
    return found


def test_no_git_cat_file_children_leak(repo: Path) -> None:
    """After reads (head_text uses GitPython's persistent cat-file) no cat-file child is left."""
    pipe = subprocess.PIPE
    probe = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo, stdin=pipe, stdout=pipe)
    try:
        assert probe.stdin is not None and probe.stdout is not None
        probe.stdin.write(b"HEAD\n")
        probe.stdin.flush()
        assert b" commit " in probe.stdout.readline()  # it has exec'd and answered
        assert b"cat-file" in _children()[probe.pid]  # so the counter does see such children
    finally:
        probe.communicate()
    before = _children()
    for _ in range(3):
        assert dgit.head_text(repo, repo / SOURCE) == "x = 1\n"
        assert dgit.is_tracked(repo, repo / SOURCE)
        assert not dgit.is_partially_staged(repo, repo / SOURCE)
        assert _stage(repo).staged == (repo / OUTPUT,)
    assert _children() == before == {}


def test_reads_never_write_the_index(repo: Path) -> None:
    """Reads leave index.lock to the user's git even with stat-dirty files (rule 6)."""
    (repo / SOURCE).write_text("x = 2\n")
    git(repo, "add", SOURCE)
    stat = (repo / SOURCE).stat()
    os.utime(repo / SOURCE, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**10))  # stat-dirty
    before = _index(repo)
    assert not dgit.is_partially_staged(repo, repo / SOURCE)  # content equals the index
    assert dgit.is_tracked(repo, repo / SOURCE)
    assert not dgit.has_unmerged_paths(repo)
    assert dgit.head_text(repo, repo / SOURCE) == "x = 1\n"
    assert dgit.operation_in_progress(repo) is None
    assert dgit.staged_paths(repo) == [repo / SOURCE]
    assert _index(repo) == before


# -- HeadWatch: HEAD's commit by stat, git only when a file it is read from changed ---------


def _counting_head_commits(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Record each real ``git rev-parse HEAD`` a HeadWatch runs (the real git still runs)."""
    calls: list[str | None] = []
    real = dgit.head_commit

    def counted(root: Path) -> str | None:
        calls.append(real(root))
        return calls[-1]

    monkeypatch.setattr(dgit, "head_commit", counted)
    return calls


def _rev(root: Path, name: str = "HEAD") -> str:
    return subprocess.run(
        ["git", "rev-parse", name], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_head_watch_asks_git_only_after_head_or_its_ref_changed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting_head_commits(monkeypatch)
    watch = dgit.HeadWatch(repo)
    assert watch.commit() == _rev(repo)
    assert watch.commit() == _rev(repo)
    assert len(calls) == 1  # the second answer came from the stamp

    (repo / "c.txt").write_text("edited\n")
    git(repo, "commit", "-q", "-am", "a commit moves the branch's loose ref")
    assert watch.commit() == _rev(repo)

    git(repo, "commit", "-q", "--amend", "-m", "an amend rewrites the same ref")
    assert watch.commit() == _rev(repo)

    git(repo, "checkout", "-q", "-b", "other")  # HEAD names another ref, same commit
    assert watch.commit() == _rev(repo)
    (repo / "c.txt").write_text("other\n")
    git(repo, "commit", "-q", "-am", "on other")
    assert watch.commit() == _rev(repo)

    git(repo, "checkout", "-q", "--detach", "main")  # HEAD holds a commit itself
    assert watch.commit() == _rev(repo, "main")

    git(repo, "checkout", "-q", "main")
    git(repo, "pack-refs", "--all")  # the loose ref goes; packed-refs holds it
    assert watch.commit() == _rev(repo)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert watch.commit() == _rev(repo)
    assert len(calls) < 12  # and each unchanged call in between asked nobody
    answered = len(calls)
    assert watch.commit() == _rev(repo)
    assert len(calls) == answered


def test_head_watch_in_a_linked_worktree_follows_its_own_head(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    watch = dgit.HeadWatch(linked)
    assert watch.commit() == _rev(linked)
    (linked / "c.txt").write_text("side\n")
    git(linked, "commit", "-q", "-am", "on side")
    assert watch.commit() == _rev(linked)
    (repo / "c.txt").write_text("main moves\n")
    git(repo, "commit", "-q", "-am", "main moves, side does not")
    assert watch.commit() == _rev(linked) != _rev(repo)


def test_head_watch_without_commits(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "main")
    watch = dgit.HeadWatch(fresh)
    assert watch.commit() is None
    (fresh / "a.txt").write_text("a\n")
    git(fresh, "add", "a.txt")
    git(fresh, "commit", "-q", "-m", "first")  # the branch's ref appears
    assert watch.commit() == _rev(fresh)
