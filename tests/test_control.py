"""The single-instance lock, the socket paths and the JSON-line control server (scenario 34)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import control
from daemon.control import (
    AlreadyRunning,
    ControlServer,
    DaemonLock,
    DaemonNotRunning,
    lock_path,
    query,
    resolve_socket,
    socket_path,
)
from daemon.errors import DaemonError
from tests.helpers import REPO, wait_for

# Run in a child: take the lock, say so, then hold it until killed.
HOLD = """
import sys, time
from pathlib import Path
from daemon.control import DaemonLock
lock = DaemonLock(Path(sys.argv[1]))  # referenced: collecting it would close the file
lock.acquire()
print("locked", flush=True)
time.sleep(600)
"""

# Run in a child: try the lock once and print the pid of whoever holds it.
TRY = """
import sys
from pathlib import Path
from daemon.control import AlreadyRunning, DaemonLock
try:
    DaemonLock(Path(sys.argv[1])).acquire()
except AlreadyRunning as exc:
    print(exc.pid)
else:
    print("acquired")
"""


def _python(script: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", script, *args], cwd=REPO, text=True, **kwargs
    )


def _status(request: dict[str, object]) -> dict[str, object]:
    return {"state": "idle", "echo": request.get("echo")}


def _boom(request: dict[str, object]) -> dict[str, object]:
    raise RuntimeError("handler broke")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path, standing in for $XDG_RUNTIME_DIR or /tmp."""
    path = Path(tempfile.mkdtemp(prefix="mw-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    with ControlServer(tmp_path / "c.sock", {"status": _status, "boom": _boom}) as srv:
        yield srv


def test_lock_writes_pid_and_is_free_again_after_release(tmp_path: Path) -> None:
    """The holder's pid is in the file; after release another lock can be taken."""
    path = lock_path(tmp_path / ".git")
    assert path == tmp_path / ".git" / "modwatch" / "daemon.lock"
    with DaemonLock(path):
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(AlreadyRunning) as raised:
            DaemonLock(path).acquire()
        assert raised.value.pid == os.getpid()
        assert "already running" in str(raised.value)
        assert f"kill {os.getpid()}" in str(raised.value)
    with DaemonLock(path):
        pass
    assert path.exists()  # never deleted (a new owner could lock a different inode)


def test_second_process_gets_already_running_with_holder_pid(tmp_path: Path) -> None:
    """Another process trying the lock is told our pid."""
    path = tmp_path / "daemon.lock"
    with DaemonLock(path):
        child = _python(TRY, str(path), stdout=subprocess.PIPE)
        out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert out.strip() == str(os.getpid())


def test_lock_is_free_after_holder_is_killed_with_sigkill(tmp_path: Path) -> None:
    """kill -9 of the holder leaves no stale lock: flock dies with the process."""
    path = tmp_path / "daemon.lock"
    holder = _python(HOLD, str(path), stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(AlreadyRunning) as raised:
            DaemonLock(path).acquire()
        assert raised.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)
    assert holder.returncode == -signal.SIGKILL

    def try_lock() -> DaemonLock | None:
        lock = DaemonLock(path)
        try:
            lock.acquire()
        except AlreadyRunning:
            return None
        return lock

    lock = wait_for(try_lock, timeout=10, what="the lock to be free")
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()


def test_status_round_trip(server: ControlServer) -> None:
    """A request reaches its handler, whose fields come back with ok=true."""
    reply = query(server.path, {"cmd": "status", "echo": [1, "two"]})
    assert reply == {"ok": True, "state": "idle", "echo": [1, "two"]}


def test_unknown_command_is_an_error_reply(server: ControlServer) -> None:
    """An unknown cmd gets ok=false naming it and the known commands."""
    reply = query(server.path, {"cmd": "frobnicate"})
    assert reply["ok"] is False
    assert reply["error"] == "unknown command 'frobnicate' (known: boom, status)"


def test_malformed_request_is_an_error_reply(server: ControlServer) -> None:
    """A line that is not a JSON object gets ok=false, not a dropped connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(os.fspath(server.path))
        sock.sendall(b"not json\n")
        reply = control._read_line(sock)
    assert reply.startswith(b'{"ok": false, "error": "bad request: ')


def test_handler_exception_keeps_the_server_alive(server: ControlServer) -> None:
    """A raising handler yields an error reply naming the exception; the next query works."""
    assert query(server.path, {"cmd": "boom"}) == {
        "ok": False,
        "error": "RuntimeError: handler broke",
    }
    assert query(server.path, {"cmd": "status"})["ok"] is True


def test_short_git_dir_keeps_the_socket_in_the_git_dir(tmp_path: Path) -> None:
    """A git dir with a short path gets its socket beside the lock, and no pointer file."""
    git_dir = tmp_path / ".git"
    assert socket_path(git_dir) == git_dir / "modwatch" / "control.sock"
    assert resolve_socket(git_dir) == git_dir / "modwatch" / "control.sock"
    assert not (git_dir / "modwatch" / "control.sock.path").exists()


def test_long_git_dir_falls_back_to_runtime_dir(
    tmp_path: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path over 107 bytes moves the socket to $XDG_RUNTIME_DIR; clients find it."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    git_dir = tmp_path / ("w" * 60) / ("t" * 60) / ".git"
    path = socket_path(git_dir)
    assert path.parent == short_dir
    assert path.name.startswith("modwatch-") and len(path.name) == len("modwatch-.sock") + 16
    assert (git_dir / "modwatch" / "control.sock.path").read_text() == str(path)
    monkeypatch.delenv("XDG_RUNTIME_DIR")  # a client (git hook) may not have it
    assert resolve_socket(git_dir) == path
    with ControlServer(path, {"status": _status}):
        assert query(resolve_socket(git_dir), {"cmd": "status"})["state"] == "idle"


def test_long_git_dir_without_runtime_dir_uses_temp_dir(
    tmp_path: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without $XDG_RUNTIME_DIR the fallback socket goes to the temp directory."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(short_dir))
    git_dir = tmp_path / ("w" * 60) / ("t" * 60) / ".git"
    assert socket_path(git_dir).parent == short_dir
    assert resolve_socket(git_dir).parent == short_dir


def test_query_without_server_raises_daemon_not_running(tmp_path: Path) -> None:
    """No socket file, or a stale one nobody listens on, both mean not running."""
    with pytest.raises(DaemonNotRunning):
        query(tmp_path / "absent.sock", {"cmd": "status"})
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(os.fspath(stale))  # bound, never listening: what a killed daemon leaves
    with pytest.raises(DaemonNotRunning):
        query(stale, {"cmd": "status"})


def test_query_of_a_silent_daemon_times_out_as_daemon_error(tmp_path: Path) -> None:
    """A daemon that accepts but never answers is an error, not "not running"."""
    path = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(os.fspath(path))
        hung.listen()  # the kernel completes connects; nobody ever reads or replies
        with pytest.raises(DaemonError, match="no valid reply") as raised:
            query(path, {"cmd": "status"}, timeout=0.2)
    assert not isinstance(raised.value, DaemonNotRunning)


def test_server_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    """A socket file left by a killed daemon does not stop the next one from binding."""
    path = tmp_path / "c.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(os.fspath(path))
    with ControlServer(path, {"status": _status}):
        assert query(path, {"cmd": "status"})["ok"] is True


def test_no_fd_leak_over_200_queries(server: ControlServer) -> None:
    """Every connection and its buffers are closed once the reply is sent."""
    before = _fds()
    for i in range(200):
        assert query(server.path, {"cmd": "status", "echo": i})["echo"] == i
    # A worker closes its socket just after the reply, so the last one may lag a moment.
    wait_for(lambda: _fds() == before, timeout=10, what=f"{before} open fds, have {_fds()}")


def test_stop_removes_socket_joins_threads_and_closes_fds(tmp_path: Path) -> None:
    """stop() ends an idle connection, joins every thread, removes the socket, frees fds."""
    path = tmp_path / "c.sock"
    before_fds, before_threads = _fds(), set(threading.enumerate())
    server = ControlServer(path, {"status": _status})
    server.start()
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(os.fspath(path))  # connected, never sends: a worker sits in recv
    wait_for(lambda: len(threading.enumerate()) == len(before_threads) + 2, what="the worker")
    server.stop()
    idle.close()
    assert not path.exists()
    assert set(threading.enumerate()) == before_threads
    assert _fds() == before_fds
    server.stop()  # a second stop is harmless
