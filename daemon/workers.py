"""Worker processes for the daemon: plain ``python -m daemon.workers`` children on pipes.

The daemon runs threads (watchdog's observer, the control server), so forking it could copy a
lock another thread holds into the child, which would then wait on it for ever. multiprocessing's
``spawn`` context avoids that but leaves a resource-tracker process behind for the daemon's whole
life, which the soak's child count would rightly call a leak. These workers are plain
subprocesses: each takes one pickled call at a time on stdin and answers on stdout, and all of
them are gone once the executor is shut down. Nothing but the calls it is given crosses.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import IO, Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")

_HEADER = struct.Struct("!Q")
_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _send(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> object:
    """One framed message; EOFError when the other side has gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class SubprocessExecutor(Executor):
    """``jobs`` worker subprocesses, each running one submitted call at a time."""

    def __init__(self, jobs: int) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        for index in range(jobs):
            proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.workers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONSAFEPATH": "1"},  # no cwd on sys.path
            )
            thread = threading.Thread(
                target=self._serve, args=(proc,), name=f"modwatch-worker-{index}", daemon=True
            )
            self._procs.append(proc)
            self._threads.append(thread)
            thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._closed:
            raise RuntimeError("cannot submit after shutdown")
        future: Future[T] = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def _serve(self, proc: subprocess.Popen[bytes]) -> None:
        """Feed one worker; a dead worker fails its call and every call after it."""
        assert proc.stdin is not None and proc.stdout is not None
        broken: BaseException | None = None
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            if broken is not None:
                future.set_exception(broken)
                continue
            try:
                _send(proc.stdin, (fn, args, kwargs))
                ok, value = cast(tuple[bool, Any], _receive(proc.stdout))
            except (EOFError, OSError) as exc:
                broken = BrokenProcessPool(f"worker {proc.pid} died: {exc!r}")
                future.set_exception(broken)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers: every one exits at the end of its current call, and is reaped."""
        if self._closed:
            return
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)
        for thread, proc in zip(self._threads, self._procs, strict=True):
            thread.join()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):  # a dead worker's pipe is broken
                    proc.stdin.close()  # EOF: the worker's loop ends
        for proc in self._procs:  # all told first, so they exit side by side
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The worker's loop: a call in, ``(ok, result or exception)`` out, until EOF."""
    while True:
        try:
            call = _receive(requests)
        except EOFError:
            return
        fn, args, kwargs = cast(tuple[Callable[..., object], tuple[Any, ...], dict[str, Any]], call)
        try:
            reply: tuple[bool, object] = (True, fn(*args, **kwargs))
        except Exception as exc:  # the caller sees it through its future
            reply = (False, exc)
        _send(replies, reply)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
    # Every reply is flushed and nothing else is kept: skip the interpreter's teardown, which
    # frees a worker's parse trees one object at a time (seconds after a large wave).
    os._exit(0)
