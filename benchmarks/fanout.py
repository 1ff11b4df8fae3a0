"""Fan-out of a widely inherited parent: edit ``modeling_llama.py``, time all dependents.

On a fresh checkout of the transformers 5.23.0 corpus a daemon is started; then a comment
line is inserted before the last statement of ``rotate_half`` in ``modeling_llama.py`` (or
``--function``), which the converter copies into the dependents that use it: semantically
neutral, yet dependent outputs change (checked: at least one must, else it is an error).
A sync through the control socket (long timeout) returns once every dependent is done.

Warm figure: from just before the write to the last ``run.finished`` event, with the number
of those events, of distinct sources, and of the dependents the import graph predicts.
Cold figure: a sequential loop of ``modwatch convert <file>`` over the same sources, each in
a fresh process, after the daemon stopped. ``--cold-limit N`` times only N of them, evenly
spread over the run order, and extrapolates the total (printed as extrapolated).

    python -m benchmarks.fanout [--cold-limit N] [--function NAME] [--json PATH]
"""

from __future__ import annotations

import argparse
import ast
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import _daemon, _report, corpus
from daemon.graph import dependents, parent_paths, possible_outputs

PARENT = Path("src/transformers/models/llama/modeling_llama.py")
FUNCTION = "rotate_half"
_MARK = "# modwatch fanout benchmark: a neutral comment"


@dataclass(frozen=True)
class Warm:
    """What the daemon did after the edit."""

    seconds: float  # write -> last run.finished
    sync_seconds: float  # write -> the sync returned
    runs: int
    sources: list[str]  # distinct, in the order they first finished
    errors: int
    predicted: int  # dependents by the import graph
    outputs_changed: int
    summed_run_seconds: float
    other_batch_runs: int  # runs of other batches before the sync returned
    reconciles: list[str]  # full reconciles the daemon started meanwhile


@dataclass(frozen=True)
class Cold:
    """The sequential loop of fresh ``modwatch convert`` processes."""

    timed: dict[str, float]  # source -> seconds
    total: int  # sources the loop covers

    @property
    def extrapolated(self) -> bool:
        """True when only some sources were timed."""
        return len(self.timed) < self.total

    @property
    def seconds(self) -> float:
        """The loop's total: measured, or the timed mean times ``total``."""
        if not self.timed:
            return 0.0
        return sum(self.timed.values()) / len(self.timed) * self.total


def neutral_edit(text: str, function: str) -> str:
    """``text`` with a comment line before the last statement of module-level ``function``.

    Raises:
        ValueError: there is no such function.
    """
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            last = node.body[-1]
            lines = text.split("\n")
            lines.insert(last.lineno - 1, " " * last.col_offset + _MARK)
            return "\n".join(lines)
    raise ValueError(f"no module-level function {function!r} to edit")


def predicted_dependents(root: Path, parent: Path) -> set[Path]:
    """The sources that read ``parent``, directly or transitively, by their imports."""
    parents = {
        s: parent_paths(s, s.read_text(encoding="utf-8"), root) for s in corpus.modular_files(root)
    }
    return dependents(parents, [parent])


def snapshot(sources: set[Path]) -> dict[Path, bytes]:
    """The bytes of every existing output of ``sources``."""
    return {p: p.read_bytes() for s in sources for p in possible_outputs(s) if p.is_file()}


def warm_fanout(daemon: _daemon.RunningDaemon, function: str, timeout: float) -> Warm:
    """Edit the parent, sync, and read what the daemon logged."""
    root = daemon.repo
    parent = root / PARENT
    predicted = predicted_dependents(root, parent)
    before = snapshot(predicted)
    text = neutral_edit(parent.read_text(encoding="utf-8"), function)
    daemon.drain()
    wall, started = time.time(), time.perf_counter()
    parent.write_text(text, encoding="utf-8")
    daemon.sync(timeout=timeout)
    synced = time.perf_counter() - started
    events = daemon.drain()
    everything = _daemon.runs(events)
    runs = _edit_batch(everything, {p.relative_to(root).as_posix() for p in predicted})
    changed = sum(1 for p, old in before.items() if not p.is_file() or p.read_bytes() != old)
    if not runs or not changed:
        raise RuntimeError(f"the edit changed no dependent output ({len(runs)} runs)")
    durations = [e.get("duration_ms") for e in runs]
    return Warm(
        seconds=max(_daemon.event_time(e) for e in runs) - wall,
        sync_seconds=synced,
        runs=len(runs),
        sources=list(dict.fromkeys(str(e.get("source")) for e in runs)),
        errors=sum(1 for e in runs if e.get("outcome") == "error"),
        predicted=len(predicted),
        outputs_changed=changed,
        summed_run_seconds=sum(d for d in durations if isinstance(d, int | float)) / 1000,
        other_batch_runs=len(everything) - len(runs),
        reconciles=_daemon.reconciles(events),
    )


def _edit_batch(runs: list[_daemon.Event], predicted: set[str]) -> list[_daemon.Event]:
    """The runs of the batch that carried the edit: the batch of the first predicted run.

    A periodic reconcile (every 300 s) can queue a batch of its own while the fan-out runs;
    the sync waits for it too, but it is not the edit's cost.
    """
    first = next((e for e in runs if e.get("source") in predicted), None)
    if first is None:
        return []
    return [e for e in runs if _daemon.batch(e) == _daemon.batch(first)]


def spread(items: Sequence[str], limit: int) -> list[str]:
    """``limit`` items evenly spaced over ``items`` (all of them when ``limit`` is 0)."""
    if limit <= 0 or limit >= len(items):
        return list(items)
    if limit == 1:
        return [items[len(items) // 2]]
    step = (len(items) - 1) / (limit - 1)
    return [items[round(i * step)] for i in range(limit)]


def cold_loop(root: Path, sources: Sequence[str], limit: int) -> Cold:
    """Time ``modwatch convert`` of each (or ``limit`` spread) source in a fresh process."""
    timed: dict[str, float] = {}
    for rel in spread(sources, limit):
        timed[rel] = _daemon.cold_convert_seconds(root, root / rel, allow_failure=True)
        print(f"  cold {rel}: {timed[rel]:.2f} s", flush=True)
    return Cold(timed, len(sources))


def print_results(warm: Warm, cold: Cold) -> None:
    """Warm fan-out, the cold loop, and their ratio."""
    print(f"\nedit of {PARENT}:")
    print(f"  dependents predicted by the import graph: {warm.predicted}")
    print(f"  run.finished events: {warm.runs} ({len(warm.sources)} distinct sources)")
    print(f"  error runs: {warm.errors}; outputs changed: {warm.outputs_changed}")
    print(f"  edit -> last run.finished: {warm.seconds:.1f} s", end=" ")
    print(f"(the sync returned after {warm.sync_seconds:.1f} s)")
    print(f"  summed run duration_ms: {warm.summed_run_seconds:.1f} s")
    if warm.other_batch_runs or warm.reconciles:
        reasons = ", ".join(warm.reconciles) or "-"
        print(f"  note: {warm.other_batch_runs} more runs in other batches (reconcile: {reasons})")
        print("        happened before the sync returned; they are not counted above")
    label = (
        f"extrapolated from {len(cold.timed)} of {cold.total}" if cold.extrapolated else "measured"
    )
    print(f"  cold sequential convert loop: {cold.seconds:.1f} s ({label})")
    if cold.seconds:
        print(f"  warm / cold: {warm.seconds / cold.seconds * 100:.0f} %")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--function", default=FUNCTION, help=f"function to edit ({FUNCTION})")
    parser.add_argument("--cold-limit", type=int, default=0, help="time only N cold runs (0: all)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="sync timeout, s (3600)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    machine = _report.machine()
    print(machine.describe())
    with tempfile.TemporaryDirectory(prefix="modwatch-fanout-") as tmp:
        workdir = Path(tmp)
        root = corpus.fresh_checkout(workdir / "checkout")
        with _daemon.running(root, workdir / "daemon.log") as daemon:
            warm = warm_fanout(daemon, args.function, args.timeout)
        cold = cold_loop(root, warm.sources, args.cold_limit)
    print_results(warm, cold)
    _report.write_json(
        args.json,
        {
            "machine": asdict(machine),
            "warm": asdict(warm),
            "cold": {**asdict(cold), "seconds": cold.seconds, "extrapolated": cold.extrapolated},
        },
    )


if __name__ == "__main__":
    main()
