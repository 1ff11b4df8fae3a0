"""The reliability scenarios of ../shared/docs/reliability-scenarios.md, against the real daemon.

Each test drives ``modwatch watch`` in a subprocess on a real git repository with real
inotify events, and synchronises with a cookie round trip through the control socket
(rule 9): "everything up to now is processed", never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from daemon.watchscope import unwatched, watched_inodes
from tests.conftest import git
from tests.helpers import (
    CONFIGURATION,
    MODELING,
    MODULAR,
    ORBIT,
    RunningDaemon,
    event,
    events,
    example_repo,
    wait_for,
)


class Daemon(RunningDaemon):
    """A started daemon with the helpers scenario tests need."""

    def runs(self, source: Path = MODULAR) -> list[dict[str, object]]:
        return [
            e
            for e in events(self.log_path)
            if e.get("event") == "run.finished" and e.get("source") == source.as_posix()
        ]

    def written(self) -> list[str]:
        """Every output path some run reported as written, in order."""
        paths = []
        for run in self.runs():
            outputs = run.get("outputs")
            assert isinstance(outputs, list)
            paths += [o["path"] for o in outputs if o["status"] == "written"]
        return paths


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_repo(tmp_path, commit_outputs=True)


@pytest.fixture
def daemon(repo: Path, tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(repo, tmp_path / "daemon.log", "--debounce-ms", "100")
    running.wait_started()
    yield running
    assert running.stop() == 0


def _edit(text: str, marker: str) -> str:
    return text.replace("        return -x\n", f"        return -x  # {marker}\n")


def _regenerated_with(repo: Path, marker: str) -> bool:
    return marker in (repo / MODELING).read_text()


# -- editor saves ------------------------------------------------------------------------------


def test_scenario_01_vim_backup_rename_save(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    new = _edit(p.read_text(), "vim")
    (p.parent / "4913").write_text("")
    os.unlink(p.parent / "4913")
    backup = p.with_name(p.name + "~")
    os.rename(p, backup)
    p.write_text(new)
    os.unlink(backup)
    daemon.sync()
    assert len(daemon.runs()) == 1
    assert _regenerated_with(repo, "vim")
    assert (repo / CONFIGURATION).exists() and (repo / MODELING).exists()
    sources = {e.get("source") for e in events(daemon.log_path) if e.get("event") == "run.finished"}
    assert sources == {MODULAR.as_posix()}  # 4913 and modular_orbit.py~ were never sources


def test_scenario_02_jetbrains_safe_write_even_with_jb_names_excluded(
    repo: Path, tmp_path: Path
) -> None:
    (repo / ".modwatch.toml").write_text('exclude = ["**/*___jb_tmp___", "**/*___jb_old___"]\n')
    git(repo, "add", ".modwatch.toml")
    git(repo, "commit", "-q", "-m", "exclude jetbrains temporaries")
    daemon = Daemon(repo, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        p = repo / MODULAR
        tmp, old = p.with_name(p.name + "___jb_tmp___"), p.with_name(p.name + "___jb_old___")
        tmp.write_text(_edit(p.read_text(), "jetbrains"))
        os.rename(p, old)
        os.rename(tmp, p)
        os.unlink(old)
        daemon.sync()
        assert len(daemon.runs()) == 1 and _regenerated_with(repo, "jetbrains")
    finally:
        assert daemon.stop() == 0


def test_scenario_03_os_replace_save(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(_edit(p.read_text(), "replace"))
    os.replace(tmp, p)
    daemon.sync()
    assert len(daemon.runs()) == 1 and _regenerated_with(repo, "replace")


def test_scenario_04_vscode_truncate_then_write(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    new = _edit(p.read_text(), "vscode")
    with open(p, "w") as f:
        f.flush()
        time.sleep(0.03)  # the scenario itself: an empty window of 30 ms, exposed
        f.write(new)
    daemon.sync()
    assert _regenerated_with(repo, "vscode")
    assert len(daemon.runs()) == 1
    assert all(run["outcome"] == "ok" for run in daemon.runs())


def test_scenario_05_emacs_save_with_dangling_lock_symlink(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    new = _edit(p.read_text(), "emacs")
    lock = p.with_name(".#" + p.name)
    os.symlink("user@host.1:1", lock)
    os.rename(p, p.with_name(p.name + "~"))
    p.write_text(new)
    os.unlink(lock)
    daemon.sync()
    assert len(daemon.runs()) == 1 and _regenerated_with(repo, "emacs")
    assert event(daemon.log_path, "batch.failed") is None


def test_scenario_06_slow_writer_converts_only_after_close(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    new = _edit(p.read_text(), "slow")
    half = len(new) // 2
    with open(p, "w") as f:
        f.write(new[:half])
        f.flush()
        daemon.sync()  # the daemon has seen the partial write
        assert daemon.runs() == []
        f.write(new[half:])
    daemon.sync()
    assert len(daemon.runs()) == 1 and _regenerated_with(repo, "slow")


def test_scenario_07_syntax_error_leaves_outputs_and_next_save_regenerates(
    daemon: Daemon, repo: Path
) -> None:
    p = repo / MODULAR
    good = p.read_text()
    before = {path: (repo / path).read_text() for path in (MODELING, CONFIGURATION)}
    p.write_text(good + "\nclass Broken(:\n")
    daemon.sync()
    (run,) = daemon.runs()
    assert run["outcome"] == "error" and run["reason"] == "parse_error"
    assert isinstance(run["line"], int) and run["line"] > 1
    assert {path: (repo / path).read_text() for path in before} == before
    p.write_text(_edit(good, "fixed"))
    daemon.sync()
    assert _regenerated_with(repo, "fixed") and daemon.runs()[-1]["outcome"] == "ok"


def test_scenario_08_burst_of_20_saves_in_1_s(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    base = p.read_text()
    for i in range(20):
        p.write_text(_edit(base, f"burst {i}"))
        time.sleep(0.05)  # the scenario's pacing: 20 saves spread over one second
    daemon.sync()
    assert 1 <= len(daemon.runs()) <= 2
    assert _regenerated_with(repo, "burst 19")


def test_scenario_09_touch_and_chmod_write_nothing(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    index = (repo / ".git" / "index").read_bytes()
    p.touch()
    os.chmod(p, 0o600)
    daemon.sync()
    assert daemon.runs() == []
    assert (repo / ".git" / "index").read_bytes() == index
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_scenario_10_own_writes_never_retrigger(daemon: Daemon, repo: Path) -> None:
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "self"))
    daemon.sync()
    assert len(daemon.runs()) == 1
    daemon.sync()  # the events of our own writes have come and gone
    assert len(daemon.runs()) == 1


NOVA = Path("src/zoo/models/nova/modular_nova.py")
NOVA_TEXT = """\
from ..orbit.modeling_orbit import OrbitModel


class NovaModel(OrbitModel):
    pass
"""


def _add_nova(repo: Path) -> Path:
    """A second modular model, nova, inheriting from orbit's output."""
    nova = repo / NOVA
    nova.parent.mkdir()
    (nova.parent / "__init__.py").write_text("")
    nova.write_text(NOVA_TEXT)
    return nova


def test_scenario_11_dependency_chain_in_topological_order(repo: Path, tmp_path: Path) -> None:
    nova = _add_nova(repo)
    daemon = Daemon(repo, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        p = repo / MODULAR
        p.write_text(_edit(p.read_text(), "chain"))
        daemon.sync()
        order = [e["source"] for e in events(daemon.log_path) if e.get("event") == "run.finished"]
        assert order == [MODULAR.as_posix(), NOVA.as_posix()]
        assert "# chain" in (repo / NOVA.with_name("modeling_nova.py")).read_text()
        nova.write_text(NOVA_TEXT.replace("pass", "scale = 3"))
        daemon.sync()
        order = [e["source"] for e in events(daemon.log_path) if e.get("event") == "run.finished"]
        assert order == [MODULAR.as_posix(), NOVA.as_posix(), NOVA.as_posix()]
    finally:
        assert daemon.stop() == 0


def test_scenario_12_branch_switch_waits_for_index_lock_and_is_one_batch(
    daemon: Daemon, repo: Path
) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")  # git is working: hold back
    extra = repo / "src" / "many"
    extra.mkdir()
    for i in range(2000):
        (extra / f"file_{i}.py").write_text(f"X = {i}\n")
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "branch"))
    wait_for(lambda: event(daemon.log_path, "batch.held", reason="index_locked"), what="hold")
    assert daemon.runs() == []
    lock.unlink()
    daemon.sync()
    assert len(daemon.runs()) == 1 and _regenerated_with(repo, "branch")
    assert (repo / CONFIGURATION).exists()


# -- the tree changing under the daemon --------------------------------------------------------


def test_scenario_26_root_deleted_and_recreated(daemon: Daemon, repo: Path) -> None:
    backup = repo.with_name("zoo.bak")
    os.rename(repo, backup)
    git(repo.parent, "clone", "-q", str(backup), str(repo))  # `rm -rf repo && git clone`
    wait_for(lambda: event(daemon.log_path, "watcher.rearmed"), what="re-arm")
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "rearmed"))
    wait_for(lambda: _regenerated_with(repo, "rearmed"), what="regeneration after re-arm")


def test_scenario_27_source_directory_replaced(daemon: Daemon, repo: Path) -> None:
    shutil.rmtree(repo / ORBIT)
    git(repo, "checkout", "--", ORBIT.as_posix())
    daemon.sync()
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "replaced dir"))
    daemon.sync()
    assert _regenerated_with(repo, "replaced dir")


def test_scenario_28_new_model_directory_after_start(daemon: Daemon, repo: Path) -> None:
    _add_nova(repo)
    daemon.sync()
    assert (repo / NOVA.with_name("modeling_nova.py")).exists()
    assert len(daemon.runs(NOVA)) == 1


def test_scenario_32_kill_9_then_restart_regenerates_exactly_the_stale(
    repo: Path, tmp_path: Path
) -> None:
    first = Daemon(repo, tmp_path / "first.log")
    first.wait_started()
    first.stop(signal.SIGKILL)
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "after crash"))  # edited while no daemon runs
    second = Daemon(repo, tmp_path / "second.log")
    try:
        second.wait_started()
        assert _regenerated_with(repo, "after crash")
        assert len(second.runs()) == 1
        reconciled = event(second.log_path, "daemon.reconciled")
        assert reconciled is not None and reconciled["converted"] == 1
        leftovers = [q for q in (repo / ORBIT).iterdir() if q.name.startswith(".modwatch-")]
        assert leftovers == []
    finally:
        assert second.stop() == 0


def test_scenario_34_single_instance(daemon: Daemon, repo: Path) -> None:
    second = Daemon(repo, repo.parent / "second.log")
    assert second.proc.wait(timeout=60) == 0
    assert second.proc.stdout is not None
    assert f"already running (pid {daemon.proc.pid})" in second.proc.stdout.read()
    second.stop()


def test_scenario_35_ignored_and_noise_paths(daemon: Daemon, repo: Path) -> None:
    noise = [
        repo / ".git" / "objects" / "ab" / "cdef",
        repo / ".venv" / "lib" / "modular_x.py",
        repo / ORBIT / "__pycache__" / "modular_orbit.cpython-311.pyc",
        repo / ORBIT / "modular_orbit.pyc",
        repo / ORBIT / ".modular_orbit.py.swp",
        repo / ORBIT / "modular_orbit.py.orig",
    ]
    for path in noise:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("junk")
    daemon.sync()
    assert daemon.runs() == []
    info = [e for e in events(daemon.log_path) if e.get("level") == "info"]
    assert [e["event"] for e in info] == ["daemon.reconciled", "daemon.started"]


def test_hand_edited_output_is_flagged_not_overwritten(daemon: Daemon, repo: Path) -> None:
    """Issue 4 item 4 / scenario 20: a hand edit is never overwritten, nothing is staged."""
    (repo / MODELING).write_text((repo / MODELING).read_text() + "# my own fix\n")
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "after hand edit"))
    daemon.sync()
    (run,) = daemon.runs()
    assert run["outcome"] == "flagged" and run["reason"] == "hand_edited"
    assert (repo / MODELING).read_text().endswith("# my own fix\n")
    assert event(daemon.log_path, "output.hand_edited", path=MODELING.as_posix()) is not None
    assert git(repo, "diff", "--cached", "--name-only").strip() == ""


def test_git_checkout_restored_output_is_not_a_hand_edit(daemon: Daemon, repo: Path) -> None:
    (repo / MODELING).write_text("# scribble\n")
    git(repo, "checkout", "--", MODELING.as_posix())
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "restored"))
    daemon.sync()
    assert daemon.runs()[-1]["outcome"] == "ok" and _regenerated_with(repo, "restored")


def test_operation_in_progress_defers_and_resumes(daemon: Daemon, repo: Path) -> None:
    """Rule 12: during a merge nothing is written; after it, one conversion runs."""
    merge_head = repo / ".git" / "MERGE_HEAD"
    merge_head.write_text(git(repo, "rev-parse", "HEAD"))
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "after merge"))
    daemon.sync()
    (run,) = daemon.runs()
    assert run["outcome"] == "flagged" and run["reason"] == "operation_in_progress:merge"
    assert not _regenerated_with(repo, "after merge")
    merge_head.unlink()
    wait_for(lambda: _regenerated_with(repo, "after merge"), what="resumed conversion")


# -- kernel limits (root only: they are global settings, restored in `finally`) ---------------

INOTIFY = Path("/proc/sys/fs/inotify")


def _can_tune_inotify() -> bool:
    return os.geteuid() == 0 and os.access(INOTIFY / "max_user_watches", os.W_OK)


@contextlib.contextmanager
def _inotify_setting(name: str, value: int) -> Iterator[None]:
    path = INOTIFY / name
    old = path.read_text()
    path.write_text(str(value))
    try:
        yield
    finally:
        path.write_text(old)


def test_rule_10_watches_source_directories_and_the_git_dir_shallowly(
    daemon: Daemon, repo: Path
) -> None:
    armed = watched_inodes(daemon.proc.pid)
    models = repo / ORBIT.parent
    assert unwatched([repo, models, models / "orbit", models / "zeta", repo / ".git"], armed) == []
    # rule 10: no watch below the git directory, none on directories without sources
    assert unwatched([repo / ".git/objects", repo / ".git/refs", repo / "src"], armed) == [
        repo / ".git/objects",
        repo / ".git/refs",
        repo / "src",
    ]


def test_rule_10_a_source_in_a_new_top_level_directory_widens_the_scope(
    daemon: Daemon, repo: Path
) -> None:
    lab = repo / "lab" / "nova" / "modular_nova.py"
    lab.parent.mkdir(parents=True)  # heard by the root's shallow watch, then scanned
    lab.write_text(NOVA_TEXT)
    daemon.sync()
    wait_for(lambda: event(daemon.log_path, "watcher.rescoped"), what="the wider scope")
    daemon.sync()  # the reconcile that follows a re-arm is over
    runs = len(daemon.runs(lab.relative_to(repo)))
    lab.write_text(NOVA_TEXT + "\n# edited\n")  # only the new watch can hear this
    daemon.sync()
    assert len(daemon.runs(lab.relative_to(repo))) == runs + 1


@pytest.mark.skipif(not _can_tune_inotify(), reason="needs root to lower inotify limits")
def test_scenario_29_watch_limit_logs_the_fix_and_falls_back_to_polling(
    repo: Path, tmp_path: Path
) -> None:
    # Three watches: the root's succeeds, the subdirectories' fail, and watchdog swallows
    # those errors; only the kernel's list of armed watches shows the daemon would be deaf.
    with _inotify_setting("max_user_watches", 3):
        daemon = Daemon(repo, tmp_path / "daemon.log")
        try:
            daemon.wait_started()
        except AssertionError:
            daemon.stop()
            raise
    try:
        limit = event(daemon.log_path, "watcher.limit")
        assert limit is not None and limit["fallback"] == "polling"
        assert "max_user_watches" in str(limit["hint"]) and "sysctl" in str(limit["hint"])
        p = repo / MODULAR
        p.write_text(_edit(p.read_text(), "polled"))
        wait_for(lambda: _regenerated_with(repo, "polled"), what="regeneration by polling")
    finally:
        assert daemon.stop() == 0


@pytest.mark.skipif(not _can_tune_inotify(), reason="needs root to lower inotify limits")
def test_scenario_30_queue_overflow_triggers_a_full_reconcile(repo: Path, tmp_path: Path) -> None:
    with _inotify_setting("max_queued_events", 64):
        daemon = Daemon(repo, tmp_path / "daemon.log")  # the queue size is fixed at creation
        try:
            daemon.wait_started()
        except AssertionError:
            daemon.stop()
            raise
    try:
        noise = repo / ORBIT / "noise.txt"
        p = repo / MODULAR
        base = p.read_text()
        daemon.proc.send_signal(signal.SIGSTOP)  # nobody reads: the 64-event queue must overflow
        try:
            for i in range(3000):
                noise.write_text(str(i))
                if i % 500 == 499:
                    p.write_text(_edit(base, f"overflow {i}"))
        finally:
            daemon.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: event(daemon.log_path, "daemon.reconcile", reason="overflow"), what="hook")
        # The last write's event may itself have been lost to a later overflow: the
        # reconcile that overflow triggers converges on the final content.
        wait_for(lambda: _regenerated_with(repo, "overflow 2999"), what="final content")
    finally:
        assert daemon.stop() == 0


# -- supervision, in-process: inject failures into the running daemon --------------------------


def test_scenario_31_handler_exception_and_dead_observer(repo: Path) -> None:
    from daemon.config import Config
    from daemon.loop import Daemon as LoopDaemon

    inproc = LoopDaemon(repo, Config(debounce_ms=50))
    real = inproc.events

    def exploding(path: Path) -> bool:
        if path.name == "boom.py":
            raise RuntimeError("injected handler failure")
        return real(path)

    inproc.events = exploding  # type: ignore[assignment]
    with structlog.testing.capture_logs() as logs:
        thread = threading.Thread(target=inproc.run)
        thread.start()
        try:
            wait_for(lambda: any(e["event"] == "daemon.started" for e in logs), what="start")
            (repo / ORBIT / "boom.py").write_text("x = 1\n")
            p = repo / MODULAR
            base = p.read_text()
            p.write_text(_edit(base, "after boom"))
            assert inproc.sync()
            assert _regenerated_with(repo, "after boom")
            assert any(e["event"] == "watcher.handler_failed" for e in logs)

            assert inproc.watcher is not None
            inproc.watcher.stop()  # the observer dies under the daemon's feet
            wait_for(lambda: any(e["event"] == "watcher.rearmed" for e in logs), what="re-arm")
            p.write_text(_edit(base, "after death"))
            assert inproc.sync()
            assert _regenerated_with(repo, "after death")
        finally:
            inproc.stop()
            thread.join(timeout=30)
            inproc.close()
    assert not thread.is_alive()


def test_touching_a_parent_reconverts_nothing_but_editing_it_reconverts_dependents(
    daemon: Daemon, repo: Path
) -> None:
    zeta = repo / "src/zoo/models/zeta/modeling_zeta.py"
    p = repo / MODULAR
    p.write_text(_edit(p.read_text(), "first"))  # records the parent hashes in the ledger
    daemon.sync()
    assert len(daemon.runs()) == 1
    zeta.touch()
    daemon.sync()
    assert len(daemon.runs()) == 1
    zeta.write_text(zeta.read_text().replace("ZETA_SCALE = 2.0", "ZETA_SCALE = 3.0"))
    daemon.sync()
    assert len(daemon.runs()) == 2
    assert "ORBIT_SCALE = 3.0" in (repo / MODELING).read_text()


def test_dependents_run_only_when_a_parent_output_really_changed(
    repo: Path, tmp_path: Path
) -> None:
    """A parent edit that leaves orbit's outputs as they were does not reach nova."""
    _add_nova(repo)
    daemon = Daemon(repo, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        p = repo / MODULAR
        p.write_text(_edit(p.read_text(), "wave"))  # both convert once: orbit, then nova
        daemon.sync()
        assert len(daemon.runs(NOVA)) == 1
        config = repo / "src/zoo/models/zeta/configuration_zeta.py"
        config.write_text(config.read_text() + "\n# a comment no output copies\n")
        daemon.sync()
        assert len(daemon.runs()) == 2  # orbit re-read its changed parent...
        assert len(daemon.runs(NOVA)) == 1  # ...wrote nothing new, so nova was left alone
    finally:
        assert daemon.stop() == 0
