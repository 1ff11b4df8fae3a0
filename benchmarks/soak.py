"""Soak test of the daemon (scenario 33): many save -> regenerate -> stage cycles.

Prints open file descriptors, child processes and RSS of the daemon at the first, middle
and last cycle. Run: ``python -m benchmarks.soak --cycles 10000``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon import control, example, git

MODULAR = Path("src/zoo/models/orbit/modular_orbit.py")
MODELING = Path("src/zoo/models/orbit/modeling_orbit.py")


@dataclass(frozen=True)
class Sample:
    """The daemon's resources after one cycle."""

    cycle: int
    fds: int
    children: int
    rss_kb: int


def sample(pid: int, cycle: int) -> Sample:
    """Read fds, children and RSS of ``pid`` from /proc."""
    # The control connection that just answered our sync closes a moment after its reply:
    # the settled count is the smallest of a few readings.
    readings = []
    for _ in range(10):
        readings.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.01)  # spacing between readings, not synchronisation
    fds = min(readings)
    children = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            children += len(fh.read().split())
    rss = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return Sample(cycle, fds, children, rss)


def _wait_started(log: Path, deadline: float) -> None:
    while '"daemon.started"' not in log.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(f"daemon did not start; log:\n{log.read_text()}")
        time.sleep(0.05)  # polling for the start line, with a deadline


def soak(
    cycles: int,
    workdir: Path,
    *,
    every: int = 0,
    on_sample: Callable[[Sample], None] | None = None,
) -> list[Sample]:
    """Run ``cycles`` edit/sync cycles against a real daemon; sample at 1, middle and end."""
    repo = example.create(workdir / "zoo")
    log_path = workdir / "daemon.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "watch", "--repo", str(repo), "--debounce-ms", "10"],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    samples: list[Sample] = []
    wanted = {1, max(1, cycles // 2), cycles}
    try:
        _wait_started(log_path, time.monotonic() + 60)
        sock = control.resolve_socket(git.git_dir(repo))
        source = repo / MODULAR
        base = source.read_text()
        for cycle in range(1, cycles + 1):
            source.write_text(base.replace("return -x", f"return -x + {cycle}"))
            # Twice: the second cookie follows the echo events of the first run's own writes,
            # so the daemon is idle when it is sampled.
            for _ in range(2):
                reply = control.query(sock, {"cmd": "sync"}, timeout=60)
                if reply.get("synced") is not True:
                    raise RuntimeError(f"cycle {cycle}: sync failed: {reply}")
            if f"return -x + {cycle}" not in (repo / MODELING).read_text():
                raise RuntimeError(f"cycle {cycle}: output not regenerated")
            if cycle in wanted or (every and cycle % every == 0):
                samples.append(sample(proc.pid, cycle))
                if on_sample is not None:
                    on_sample(samples[-1])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=2000, help="10000 for the long soak")
    parser.add_argument("--every", type=int, default=0, help="also sample every N cycles")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{'cycle':>8} {'fds':>5} {'children':>9} {'rss_mb':>8} {'elapsed_s':>10}", flush=True)

    def show(s: Sample) -> None:
        elapsed = time.perf_counter() - started
        print(
            f"{s.cycle:>8} {s.fds:>5} {s.children:>9} {s.rss_kb / 1024:>8.1f} {elapsed:>10.0f}",
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="modwatch-soak-") as tmp:
        soak(args.cycles, Path(tmp), every=args.every, on_sample=show)
    elapsed = time.perf_counter() - started
    print(f"{args.cycles} cycles in {elapsed:.0f} s ({elapsed / args.cycles * 1000:.0f} ms/cycle)")


if __name__ == "__main__":
    main()
