"""A real ``modwatch watch`` in a subprocess: start it, read its JSON log, sync, stop it.

Also runs the one-shot commands (``modwatch convert``) in fresh processes, the way a cold
user would, so the benchmarks compare the warm daemon with the same interpreter cold.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from daemon import control, git

Event = dict[str, object]

STARTED = "daemon.started"
RUN_FINISHED = "run.finished"
RECONCILE = "daemon.reconcile"
_POLL_S = 0.05


def modwatch(*args: str) -> list[str]:
    """The argv of ``modwatch <args>`` run by this interpreter, logging JSON lines."""
    return [sys.executable, "-m", "daemon", "--log-format", "json", *args]


def runs(events: Sequence[Event]) -> list[Event]:
    """The ``run.finished`` events among ``events``."""
    return [e for e in events if e.get("event") == RUN_FINISHED]


def batch(event: Event) -> object:
    """The id of the batch an event was logged in (None outside batches, e.g. start-up)."""
    return event.get("batch")


def reconciles(events: Sequence[Event]) -> list[str]:
    """The reasons of the full reconciles (``periodic``, ``overflow``) logged in ``events``."""
    return [str(e.get("reason")) for e in events if e.get("event") == RECONCILE]


def event_time(event: Event) -> float:
    """The wall-clock time (``time.time()`` scale) of a structlog ISO ``timestamp``."""
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


@dataclass
class LogTail:
    """Reads the JSON lines appended to a log file since the last read."""

    path: Path
    offset: int = 0
    _partial: bytes = b""

    def read(self) -> list[Event]:
        """The complete new lines that parse as JSON objects (others are skipped)."""
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # the daemon may be half-way through writing this one
        return [e for e in map(_parse, lines) if e is not None]


def _parse(line: bytes) -> Event | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None  # a traceback or a warning printed outside structlog
    return value if isinstance(value, dict) else None


@dataclass
class RunningDaemon:
    """A started daemon: its process, its log and its control socket."""

    proc: subprocess.Popen[bytes]
    repo: Path
    log: LogTail
    socket: Path
    events: list[Event] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.proc.pid

    def drain(self) -> list[Event]:
        """New log events since the last drain (also appended to ``events``)."""
        new = self.log.read()
        self.events.extend(new)
        return new

    def sync(self, timeout: float, rounds: int = 2) -> None:
        """Return once everything that happened before the call is processed.

        Twice by default: the second cookie follows the echo events of the first batch's
        own writes, so the daemon is idle afterwards (as ``benchmarks/soak.py`` does).

        Raises:
            RuntimeError: the daemon did not carry a cookie within ``timeout`` seconds.
        """
        for _ in range(rounds):
            request: dict[str, object] = {"cmd": "sync", "timeout": timeout}
            reply = control.query(self.socket, request, timeout=timeout + 10)
            if reply.get("synced") is not True:
                raise RuntimeError(f"sync failed after {timeout} s: {reply}")


def wait_for(daemon: RunningDaemon, name: str, timeout: float) -> Event:
    """Block until the daemon logs event ``name``; return it.

    Raises:
        TimeoutError: not within ``timeout`` seconds, or the daemon exited first.
    """
    deadline = time.monotonic() + timeout
    while True:
        for event in daemon.drain():
            if event.get("event") == name:
                return event
        if daemon.proc.poll() is not None or time.monotonic() > deadline:
            tail = daemon.log.path.read_text(encoding="utf-8", errors="replace")[-4000:]
            raise TimeoutError(f"no {name} event from the daemon; end of its log:\n{tail}")
        time.sleep(_POLL_S)  # polling a log file, with a deadline


@contextlib.contextmanager
def running(
    repo: Path,
    log_path: Path,
    *,
    debounce_ms: int = 20,
    start_timeout: float = 300.0,
    extra: Sequence[str] = (),
) -> Iterator[RunningDaemon]:
    """Run ``modwatch watch --repo repo`` until the block ends; stderr goes to ``log_path``.

    Yields once the daemon has logged ``daemon.started`` (watchers armed, graph learnt).
    """
    argv = modwatch("watch", "--repo", str(repo), "--debounce-ms", str(debounce_ms), *extra)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file)
    socket = control.resolve_socket(git.git_dir(repo))
    daemon = RunningDaemon(proc, repo, LogTail(log_path), socket)
    try:
        wait_for(daemon, STARTED, start_timeout)
        yield daemon
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM (the daemon's clean shutdown path), then SIGKILL if it does not exit."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def cold_convert_seconds(root: Path, source: Path, *, allow_failure: bool = False) -> float:
    """Wall seconds of ``modwatch convert <source>`` in a fresh process, started in ``root``.

    Raises:
        RuntimeError: the command failed (unless ``allow_failure``: a file the converter
            cannot convert yet still costs a conversion attempt).
    """
    started = time.perf_counter()
    done = subprocess.run(
        modwatch("convert", str(source)), cwd=root, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0 and not allow_failure:
        raise RuntimeError(f"modwatch convert {source} exited {done.returncode}:\n{done.stderr}")
    return elapsed
