"""Debouncer (driven with plain clock values) and BatchDriver (a real thread, synced by queues)."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.scheduler import BatchDriver, Debouncer

A, B, C = Path("modular_a.py"), Path("modular_b.py"), Path("modular_c.py")
WAIT = 5.0  # generous deadline for cross-thread hand-offs; never reached when things work


# --- Debouncer: pure state machine ---------------------------------------------------------


def test_idle_debouncer_has_nothing_due_and_no_deadline():
    """An empty debouncer never releases a batch and asks not to be woken."""
    d = Debouncer(quiet_ms=50, max_wait_ms=1600)
    assert d.due(1_000.0) == frozenset()
    assert d.next_deadline() is None
    assert d.pending == frozenset()


def test_batch_is_released_after_the_quiet_period():
    """A path is held until quiet_ms pass without activity, then released once."""
    d = Debouncer(quiet_ms=50, max_wait_ms=1600)
    d.add(A, 10.0)
    assert d.due(10.049) == frozenset()
    assert d.pending == {A}
    assert d.due(10.050) == {A}
    assert d.pending == frozenset()
    assert d.due(20.0) == frozenset()
    assert d.next_deadline() is None


def test_duplicates_coalesce_into_one_batch():
    """The same path added many times appears once; distinct paths share the batch."""
    d = Debouncer(quiet_ms=50, max_wait_ms=1600)
    for t, path in [(0.0, A), (0.01, A), (0.02, B), (0.03, A)]:
        d.add(path, t)
    assert d.due(0.08) == {A, B}


def test_a_repeated_path_extends_the_quiet_period():
    """Saving the same file again counts as activity, so the batch waits for quiet again."""
    d = Debouncer(quiet_ms=50, max_wait_ms=1600)
    d.add(A, 0.0)
    d.add(A, 0.04)
    assert d.due(0.06) == frozenset()
    assert d.next_deadline() == pytest.approx(0.09)
    assert d.due(0.09) == {A}


def test_max_wait_releases_a_batch_during_an_endless_burst():
    """Events every 20 ms never give 50 ms of quiet; max_wait caps each batch at 100 ms."""
    d = Debouncer(quiet_ms=50, max_wait_ms=100)
    released: list[tuple[float, frozenset[Path]]] = []
    for step in range(16):  # 0 ms .. 300 ms
        now = step * 0.02
        d.add(Path(f"modular_{step}.py"), now)
        if batch := d.due(now):
            released.append((now, batch))
    assert [round(t, 3) for t, _ in released] == [0.1, 0.22]
    assert released[0][1] == {Path(f"modular_{i}.py") for i in range(6)}
    # The next window starts at the first add after a release, not at the previous start.
    assert released[1][1] == {Path(f"modular_{i}.py") for i in range(6, 12)}


def test_next_deadline_is_the_earlier_of_quiet_and_max_wait():
    """next_deadline tracks last-add + quiet until first-add + max_wait comes first."""
    d = Debouncer(quiet_ms=50, max_wait_ms=120)
    d.add(A, 1.0)
    assert d.next_deadline() == pytest.approx(1.05)
    d.add(B, 1.04)
    assert d.next_deadline() == pytest.approx(1.09)
    d.add(C, 1.10)
    assert d.next_deadline() == pytest.approx(1.12)  # max-wait wins over 1.15
    assert d.due(1.12) == {A, B, C}


def test_zero_quiet_releases_immediately():
    """quiet_ms=0 makes every batch due at the time of its last add."""
    d = Debouncer(quiet_ms=0, max_wait_ms=0)
    d.add(A, 5.0)
    assert d.due(5.0) == {A}


def test_flush_releases_regardless_of_time():
    """flush() empties the batch even before it is due (shutdown)."""
    d = Debouncer(quiet_ms=50, max_wait_ms=1600)
    d.add(A, 0.0)
    assert d.flush() == {A}
    assert d.flush() == frozenset()
    assert d.next_deadline() is None


@pytest.mark.parametrize(("quiet_ms", "max_wait_ms"), [(-1, 10), (100, 50)])
def test_inconsistent_windows_are_rejected(quiet_ms, max_wait_ms):
    """A negative quiet period or a max-wait shorter than it is a programming error."""
    with pytest.raises(ValueError, match="quiet_ms"):
        Debouncer(quiet_ms=quiet_ms, max_wait_ms=max_wait_ms)


# --- BatchDriver: a real thread ------------------------------------------------------------


class Batches:
    """on_batch callback that records each batch and the thread it ran on."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[frozenset[Path], threading.Thread]] = (
            queue.SimpleQueue()
        )

    def __call__(self, batch: frozenset[Path]) -> None:
        self.queue.put((batch, threading.current_thread()))

    def next(self) -> frozenset[Path]:
        return self.queue.get(timeout=WAIT)[0]


def test_driver_delivers_a_due_batch_on_its_own_thread():
    """A submitted path reaches on_batch after the quiet period, on the driver thread."""
    batches = Batches()
    with BatchDriver(Debouncer(quiet_ms=10, max_wait_ms=100), batches, name="drv") as driver:
        driver.submit(A)
        batch, thread = batches.queue.get(timeout=WAIT)
    assert batch == {A}
    assert thread.name == "drv"
    assert thread is not threading.current_thread()


def test_driver_coalesces_submits_and_flush_delivers_them_once():
    """Paths submitted within the quiet period form one batch; flush() waits for its delivery."""
    batches = Batches()
    with BatchDriver(Debouncer(quiet_ms=60_000, max_wait_ms=60_000), batches) as driver:
        for path in (A, B, A, C, B):
            driver.submit(path)
        assert driver.flush(timeout=WAIT)
        assert batches.queue.get_nowait()[0] == {A, B, C}
        assert batches.queue.empty()


def test_pending_shows_what_is_waiting():
    """pending lists submitted paths until their batch is delivered."""
    batches = Batches()
    with BatchDriver(Debouncer(quiet_ms=60_000, max_wait_ms=60_000), batches) as driver:
        driver.submit(A)
        driver.submit(B)
        assert driver.pending == {A, B}
        assert driver.flush(timeout=WAIT)
        assert driver.pending == frozenset()


def test_flush_with_nothing_pending_does_not_call_on_batch():
    """An empty flush returns True without an empty batch."""
    batches = Batches()
    with BatchDriver(Debouncer(quiet_ms=10, max_wait_ms=100), batches) as driver:
        assert driver.flush(timeout=WAIT)
    assert batches.queue.empty()


def test_flush_before_start_and_after_stop_returns_false():
    """flush() reports False when no thread is running to deliver."""
    driver = BatchDriver(Debouncer(quiet_ms=10, max_wait_ms=100), Batches())
    assert not driver.flush(timeout=WAIT)
    driver.start()
    driver.stop()
    assert not driver.flush(timeout=WAIT)


def test_driver_waits_for_the_injected_clock():
    """Deadlines are measured on the injected clock: nothing is due until it advances."""
    now = [100.0]
    batches = Batches()
    driver = BatchDriver(Debouncer(quiet_ms=20, max_wait_ms=1000), batches, clock=lambda: now[0])
    with driver:
        driver.submit(A)
        with pytest.raises(queue.Empty):  # several 20 ms waits pass in real time
            batches.queue.get(timeout=0.2)
        now[0] = 100.02
        assert batches.next() == {A}


def test_concurrent_submits_lose_nothing():
    """Paths submitted from many threads at once all arrive, each exactly once."""
    batches = Batches()
    paths = [Path(f"modular_{i}.py") for i in range(400)]
    with BatchDriver(Debouncer(quiet_ms=5, max_wait_ms=20), batches) as driver:

        def submit_all(chunk: list[Path]) -> None:
            for path in chunk:
                driver.submit(path)

        workers = [threading.Thread(target=submit_all, args=(paths[i::8],)) for i in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert driver.flush(timeout=WAIT)
    seen: list[Path] = []
    while not batches.queue.empty():
        seen.extend(batches.queue.get_nowait()[0])
    assert sorted(seen) == sorted(paths)


def test_exception_in_on_batch_goes_to_on_error_and_the_thread_survives():
    """A failing batch is reported to on_error and later batches are still delivered."""
    errors: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    batches = Batches()

    def on_batch(batch: frozenset[Path]) -> None:
        if A in batch:
            raise RuntimeError("boom")
        batches(batch)

    with BatchDriver(Debouncer(quiet_ms=5, max_wait_ms=50), on_batch, on_error=errors.put) as d:
        d.submit(A)
        assert str(errors.get(timeout=WAIT)) == "boom"
        d.submit(B)
        assert batches.next() == {B}
        assert d.is_alive()


def test_default_on_error_logs_the_failure():
    """Without on_error, a failing batch is logged as scheduler.batch_failed."""

    def on_batch(batch: frozenset[Path]) -> None:
        raise RuntimeError("boom")

    with capture_logs() as logs, BatchDriver(Debouncer(5, 50), on_batch) as driver:
        driver.submit(A)
        assert driver.flush(timeout=WAIT)
    assert [e["event"] for e in logs] == ["scheduler.batch_failed"]
    assert logs[0]["log_level"] == "error"


def test_failing_on_error_is_logged_and_does_not_kill_the_thread():
    """Even an on_error that raises leaves the driver running."""

    def explode(exc: BaseException) -> None:
        raise ValueError("on_error broke too")

    def on_batch(batch: frozenset[Path]) -> None:
        raise RuntimeError("boom")

    with capture_logs() as logs, BatchDriver(Debouncer(5, 50), on_batch, on_error=explode) as d:
        d.submit(A)
        assert d.flush(timeout=WAIT)
        assert d.is_alive()
    assert [e["event"] for e in logs] == ["scheduler.on_error_failed"]


def test_flush_from_inside_on_batch_is_refused():
    """flush() on the driver thread would wait for itself, so it raises to on_error."""
    errors: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    holder: list[BatchDriver] = []

    def on_batch(batch: frozenset[Path]) -> None:
        holder[0].flush()

    driver = BatchDriver(Debouncer(5, 50), on_batch, on_error=errors.put)
    holder.append(driver)
    with driver:
        driver.submit(A)
        assert isinstance(errors.get(timeout=WAIT), RuntimeError)


def test_stop_joins_the_thread_and_is_idempotent():
    """stop() returns with the thread finished; a second stop() is harmless."""
    BatchDriver(Debouncer(5, 50), Batches()).stop()  # never started: nothing to join
    driver = BatchDriver(Debouncer(5, 50), Batches())
    driver.start()
    assert driver.is_alive()
    driver.stop()
    assert not driver.is_alive()
    driver.stop()


def test_stop_wakes_a_driver_waiting_on_a_long_deadline():
    """stop() does not wait for a pending deadline an hour away."""
    driver = BatchDriver(Debouncer(3_600_000, 3_600_000), Batches())
    driver.start()
    driver.submit(A)
    driver.stop(timeout=WAIT)
    assert not driver.is_alive()
