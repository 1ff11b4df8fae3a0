"""Signal handlers that cannot deadlock the loop they interrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from daemon.signals import Requests, WakePipe, handled

# A child process whose main loop is interrupted by a storm of signals, each handled by asking
# to stop. ``ASK`` is what a handler does; the loop does what the daemon's supervisor does.
STORM = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from daemon.signals import Requests

    requests, event = Requests(), threading.Event()
    ASK = {
        "requests": requests.request_stop,
        "event": event.set,
    }[sys.argv[1]]
    WAIT = {"requests": requests.wait, "event": event.wait}[sys.argv[1]]
    handled = 0

    def handler(_signum, _frame):
        global handled
        handled += 1
        ASK()

    signal.signal(signal.SIGUSR1, handler)

    def storm():
        while True:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.0001)

    threading.Thread(target=storm, daemon=True).start()
    while handled < 20_000:
        WAIT(0)
        requests.stop = False
        event.clear()
    print("survived", handled)
    """
)


def _storm(kind: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STORM, kind], capture_output=True, text=True, timeout=120
    )


def test_a_stop_asked_by_a_handler_never_deadlocks_the_loop_it_interrupts():
    done = _storm("requests")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("survived")


def test_the_storm_catches_a_handler_that_sets_a_threading_event():
    # What the daemon did before: Event.set() in the handler waits on the Condition lock the
    # interrupted Event.wait() holds. The storm turns that hang into a RecursionError (each
    # new signal interrupts the blocked handler), or the timeout catches a plain hang.
    try:
        done = _storm("event")
    except subprocess.TimeoutExpired:
        return
    assert done.returncode != 0 and "RecursionError" in done.stderr


def test_wait_ends_as_soon_as_another_thread_asks():
    requests = Requests()
    try:
        asker = threading.Thread(target=requests.request_stop)
        started = time.monotonic()
        asker.start()
        requests.wait(60)
        asker.join()
        assert requests.stop
        assert time.monotonic() - started < 30  # woken, not timed out
    finally:
        requests.close()


def test_a_burst_of_reload_requests_is_taken_once():
    requests = Requests()
    try:
        requests.request_reload()
        requests.request_reload()
        requests.wait(60)  # returns at once: a request is pending
        assert requests.take_reload()
        assert not requests.take_reload()
        assert not requests.stop
    finally:
        requests.close()


def test_requests_after_close_are_harmless():
    requests = Requests()
    requests.close()
    requests.request_stop()
    assert requests.stop


def test_a_wake_after_close_writes_to_no_reused_fd():
    pipe = WakePipe()
    pipe.close()
    read, write = os.pipe2(os.O_NONBLOCK)  # likely the numbers just freed
    try:
        pipe.wake()
        with pytest.raises(BlockingIOError):
            os.read(read, 1)
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_ask_to_stop_and_are_recorded(signum: int):
    requests = Requests()
    received: list[int] = []
    before = signal.getsignal(signum)
    try:
        with handled(requests, received):
            os.kill(os.getpid(), signum)
            requests.wait(60)
            assert requests.stop and received == [signum]
        assert signal.getsignal(signum) is before
    finally:
        requests.close()


def test_sighup_asks_for_a_reload_and_not_a_stop():
    requests = Requests()
    received: list[int] = []
    try:
        with handled(requests, received):
            os.kill(os.getpid(), signal.SIGHUP)
            requests.wait(60)
            assert requests.take_reload()
        assert not requests.stop and received == []
    finally:
        requests.close()
