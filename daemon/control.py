"""One daemon per worktree, and the unix socket through which clients talk to it.

The lock is an ``flock`` on ``<git dir>/modwatch/daemon.lock`` (scenario 34): the kernel drops
it when its owner dies, even by ``kill -9``, so there is never a stale lock to clean up. The
control protocol is one JSON object per line, one request and one reply per connection.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import selectors
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Self

from daemon.errors import DaemonError
from daemon.log import get_logger
from daemon.signals import WakePipe

log = get_logger()

Handler = Callable[[dict[str, object]], dict[str, object]]

_MAX_UNIX_PATH = 107  # sun_path holds 108 bytes including the terminating NUL (unix(7))
_MAX_LINE = 1 << 20  # a request or reply longer than this is a bug, not a message
_CONN_TIMEOUT_S = 5.0  # a client that connects and never sends must not pin a thread


class AlreadyRunning(DaemonError):
    """Another daemon holds this worktree's lock; ``pid`` is its process id (0 if unknown)."""

    def __init__(self, pid: int) -> None:
        super().__init__(
            f"modwatch is already running for this worktree (pid {pid})",
            hint=f"it keeps watching; to replace it, stop it first: kill {pid}",
        )
        self.pid = pid


class DaemonNotRunning(DaemonError):
    """No daemon listens on the control socket."""


def lock_path(git_dir: Path) -> Path:
    """Return the daemon lock file of the worktree whose git dir is ``git_dir``."""
    return git_dir / "modwatch" / "daemon.lock"


def _default_runtime_dir(value: str | None) -> Path:
    """Return ``$XDG_RUNTIME_DIR`` when it names a directory, else the temp directory."""
    return Path(value) if value and Path(value).is_dir() else Path(tempfile.gettempdir())


def socket_path(git_dir: Path) -> Path:
    """Return where the daemon of ``git_dir`` listens, writing the pointer file if needed.

    Unix socket paths are limited to 107 bytes, and worktrees live in deep directories. A path
    too long is replaced by ``modwatch-<hash>.sock`` in the runtime (or temp) directory, named
    in ``<git dir>/modwatch/control.sock.path`` so that clients with another environment (a git
    hook, whose ``$XDG_RUNTIME_DIR`` may differ) find it with :func:`resolve_socket`.
    """
    preferred = git_dir / "modwatch" / "control.sock"
    if len(os.fsencode(preferred)) <= _MAX_UNIX_PATH:
        return preferred
    digest = hashlib.sha256(os.fsencode(git_dir)).hexdigest()[:16]
    short = _default_runtime_dir(os.environ.get("XDG_RUNTIME_DIR")) / f"modwatch-{digest}.sock"
    if len(os.fsencode(short)) > _MAX_UNIX_PATH:
        raise DaemonError(
            f"no control socket path under {_MAX_UNIX_PATH} bytes for {git_dir}",
            hint="set XDG_RUNTIME_DIR (or TMPDIR) to a short directory, e.g. /tmp",
        )
    pointer = _pointer(git_dir)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    partial = pointer.with_name(f"{pointer.name}.{os.getpid()}.tmp")
    partial.write_text(str(short), encoding="utf-8")
    os.replace(partial, pointer)  # a client reading concurrently sees all of it or nothing
    return short


def resolve_socket(git_dir: Path) -> Path:
    """Return the socket a client should connect to: the pointer file's target, if any."""
    pointer = _pointer(git_dir)
    if pointer.is_file():
        return Path(pointer.read_text(encoding="utf-8").strip())
    return git_dir / "modwatch" / "control.sock"


def _pointer(git_dir: Path) -> Path:
    return git_dir / "modwatch" / "control.sock.path"


class DaemonLock:
    """An exclusive, non-blocking ``flock`` on ``path`` that names its holder's pid.

    Used as a context manager. The file is never deleted: unlinking a locked file lets a new
    daemon lock a fresh inode while another still holds the old one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid into the file.

        Raises:
            AlreadyRunning: another process (or another ``DaemonLock`` here) holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Python fds are non-inheritable, so git and ruff children never keep the lock alive.
        file = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - lives until release()
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise AlreadyRunning(_holder_pid(self.path)) from None
        file.truncate(0)
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Unlock and close the file (idempotent)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _holder_pid(path: Path, wait_s: float = 1.0) -> int:
    """Read the holder's pid, waiting briefly while it is between truncate and write."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return int(path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                return 0
        time.sleep(0.01)


def _read_line(sock: socket.socket) -> bytes:
    """Receive up to the first newline (or EOF) without a file object to leak."""
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_LINE:
            raise ValueError(f"line longer than {_MAX_LINE} bytes")
    return data.split(b"\n", 1)[0]


class ControlServer:
    """Answers JSON-line requests on a unix socket, one thread per connection.

    Args:
        path: the socket; a stale file there is removed, so take the :class:`DaemonLock` first.
        handlers: ``cmd`` name to a function from the request to the reply fields.
    """

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self._handlers = dict(handlers)
        self._listener: socket.socket | None = None
        self._wake: WakePipe | None = None
        self._selector: selectors.BaseSelector | None = None
        self._acceptor: threading.Thread | None = None
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Bind the socket and start accepting on a thread of its own."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # left by a killed daemon; we hold the lock now
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.fspath(self.path))
            # Before listen(), so no other user can connect in between (the socket may be in
            # a shared temp directory).
            os.chmod(self.path, 0o600)
            listener.listen()
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._wake = WakePipe()
        # Made here, not on the thread, so every fd exists once start() returns.
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._selector.register(self._wake, selectors.EVENT_READ)
        self._acceptor = threading.Thread(target=self._accept_loop, name="modwatch-control")
        self._acceptor.start()

    def stop(self) -> None:
        """Stop accepting, end open connections, join every thread and remove the socket."""
        if (
            self._acceptor is None
            or self._listener is None
            or self._selector is None
            or self._wake is None
        ):
            return
        self._wake.wake()
        self._acceptor.join()
        with self._lock:
            for conn in self._conns.values():
                # Wakes a worker blocked in recv; the worker itself closes the socket.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            workers = list(self._conns)
        for worker in workers:
            worker.join()
        self._selector.close()
        self._listener.close()
        self._wake.close()
        self._listener, self._acceptor, self._selector, self._wake = None, None, None, None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        """Hand each new connection to a worker thread until the wake pipe is written."""
        assert self._listener is not None
        assert self._selector is not None
        while True:
            ready = [key.fileobj for key, _ in self._selector.select()]
            if self._wake in ready:
                return
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue  # the client gave up between select and accept
            worker = threading.Thread(
                target=self._serve, args=(conn,), name="modwatch-control-conn"
            )
            with self._lock:
                self._conns[worker] = conn
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        """Answer the one request of ``conn`` and close it."""
        try:
            conn.settimeout(_CONN_TIMEOUT_S)
            line = _read_line(conn)
            if line:
                conn.sendall(self._answer(line).encode() + b"\n")
        except (OSError, ValueError) as exc:  # the client left, stalled or sent too much
            log.debug("control_connection_dropped", error=str(exc))
        finally:
            with self._lock:  # so stop() never shuts down a closed (maybe reused) fd
                del self._conns[threading.current_thread()]
                conn.close()

    def _answer(self, line: bytes) -> str:
        """Return the JSON reply to one request line; a failing handler becomes an error."""
        try:
            request = json.loads(line)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            return json.dumps({"ok": False, "error": f"bad request: {exc}"})
        cmd = request.get("cmd") if isinstance(request, dict) else None
        handler = self._handlers.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            return json.dumps({"ok": False, "error": f"unknown command {cmd!r} (known: {known})"})
        try:
            return json.dumps({**handler(request), "ok": True})
        except Exception as exc:  # one bad request must not take the daemon down
            log.exception("control_handler_failed", cmd=cmd)
            return json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def query(path: Path, request: dict[str, object], *, timeout: float = 5.0) -> dict[str, object]:
    """Send ``request`` to the daemon listening on ``path`` and return its reply.

    Raises:
        DaemonNotRunning: nothing listens on ``path``.
        DaemonError: the daemon did not answer within ``timeout`` seconds or answered garbage.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(_read_line(sock))
    except (FileNotFoundError, ConnectionRefusedError):
        raise DaemonNotRunning(
            f"no modwatch daemon is listening on {path}", hint="start one: modwatch watch"
        ) from None
    except (OSError, ValueError) as exc:  # a timeout, a dropped connection, broken JSON
        raise DaemonError(f"no valid reply from the daemon on {path}: {exc}") from exc
    if not isinstance(reply, dict):
        raise DaemonError(f"the daemon on {path} replied with a non-object: {reply!r}")
    return reply
