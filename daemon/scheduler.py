"""Batching of changed paths: a pure debounce state machine and the thread that drives it.

The semantics are watchfiles' (``debounce``/``step``): paths collect in a set, and the batch is
released once ``quiet_ms`` pass without a new event, or ``max_wait_ms`` after the first event of
the batch, whichever comes first (reliability rule 2). A branch switch therefore yields one batch,
and a steady stream of saves still yields a batch every ``max_wait_ms``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import structlog

__all__ = ["BatchDriver", "Debouncer"]

_log = structlog.get_logger()


class Debouncer:
    """Collects paths and decides, from clock values it is given, when a batch is due.

    It never reads a clock, sleeps or starts threads, so tests drive it with plain floats.

    Args:
        quiet_ms: release the batch once this long has passed since the latest ``add``.
        max_wait_ms: release the batch at the latest this long after its first ``add``, even
            while events keep arriving.
    """

    def __init__(self, quiet_ms: int, max_wait_ms: int) -> None:
        if not 0 <= quiet_ms <= max_wait_ms:
            msg = f"need 0 <= quiet_ms <= max_wait_ms, got {quiet_ms=} {max_wait_ms=}"
            raise ValueError(msg)
        self._quiet = quiet_ms / 1000
        self._max_wait = max_wait_ms / 1000
        self._paths: set[Path] = set()
        self._first = 0.0
        self._last = 0.0

    def add(self, path: Path, now: float) -> None:
        """Record an event for ``path`` at time ``now`` (seconds, monotonic).

        A repeated path coalesces into the batch but still counts as activity, so it pushes the
        quiet deadline back (an editor saving the same file again means the burst is not over).
        """
        if not self._paths:
            self._first = now
        self._paths.add(path)
        self._last = now

    def due(self, now: float) -> frozenset[Path]:
        """Return and clear the batch if it is due at ``now``; otherwise an empty frozenset."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return frozenset()
        return self.flush()

    def flush(self) -> frozenset[Path]:
        """Return and clear the batch regardless of time (shutdown, explicit sync)."""
        batch = frozenset(self._paths)
        self._paths.clear()
        return batch

    def next_deadline(self) -> float | None:
        """The clock value at which the current batch becomes due, or None when idle."""
        if not self._paths:
            return None
        return min(self._last + self._quiet, self._first + self._max_wait)

    @property
    def pending(self) -> frozenset[Path]:
        """The paths collected so far and not yet released."""
        return frozenset(self._paths)


def _log_error(exc: BaseException) -> None:
    """Default ``on_error``: log the failure with its traceback and keep going."""
    _log.error("scheduler.batch_failed", exc_info=exc)


class BatchDriver:
    """Runs a :class:`Debouncer` on its own thread and hands due batches to ``on_batch``.

    ``submit`` may be called from any thread (typically watchdog's). The driver thread sleeps
    on a condition variable until the next deadline or the next submit, and calls ``on_batch``
    outside the lock, so a slow batch never blocks the watcher. An exception from ``on_batch``
    goes to ``on_error`` and the thread carries on (rule 8: a watcher that dies silently is the
    worst failure).

    Args:
        debouncer: the state machine to drive; the driver owns it from now on.
        on_batch: called on the driver thread with each non-empty batch.
        on_error: called on the driver thread with any exception from ``on_batch``;
            defaults to logging ``scheduler.batch_failed``.
        clock: monotonic seconds; injectable, but must advance in real time because the
            driver converts deadlines into ``Condition.wait`` timeouts.
    """

    def __init__(
        self,
        debouncer: Debouncer,
        on_batch: Callable[[frozenset[Path]], None],
        *,
        on_error: Callable[[BaseException], None] = _log_error,
        clock: Callable[[], float] = time.monotonic,
        name: str = "modwatch-batches",
    ) -> None:
        self._debouncer = debouncer
        self._on_batch = on_batch
        self._on_error = on_error
        self._clock = clock
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._flush_requested = 0  # flush tickets handed out, guarded by _cond
        self._flush_done = 0  # highest ticket whose paths were delivered, guarded by _cond
        self._running = False  # guarded by _cond; False again once the thread body returns
        self._thread = threading.Thread(target=self._run, name=name)

    def start(self) -> None:
        """Start the driver thread."""
        with self._cond:
            self._running = True
        self._thread.start()

    def submit(self, path: Path) -> None:
        """Add ``path`` to the current batch; thread-safe and cheap."""
        with self._cond:
            was_idle = self._debouncer.next_deadline() is None
            self._debouncer.add(path, self._clock())
            # Only the first path of a batch moves the deadline earlier; later ones only push
            # it back, and the driver re-reads it when it wakes. This keeps a 2,000-file
            # checkout from waking the thread 2,000 times.
            if was_idle:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything submitted so far now, ignoring the quiet period, and wait for it.

        Returns:
            True once ``on_batch`` has returned for those paths (or there were none); False on
            timeout or when the driver thread is not running.

        Raises:
            RuntimeError: when called from ``on_batch`` itself, which would wait for itself.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("BatchDriver.flush() called from its own on_batch callback")
        with self._cond:
            if not self._running:
                return False
            self._flush_requested += 1
            ticket = self._flush_requested
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._flush_done >= ticket or not self._running, timeout)
            return self._flush_done >= ticket

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and join it; paths still pending are dropped (call flush first)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def pending(self) -> frozenset[Path]:
        """The paths submitted and not yet handed to ``on_batch`` (for status reports)."""
        with self._cond:
            return self._debouncer.pending

    def is_alive(self) -> bool:
        """Whether the driver thread is running (for supervision)."""
        return self._thread.is_alive()

    def __enter__(self) -> BatchDriver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        """Thread body: wait for a batch, deliver it, repeat until stopped."""
        try:
            while (taken := self._take()) is not None:
                batch, ticket = taken
                if batch:
                    self._deliver(batch)
                if ticket:
                    with self._cond:
                        self._flush_done = max(self._flush_done, ticket)
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._running = False  # releases flush() waiters
                self._cond.notify_all()

    def _take(self) -> tuple[frozenset[Path], int] | None:
        """Block until a batch is due or a flush is requested; None means stop."""
        with self._cond:
            while not self._stop.is_set():
                if self._flush_requested > self._flush_done:
                    return self._debouncer.flush(), self._flush_requested
                now = self._clock()
                batch = self._debouncer.due(now)
                if batch:
                    return batch, 0
                deadline = self._debouncer.next_deadline()
                self._cond.wait(None if deadline is None else max(0.0, deadline - now))
            return None

    def _deliver(self, batch: frozenset[Path]) -> None:
        """Call ``on_batch``, routing any exception to ``on_error`` so the thread survives."""
        try:
            self._on_batch(batch)
        except Exception as exc:
            try:
                self._on_error(exc)
            except Exception:
                _log.exception("scheduler.on_error_failed")
