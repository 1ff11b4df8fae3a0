"""Whole-corpus ``modwatch check``: wall time and peak memory, per job count.

On a fresh checkout of the transformers 5.23.0 corpus, ``modwatch check --json
src/transformers/models`` runs in a fresh process, once per ``--jobs`` value when the CLI has
a ``-j`` option (read from ``modwatch check --help``), else once without it (and says so).

Memory, two ways: ``ru_maxrss`` from ``wait4`` on that process, which is the largest
single process of its tree (the kernel keeps the maximum over waited-for descendants, not a
sum); and the summed RSS of the whole tree, sampled every 50 ms from /proc, which is what
``-j 2`` workers running side by side cost together.

    python -m benchmarks.corpus_check [--jobs 1 2] [--path DIR ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import _daemon, _proc, _report, corpus

PATHS = ("src/transformers/models",)
_SAMPLE_S = 0.05
_JOBS_FLAG = re.compile(r"(?m)^\s+(-j\b|--jobs\b)")


@dataclass(frozen=True)
class CheckRun:
    """One ``modwatch check`` process."""

    jobs: int | None  # None: run without -j
    cached: bool  # a re-run allowed to answer from the check cache of the runs before it
    wall_seconds: float
    exit_code: int
    max_rss_mb: float  # ru_maxrss: the largest single process
    tree_peak_mb: float  # the largest sampled sum over the process tree
    counts: dict[str, int] = field(default_factory=dict)


def jobs_flag() -> str | None:
    """``-j`` (or ``--jobs``) when ``modwatch check --help`` lists it, else None."""
    done = subprocess.run(
        _daemon.modwatch("check", "--help"), capture_output=True, text=True, check=True
    )
    match = _JOBS_FLAG.search(done.stdout)
    return match.group(1) if match else None


def run_check(
    root: Path, paths: Sequence[str], flag: str | None, jobs: int | None, *, cached: bool = False
) -> CheckRun:
    """Run one check in ``root``, sampling its tree's RSS until ``wait4`` reaps it.

    Without ``cached`` the check converts every file (``--no-cache``, which still records the
    cache), so those runs are independent of each other; with it, it may answer from what the
    runs before recorded.
    """
    parallel = [flag, str(jobs)] if flag is not None and jobs is not None else []
    no_cache = [] if cached else ["--no-cache"]
    argv = _daemon.modwatch("check", "--json", *parallel, *no_cache, *paths)
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=root, stdout=out, stderr=subprocess.DEVNULL)
        status, usage, peak_kb = _wait_sampling(proc.pid)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
        out.seek(0)
        counts = _counts(out.read())
    return CheckRun(
        jobs=jobs if flag is not None else None,
        cached=cached,
        wall_seconds=wall,
        exit_code=proc.returncode,
        max_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        tree_peak_mb=peak_kb / 1024,
        counts=counts,
    )


def _wait_sampling(pid: int) -> tuple[int, resource.struct_rusage, int]:
    """Sample the tree RSS of ``pid`` until it exits; return (status, rusage, peak KiB)."""
    peak = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            return status, usage, peak
        peak = max(peak, _proc.tree_rss_kb(pid))
        time.sleep(_SAMPLE_S)  # sampling interval, not synchronisation


def _counts(stdout: bytes) -> dict[str, int]:
    """The ``counts`` of ``check --json`` (empty when the output is not that JSON)."""
    try:
        counts = json.loads(stdout).get("counts", {})
    except (ValueError, AttributeError):
        return {}
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


def print_results(runs: Sequence[CheckRun], paths: Sequence[str], flag: str | None) -> None:
    """One line per run."""
    print(f"\nmodwatch check {' '.join(paths)}")
    if flag is None:
        print("  note: `modwatch check --help` lists no -j option; ran once, without it")
    for run in runs:
        jobs = f"-j {run.jobs}" if run.jobs is not None else "(no -j)"
        jobs += " cached" if run.cached else ""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items())) or "no counts"
        print(
            f"  {jobs:<15} wall {run.wall_seconds:6.1f} s  exit {run.exit_code}  "
            f"ru_maxrss {run.max_rss_mb:5.0f} MB  tree peak {run.tree_peak_mb:5.0f} MB  "
            f"({counts})"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.corpus_check", description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="job counts (1 2)")
    parser.add_argument(
        "--path", action="append", help=f"what to check, repeatable (default: {PATHS[0]})"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    machine = _report.machine()
    print(machine.describe())
    paths = args.path or list(PATHS)
    flag = jobs_flag()
    job_counts: list[int | None] = list(args.jobs) if flag is not None else [None]
    runs = []
    with tempfile.TemporaryDirectory(prefix="modwatch-check-") as tmp:
        root = corpus.fresh_checkout(Path(tmp) / "checkout")
        for jobs in job_counts:
            runs.append(run_check(root, paths, flag, jobs))
        # The commit-to-commit case: nothing changed since a check that recorded everything
        # (a --no-cache run reads no cache, but records one).
        runs.append(run_check(root, paths, flag, job_counts[-1], cached=True))
    print_results(runs, paths, flag)
    _report.write_json(
        args.json,
        {"machine": asdict(machine), "paths": paths, "runs": [asdict(r) for r in runs]},
    )


if __name__ == "__main__":
    main()
