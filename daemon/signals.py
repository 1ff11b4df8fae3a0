"""Signals: what a handler may do without a deadlock, and the handlers of ``modwatch watch``.

A Python signal handler runs in the main thread between two bytecodes, possibly while that
thread holds a lock. ``threading.Event.set()`` takes the lock of the ``Condition`` that an
interrupted ``Event.wait()`` may be holding (it does, between its ``with self._cond:`` and the
blocking acquire), so a handler that sets an Event can wait forever on its own thread: CI saw
a daemon ignore SIGTERM for 30 s right after a reload. Handlers here only set plain attributes
and write one byte to a non-blocking pipe, which the supervisor's ``select`` wakes on.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class WakePipe:
    """A self-pipe: ``wake()``, from any thread or a signal handler, makes it readable, which
    ends a ``select`` on it (``wait``, or a selector it is registered with)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def fileno(self) -> int:
        return self._read

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full: already awake; closed: nobody waits
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> None:
        """Sleep until woken or ``timeout`` seconds; then read the wake-ups."""
        select.select([self._read], [], [], timeout)
        self.drain()

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._read, 512):
                pass

    def close(self) -> None:
        """A later ``wake`` writes to no one (-1), not to a reused fd number."""
        fds, (self._read, self._write) = (self._read, self._write), (-1, -1)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class Requests:
    """Stop and reload requests: set from signal handlers or any thread, taken by one loop."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False
        self._pipe = WakePipe()

    def request_stop(self) -> None:
        self.stop = True
        self._pipe.wake()

    def request_reload(self) -> None:
        self.reload = True
        self._pipe.wake()

    def take_reload(self) -> bool:
        """True once per burst of reload requests (a second SIGHUP during one reload is
        covered by it: the configuration is read after the flag is cleared)."""
        wanted, self.reload = self.reload, False
        return wanted

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds; a request ends the sleep at once."""
        if self.stop or self.reload:
            self._pipe.drain()
        else:
            self._pipe.wait(timeout)

    def close(self) -> None:
        self._pipe.close()


@contextmanager
def handled(requests: Requests, received: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM ask for the clean shutdown path (house style habit 7); SIGHUP for a
    reload. ``received`` collects the stop signals, for the exit code."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        requests.request_stop()

    def reload(_signum: int, _frame: FrameType | None) -> None:
        requests.request_reload()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
