"""The daemon's process-level contract: one per worktree, status, sd_notify, reload, stop."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import structlog.testing

from tests.helpers import (
    MODELING,
    MODULAR,
    RunningDaemon,
    event,
    events,
    example_repo,
    modwatch,
    wait_for,
)


def test_a_second_daemon_on_the_same_worktree_says_already_running_and_exits_0(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    first = RunningDaemon(repo, tmp_path / "first.log")
    try:
        first.wait_started()
        second = subprocess.run(
            [sys.executable, "-m", "daemon", "watch", "--repo", str(repo)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0
        assert f"already running (pid {first.proc.pid})" in second.stdout
    finally:
        assert first.stop() == 0


def test_status_reports_sources_runs_and_git_state(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    daemon = RunningDaemon(repo, tmp_path / "daemon.log", "--debounce-ms", "20")
    try:
        daemon.wait_started()
        source = repo / MODULAR
        source.write_text(source.read_text().replace("return -x", "return x * 5"))
        wait_for(lambda: "x * 5" in (repo / MODELING).read_text(), what="regeneration")
        wait_for(lambda: event(daemon.log_path, "run.finished"), what="run event")
        done = modwatch(repo, "status", "--json")
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        assert reply["ok"] is True and reply["pid"] == daemon.proc.pid
        assert reply["sources"] == [MODULAR.as_posix()]
        assert reply["git"] == {"mode": "stage", "operation": None, "index_locked": False}
        (run,) = reply["last_runs"]
        assert run["source"] == MODULAR.as_posix() and run["git"] == "staged"
        text = modwatch(repo, "status")
        assert text.returncode == 0 and "sources:  1 modular files" in text.stdout
    finally:
        assert daemon.stop() == 0


def test_status_without_a_daemon_says_so_and_exits_3(tmp_path):
    repo = example_repo(tmp_path)
    done = modwatch(repo, "status")
    assert done.returncode == 3 and "no daemon is running" in done.stderr


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, Path]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(30)
    return sock, path


def _next_message(sock: socket.socket, wanted: str) -> str:
    """Read datagrams until one contains ``wanted`` (a deadline comes from the socket timeout)."""
    while True:
        message = sock.recv(4096).decode()
        if wanted in message:
            return message


def test_sd_notify_ready_status_watchdog_reloading_stopping(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    sock, path = _notify_socket(tmp_path)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}
    daemon = RunningDaemon(repo, tmp_path / "daemon.log", "--debounce-ms", "20", env=env)
    try:
        assert _next_message(sock, "READY=1") == "READY=1"
        assert _next_message(sock, "STATUS=").startswith("STATUS=watching 1 sources")
        assert _next_message(sock, "WATCHDOG=1") == "WATCHDOG=1"
        source = repo / MODULAR
        source.write_text(source.read_text().replace("return -x", "return x + 7"))
        status = _next_message(sock, "last run")
        assert f"last run {MODULAR.as_posix()}: ok" in status
        daemon.proc.send_signal(signal.SIGHUP)
        reloading = _next_message(sock, "RELOADING=1")
        assert "MONOTONIC_USEC=" in reloading
        assert _next_message(sock, "READY=1") == "READY=1"
        daemon.proc.send_signal(signal.SIGTERM)
        assert _next_message(sock, "STOPPING=1") == "STOPPING=1"
        assert daemon.proc.wait(timeout=30) == 0
        assert event(daemon.log_path, "daemon.reloaded") is not None
    finally:
        daemon.stop()
        sock.close()


def _add_child(repo: Path, name: str, *, reads: tuple[str, ...] = ("orbit",)) -> Path:
    """A modular model ``name`` whose first class inherits from the first of ``reads``."""
    folder = repo / "src" / "zoo" / "models" / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    imports = "".join(
        f"from ..{parent}.modeling_{parent} import {parent.title()}Model\n" for parent in reads
    )
    source = folder / f"modular_{name}.py"
    source.write_text(
        f"{imports}\n\nclass {name.title()}Model({reads[0].title()}Model):\n    pass\n"
    )
    return source


def _children_of(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


@contextlib.contextmanager
def _orbit_edited(repo: Path, tmp_path: Path, marker: str, *, jobs: int) -> Iterator[RunningDaemon]:
    """A daemon with ``jobs`` workers, after an edit of orbit and everything it caused."""
    daemon = RunningDaemon(
        repo, tmp_path / "daemon.log", "--debounce-ms", "20", env={"MODWATCH_JOBS": str(jobs)}
    )
    try:
        daemon.wait_started()
        source = repo / MODULAR
        source.write_text(source.read_text().replace("return -x", f"return -x  # {marker}"))
        daemon.sync(timeout=120)
        yield daemon
    finally:
        assert daemon.stop() == 0


def _run_order(daemon: RunningDaemon) -> list[str]:
    return [str(e["source"]) for e in events(daemon.log_path) if e.get("event") == "run.finished"]


def _modeling(repo: Path, name: str) -> str:
    return (repo / "src" / "zoo" / "models" / name / f"modeling_{name}.py").read_text()


def test_many_dependents_run_in_worker_processes_in_dependency_order(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    for name in ("nova", "lyra", "vega"):
        _add_child(repo, name)
    _add_child(repo, "rigel", reads=("nova", "orbit"))  # same wave as nova, but reads it
    for name in ("sirius", "deneb", "altair"):
        _add_child(repo, name, reads=("lyra",))  # the next wave: readers of lyra's output
    with _orbit_edited(repo, tmp_path, "wave", jobs=2) as daemon:
        started = [e for e in events(daemon.log_path) if e.get("event") == "workers.started"]
        assert [(e["workers"], e["waiting"]) for e in started] == [(2, 4)]  # one pool a batch
        order = _run_order(daemon)
        children = ("nova", "lyra", "vega", "rigel", "sirius", "deneb", "altair")
        assert sorted(order) == sorted(
            [MODULAR.as_posix()] + [f"src/zoo/models/{n}/modular_{n}.py" for n in children]
        )
        assert order.index("src/zoo/models/rigel/modular_rigel.py") > order.index(
            "src/zoo/models/nova/modular_nova.py"
        )
        for name in children:
            assert "return -x  # wave" in _modeling(repo, name), name
        assert _children_of(daemon.proc.pid) == []  # the workers are gone with their batch


def test_jobs_1_converts_a_wave_in_the_daemon_itself(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    for name in ("nova", "lyra", "vega"):
        _add_child(repo, name)
    with _orbit_edited(repo, tmp_path, "serial", jobs=1) as daemon:
        assert event(daemon.log_path, "workers.started") is None
        for name in ("nova", "lyra", "vega"):
            assert "return -x  # serial" in _modeling(repo, name), name


def test_a_source_waits_for_a_parent_that_a_later_rewrite_triggers(tmp_path):
    """quasar reads orbit, pulsar reads quasar, sol reads pulsar and orbit: the edit of orbit
    triggers quasar and sol at once, and pulsar only once quasar is rewritten; sol must still
    run after pulsar, or it would read pulsar's old output."""
    repo = example_repo(tmp_path, commit_outputs=True)
    _add_child(repo, "quasar")
    _add_child(repo, "pulsar", reads=("quasar",))
    _add_child(repo, "sol", reads=("pulsar", "orbit"))
    with _orbit_edited(repo, tmp_path, "upstream", jobs=1) as daemon:
        order = [source.split("/")[-2] for source in _run_order(daemon)]
        assert order == ["orbit", "quasar", "pulsar", "sol"]
        assert "return -x  # upstream" in _modeling(repo, "sol")


def test_sync_puts_a_cookie_in_every_watch_but_the_git_directory(tmp_path):
    # watchdog reads each watch on its own thread: only a cookie in the same watch as a save
    # proves the save was heard (scenario 33 once saw a root cookie overtake a save).
    from daemon.config import Config
    from daemon.loop import Daemon as LoopDaemon

    repo = example_repo(tmp_path, commit_outputs=True)
    inproc = LoopDaemon(repo, Config(debounce_ms=20))
    with structlog.testing.capture_logs() as logs:
        thread = threading.Thread(target=inproc.run)
        thread.start()
        try:
            wait_for(lambda: any(e["event"] == "daemon.started" for e in logs), what="start")
            assert inproc.watcher is not None
            dirs = inproc._cookie_dirs()
            assert dirs == {s.path for s in inproc.watcher.scope} - {repo / ".git"}
            assert {repo, repo / "src" / "zoo" / "models"} <= dirs
            source = repo / MODULAR
            source.write_text(source.read_text().replace("return -x", "return x - 3"))
            assert inproc.sync()
            assert "x - 3" in (repo / MODELING).read_text()
            assert not [p for d in dirs for p in d.glob(".modwatch-cookie-*")]
        finally:
            inproc.stop()
            thread.join(timeout=30)
            inproc.close()
    assert not thread.is_alive()
