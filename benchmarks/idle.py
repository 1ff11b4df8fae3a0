"""Idle cost of the daemon: CPU time and memory while it watches the corpus and nothing happens.

On a fresh checkout of the transformers 5.23.0 corpus a daemon is started; once it logs
``daemon.started`` its CPU time (utime + stime from ``/proc/<pid>/stat``, and separately the
cutime + cstime of children it waited for) is read, then again after ``--seconds`` with no
edits. RSS (VmRSS) is sampled every ``--interval`` seconds in between.

    python -m benchmarks.idle [--seconds 60] [--interval 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import _daemon, _proc, _report, corpus


@dataclass(frozen=True)
class Idle:
    """What watching without edits cost."""

    seconds: float
    cpu_seconds: float  # the daemon's own utime + stime over the window
    children_cpu_seconds: float  # cutime + cstime gained over the window
    rss_start_mb: float
    rss_end_mb: float
    rss_max_mb: float
    runs: int  # run.finished events in the window: should be 0

    @property
    def cpu_percent(self) -> float:
        """The daemon's CPU use, in percent of one core."""
        return self.cpu_seconds / self.seconds * 100 if self.seconds else 0.0


def measure(daemon: _daemon.RunningDaemon, seconds: float, interval: float) -> Idle:
    """Read CPU times now and after ``seconds``, sampling RSS every ``interval``."""
    daemon.drain()
    first, started = _proc.cpu_times(daemon.pid), time.monotonic()
    samples = [_proc.rss_kb(daemon.pid)]
    deadline = started + seconds
    while (now := time.monotonic()) < deadline:
        time.sleep(min(interval, deadline - now))  # the sampling interval
        samples.append(_proc.rss_kb(daemon.pid))
    last, elapsed = _proc.cpu_times(daemon.pid), time.monotonic() - started
    runs = sum(1 for e in daemon.drain() if e.get("event") == _daemon.RUN_FINISHED)
    return Idle(
        seconds=elapsed,
        cpu_seconds=last.own - first.own,
        children_cpu_seconds=last.children - first.children,
        rss_start_mb=samples[0] / 1024,
        rss_end_mb=samples[-1] / 1024,
        rss_max_mb=max(samples) / 1024,
        runs=runs,
    )


def print_results(idle: Idle, sources: object) -> None:
    """CPU and RSS, one fact per line."""
    print(f"\nidle for {idle.seconds:.1f} s, watching {sources} sources, no edits:")
    print(
        f"  CPU: {idle.cpu_seconds:.2f} s = {idle.cpu_percent:.3f} % of one core "
        f"(resolution {_proc.TICK_S} s)"
    )
    print(f"  children CPU (git, ruff...): {idle.children_cpu_seconds:.2f} s")
    print(
        f"  RSS: start {idle.rss_start_mb:.1f} MB, end {idle.rss_end_mb:.1f} MB, "
        f"max {idle.rss_max_mb:.1f} MB"
    )
    print(f"  run.finished events meanwhile: {idle.runs}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window (60)")
    parser.add_argument("--interval", type=float, default=1.0, help="RSS sampling, s (1)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    machine = _report.machine()
    print(machine.describe())
    with tempfile.TemporaryDirectory(prefix="modwatch-idle-") as tmp:
        workdir = Path(tmp)
        root = corpus.fresh_checkout(workdir / "checkout")
        with _daemon.running(root, workdir / "daemon.log") as daemon:
            started = next(e for e in daemon.events if e.get("event") == _daemon.STARTED)
            idle = measure(daemon, args.seconds, args.interval)
    print_results(idle, started.get("sources"))
    _report.write_json(
        args.json,
        {"machine": asdict(machine), **asdict(idle), "cpu_percent": idle.cpu_percent},
    )


if __name__ == "__main__":
    main()
