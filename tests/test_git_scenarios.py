"""Scenarios 13-25 of the reliability rules: the daemon as a guest in a real git repository."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import CONFIGURATION, MODELING, MODULAR, event, example_repo, modwatch, wait_for
from tests.test_scenarios import Daemon, _edit, _regenerated_with


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path, commit_outputs=True)


@pytest.fixture
def daemon(repo: Path, tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(repo, tmp_path / "daemon.log", "--debounce-ms", "100")
    running.wait_started()
    yield running
    assert running.stop() == 0


def _branch_with_stale_outputs(repo: Path, name: str) -> None:
    """A branch whose modular file changed without regenerating the committed outputs."""
    git(repo, "checkout", "-q", "-b", name)
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "on branch"))
    git(repo, "commit", "-q", "-am", "edit modular only")
    git(repo, "checkout", "-q", "main")


def test_scenario_13_checkout_in_sync_writes_nothing(daemon: Daemon, repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "README.txt").write_text("other branch\n")
    git(repo, "add", "README.txt")
    git(repo, "commit", "-q", "-m", "unrelated")
    git(repo, "checkout", "-q", "main")
    daemon.sync()
    assert daemon.runs() == []
    assert git(repo, "status", "--porcelain") == ""


def test_scenario_13_checkout_with_stale_outputs_flags_not_rewrites(
    repo: Path, tmp_path: Path
) -> None:
    _branch_with_stale_outputs(repo, "stale")
    daemon = Daemon(repo, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        git(repo, "checkout", "-q", "stale")
        daemon.sync()
        (run,) = daemon.runs()
        assert run["outcome"] == "flagged" and run["reason"] == "stale_after_checkout"
        assert not _regenerated_with(repo, "on branch")  # the committed output stays
        assert git(repo, "status", "--porcelain") == ""
        status = modwatch(repo, "status", "--json")
        assert MODELING.as_posix() in status.stdout and "stale_after_checkout" in status.stdout
        # An edit after the checkout is the user's: it converts and stages as usual.
        p = repo / MODULAR
        p.write_text(p.read_text().replace("# on branch", "# mine"))
        daemon.sync()
        assert len(daemon.runs()) == 2 and daemon.runs()[-1]["git"] == "staged"
        assert _regenerated_with(repo, "mine")
    finally:
        assert daemon.stop() == 0


def test_hook_without_daemon_flags_stale_outputs_after_checkout(repo: Path) -> None:
    _branch_with_stale_outputs(repo, "stale")
    done = modwatch(repo, "hook", "install")
    assert done.returncode == 0, done.stderr
    checkout = subprocess.run(
        ["git", "checkout", "-q", "stale"], cwd=repo, capture_output=True, text=True
    )
    assert checkout.returncode == 0
    assert f"flagged    {MODELING.as_posix()} (stale_after_checkout)" in checkout.stderr
    assert git(repo, "status", "--porcelain") == ""
    flags = (repo / ".git/modwatch/flags.json").read_text()
    assert MODELING.as_posix() in flags


def test_scenario_14_bisect_log_means_no_writes(daemon: Daemon, repo: Path) -> None:
    (repo / ".git" / "BISECT_LOG").write_text("# bisect log\n")
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "bisecting"))
    daemon.sync()
    (run,) = daemon.runs()
    assert run["reason"] == "operation_in_progress:bisect"
    assert not _regenerated_with(repo, "bisecting")
    assert git(repo, "diff", "--cached", "--name-only") == ""


@pytest.mark.parametrize(
    ("marker", "operation"),
    [
        ("CHERRY_PICK_HEAD", "cherry-pick"),
        ("REVERT_HEAD", "revert"),
        ("rebase-apply/applying", "am"),
        ("rebase-merge/head-name", "rebase"),
    ],
)
def test_scenario_15_16_operations_defer_then_one_run(
    daemon: Daemon, repo: Path, marker: str, operation: str
) -> None:
    path = repo / ".git" / marker
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(git(repo, "rev-parse", "HEAD"))
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "deferred"))
    daemon.sync()
    assert [r["reason"] for r in daemon.runs()] == [f"operation_in_progress:{operation}"]
    assert git(repo, "diff", "--cached", "--name-only") == ""
    path.unlink()
    if path.parent.name.startswith("rebase"):
        path.parent.rmdir()
    wait_for(lambda: len(daemon.runs()) == 2, what="resumed run")
    assert [r["outcome"] for r in daemon.runs()] == ["flagged", "ok"]
    assert _regenerated_with(repo, "deferred")


def test_scenario_17_index_lock_held_3_s_then_staged(daemon: Daemon, repo: Path) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    release = threading.Timer(3.0, lock.unlink)  # the user's git holding the lock for 3 s
    release.start()
    try:
        p = repo / MODULAR
        p.write_text(_edit(p.read_text(), "locked"))
        wait_for(lambda: event(daemon.log_path, "batch.held"), what="hold")
        wait_for(lambda: daemon.runs(), what="run after the lock went away")
        assert daemon.runs()[0]["git"] == "staged" and not lock.exists()
    finally:
        release.join()


def test_scenario_18_daemon_never_breaks_the_users_git(daemon: Daemon, repo: Path) -> None:
    stop = threading.Event()
    p = repo / MODULAR
    base = p.read_text()

    def keep_saving() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            p.write_text(_edit(base, f"save {i}"))
            stop.wait(0.15)  # a developer saving a few times a second

    saver = threading.Thread(target=keep_saving)
    saver.start()
    failures = []
    try:
        for i in range(100):
            notes = repo / "notes.txt"
            notes.write_text(f"{i}\n")
            for args in (
                ["add", "notes.txt"],
                ["commit", "-q", "-m", f"note {i}", "--", "notes.txt"],
            ):
                done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
                if done.returncode != 0:
                    failures.append(done.stderr)
    finally:
        stop.set()
        saver.join()
    assert failures == []
    daemon.sync()


def test_scenario_19_partially_staged_source_is_flagged(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    text = p.read_text()
    p.write_text(text.replace('model_type = "orbit"', 'model_type = "orbit"  # staged'))
    git(repo, "add", MODULAR.as_posix())
    daemon.sync()
    p.write_text(_edit(p.read_text(), "unstaged"))
    daemon.sync()
    run = daemon.runs()[-1]
    assert run["git"] == "flagged" and run["reason"] == "source_partially_staged"
    assert MODELING.as_posix() not in git(repo, "diff", "--cached", "--name-only")


def test_scenario_22_linked_worktree(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "-b", "wt-branch")
    (repo / ".git" / "index.lock").write_text("")  # the main worktree's git is busy
    daemon = Daemon(wt, tmp_path / "wt.log")
    try:
        daemon.wait_started()
        p = wt / MODULAR
        p.write_text(_edit(p.read_text(), "in worktree"))
        daemon.sync()
        assert daemon.runs()[0]["git"] == "staged"
        assert MODELING.as_posix() in git(wt, "diff", "--cached", "--name-only")
        assert git(repo, "diff", "--cached", "--name-only") == ""
    finally:
        assert daemon.stop() == 0
        (repo / ".git" / "index.lock").unlink()


def test_scenario_23_inherited_hook_environment_does_not_leak(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-index"
    env = {"GIT_INDEX_FILE": str(other), "GIT_DIR": str(repo / ".git"), "GIT_WORK_TREE": "/"}
    daemon = Daemon(repo, tmp_path / "daemon.log", env=env)
    try:
        daemon.wait_started()
        p = repo / MODULAR
        p.write_text(_edit(p.read_text(), "hook env"))
        daemon.sync()
        assert daemon.runs()[0]["git"] == "staged"
        assert MODELING.as_posix() in git(repo, "diff", "--cached", "--name-only")
        assert not other.exists()
    finally:
        assert daemon.stop() == 0


def test_flag_mode_never_touches_the_index(repo: Path, tmp_path: Path) -> None:
    index = (repo / ".git" / "index").read_bytes()
    daemon = Daemon(repo, tmp_path / "daemon.log", "--git-mode", "flag")
    try:
        daemon.wait_started()
        p = repo / MODULAR
        p.write_text(_edit(p.read_text(), "flag mode"))
        daemon.sync()
        (run,) = daemon.runs()
        assert run["git"] == "flagged" and _regenerated_with(repo, "flag mode")
        assert event(daemon.log_path, "output.flagged", path=MODELING.as_posix()) is not None
        assert (repo / ".git" / "index").read_bytes() == index
        assert (repo / CONFIGURATION).exists()
    finally:
        assert daemon.stop() == 0
