"""Save -> output-written latency of the warm daemon, against a cold ``modwatch convert``.

On a fresh checkout of the transformers 5.23.0 corpus (``benchmarks/corpus.py``) a daemon is
started with ``--debounce-ms 20``; then each model's modular file is saved ``--saves`` times.
A save appends a numbered comment to one single-line ``return`` of a method in the modular
file: semantically neutral, but the converter copies the comment, so an output changes on
every save (checked: a save whose outputs do not change within ``--timeout`` is an error).

Latency is the time from just before the write until an output's bytes differ, found by
polling the outputs every 2 ms. The matching ``run.finished`` event gives the daemon's own
``duration_ms``. The other ``run.finished`` events before the daemon is idle again (a sync
through the control socket) are the dependents the save triggered: their count and cost are
reported apart, since the next save only starts once they are done.

Cold: ``modwatch convert <file>`` in a fresh process after the daemon stopped, median of 3
(it reports "unchanged", but it does the full conversion).

Models: gemma (a hub: its outputs are parents of many others); granite, a single-parent
llama child of typical size (224 lines) with few dependents, so its figure is a plain
llama-derived save; qwen2_5_vl, multimodal with four parents (5.23.0 has no
``modular_qwen2_vl.py``; its modular successor is the nearest multimodal model).

    python -m benchmarks.latency [--saves N] [--model PATH ...] [--json PATH]
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
from daemon.graph import possible_outputs

MODELS = (
    "gemma/modular_gemma.py",
    "granite/modular_granite.py",
    "qwen2_5_vl/modular_qwen2_5_vl.py",
)
_MODELS_DIR = Path("src/transformers/models")
_MARK = "  # modwatch latency save"
_POLL_S = 0.002
_LINE_LENGTH = 100  # the corpus's ruff line length: a longer line could be re-wrapped
_COLD_REPEATS = 3


@dataclass(frozen=True)
class Save:
    """One save of a modular file and what it cost."""

    index: int
    latency_ms: float  # write -> an output's content changed
    run_ms: float  # duration_ms of the file's own run.finished
    output: str  # the first output seen changed
    dependents: int  # other run.finished events before the daemon was idle
    dependents_run_ms: float  # their summed duration_ms
    dependents_wall_ms: float  # write -> the last of them finished
    dependent_errors: int
    other_batch_runs: int  # runs in other batches before idle (not caused by this save)
    reconciles: list[str]  # full reconciles the daemon started meanwhile (``periodic``...)


@dataclass(frozen=True)
class ModelResult:
    """All saves of one model, and the cold conversion of the same file."""

    source: str
    anchor_line: int
    saves: list[Save]
    cold_ms: list[float]

    def summary(self) -> dict[str, float]:
        """p50 / p95 of latency and run time, the cold median and the cold/warm ratio."""
        latency = [s.latency_ms for s in self.saves]
        runs = [s.run_ms for s in self.saves]
        warm = _report.percentile(latency, 50)
        cold = _report.median(self.cold_ms)
        return {
            "latency_p50_ms": warm,
            "latency_p95_ms": _report.percentile(latency, 95),
            "first_save_ms": latency[0],
            "run_p50_ms": _report.percentile(runs, 50),
            "run_p95_ms": _report.percentile(runs, 95),
            "cold_median_ms": cold,
            "cold_over_warm": cold / warm if warm else float("inf"),
            "dependents_per_save": _report.median([s.dependents for s in self.saves]),
            "dependents_wall_p50_ms": _report.median([s.dependents_wall_ms for s in self.saves]),
        }


def anchor_line(text: str) -> int:
    """The 1-based line of the first single-line ``return`` in a method of a class that
    still fits in the line length with the save marker appended.

    Raises:
        ValueError: the file has no such line.
    """
    lines = text.splitlines()
    for cls in (n for n in ast.parse(text).body if isinstance(n, ast.ClassDef)):
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(method):
                if isinstance(node, ast.Return) and node.lineno == node.end_lineno:
                    line = lines[node.lineno - 1]
                    if len(line) + len(_MARK) + 4 <= _LINE_LENGTH:
                        return node.lineno
    raise ValueError("no single-line return in a class method to mark")


def marked(text: str, line: int, index: int) -> str:
    """``text`` with the save marker ``index`` appended to line ``line``."""
    lines = text.split("\n")
    lines[line - 1] += f"{_MARK} {index}"
    return "\n".join(lines)


def wait_changed(before: dict[Path, bytes | None], timeout: float) -> tuple[float, Path]:
    """Poll the outputs every 2 ms; return (perf_counter when one changed, which one).

    Raises:
        TimeoutError: none changed within ``timeout`` seconds.
    """
    deadline = time.perf_counter() + timeout
    while True:
        for path, old in before.items():
            if _read(path) != old:
                return time.perf_counter(), path
        if time.perf_counter() > deadline:
            names = ", ".join(p.name for p in before)
            raise TimeoutError(f"no output changed within {timeout} s ({names})")
        time.sleep(_POLL_S)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def save_once(
    daemon: _daemon.RunningDaemon, source: Path, text: str, index: int, timeout: float
) -> Save:
    """Write ``text``, time the output, wait until the daemon is idle, read its events."""
    rel = source.relative_to(daemon.repo).as_posix()
    outputs = {p: _read(p) for p in sorted(possible_outputs(source))}
    daemon.drain()  # the events before this save are not ours
    wall = time.time()
    started = time.perf_counter()
    source.write_text(text, encoding="utf-8")
    changed_at, output = wait_changed(outputs, timeout)
    daemon.sync(timeout=max(timeout, 3600.0))  # dependents can take minutes
    events = daemon.drain()
    runs = _daemon.runs(events)
    own = [e for e in runs if e.get("source") == rel]
    if len(own) != 1 or own[0].get("outcome") != "ok":
        raise RuntimeError(f"{rel} save {index}: expected one ok run.finished, got {own}")
    # Dependents run in the save's batch; other batches (a periodic reconcile) are not its cost.
    others = [e for e in runs if e is not own[0] and _daemon.batch(e) == _daemon.batch(own[0])]
    last = max((_daemon.event_time(e) for e in others), default=wall)
    return Save(
        index=index,
        latency_ms=(changed_at - started) * 1000,
        run_ms=_duration(own[0]),
        output=output.relative_to(daemon.repo).as_posix(),
        dependents=len(others),
        dependents_run_ms=sum(_duration(e) for e in others),
        dependents_wall_ms=(last - wall) * 1000,
        dependent_errors=sum(1 for e in others if e.get("outcome") == "error"),
        other_batch_runs=len(runs) - len(others) - 1,
        reconciles=_daemon.reconciles(events),
    )


def _duration(event: _daemon.Event) -> float:
    value = event.get("duration_ms")
    return float(value) if isinstance(value, int | float) else 0.0


def measure_model(
    daemon: _daemon.RunningDaemon, source: Path, saves: int, timeout: float
) -> tuple[int, list[Save]]:
    """``saves`` saves of ``source``, each with a new marker; returns (anchor line, saves)."""
    base = source.read_text(encoding="utf-8")
    line = anchor_line(base)
    results = []
    for index in range(1, saves + 1):
        results.append(save_once(daemon, source, marked(base, line, index), index, timeout))
        print(f"  {source.name} save {index}: {results[-1].latency_ms:.0f} ms", flush=True)
    return line, results


def cold_times(root: Path, source: Path) -> list[float]:
    """Milliseconds of ``_COLD_REPEATS`` cold ``modwatch convert`` runs of ``source``."""
    return [_daemon.cold_convert_seconds(root, source) * 1000 for _ in range(_COLD_REPEATS)]


def run(models: Sequence[str], saves: int, timeout: float, workdir: Path) -> list[ModelResult]:
    """The whole benchmark in ``workdir``: checkout, warm saves, then the cold runs."""
    root = corpus.fresh_checkout(workdir / "checkout")
    sources = [root / _MODELS_DIR / m for m in models]
    warm: list[tuple[int, list[Save]]] = []
    with _daemon.running(root, workdir / "daemon.log", debounce_ms=20) as daemon:
        for source in sources:
            warm.append(measure_model(daemon, source, saves, timeout))
    results = []
    for source, (line, model_saves) in zip(sources, warm, strict=True):
        rel = source.relative_to(root).as_posix()
        results.append(ModelResult(rel, line, model_saves, cold_times(root, source)))
    return results


def print_results(results: Sequence[ModelResult], saves: int) -> None:
    """One table: warm percentiles, cold median, ratio, and the dependents of each save."""
    print(f"\n{saves} saves per model; latency = write -> output bytes changed (ms)")
    head = ("model", "p50", "p95", "first", "run p50", "run p95", "cold", "cold/warm")
    print(f"{head[0]:<14}" + "".join(f"{h:>10}" for h in head[1:]))
    for r in results:
        s = r.summary()
        keys = ("latency_p50_ms", "latency_p95_ms", "first_save_ms", "run_p50_ms", "run_p95_ms")
        cells = "".join(f"{s[k]:>10.0f}" for k in (*keys, "cold_median_ms"))
        print(f"{Path(r.source).parent.name:<14}{cells}{s['cold_over_warm']:>9.1f}x")
    print("\ndependents per save (other run.finished before idle):")
    for r in results:
        s = r.summary()
        errors = sum(x.dependent_errors for x in r.saves)
        run_ms = _report.median([x.dependents_run_ms for x in r.saves])
        print(
            f"  {Path(r.source).parent.name:<12} {s['dependents_per_save']:.0f} runs, "
            f"write -> last done p50 {s['dependents_wall_p50_ms'] / 1000:.1f} s, "
            f"summed duration p50 {run_ms / 1000:.1f} s, {errors} error runs in all"
        )
        _print_interference(r)


def _print_interference(result: ModelResult) -> None:
    """Say when the daemon did unrelated work (a periodic reconcile) between two saves."""
    for save in result.saves:
        if save.other_batch_runs or save.reconciles:
            print(
                f"    note: after save {save.index} the daemon also ran {save.other_batch_runs} "
                f"conversions in other batches (reconcile: {', '.join(save.reconciles) or '-'});"
                " the next save waited for them, they are not counted above"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--saves", type=int, default=30, help="saves per model (30)")
    parser.add_argument(
        "--model",
        action="append",
        help=f"a modular file under {_MODELS_DIR}, repeatable (default: {', '.join(MODELS)})",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per save, seconds (60)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    machine = _report.machine()
    print(machine.describe())
    with tempfile.TemporaryDirectory(prefix="modwatch-latency-") as tmp:
        results = run(args.model or MODELS, args.saves, args.timeout, Path(tmp))
    print_results(results, args.saves)
    _report.write_json(
        args.json,
        {
            "machine": asdict(machine),
            "saves": args.saves,
            "models": [{**asdict(r), "summary": r.summary()} for r in results],
        },
    )


if __name__ == "__main__":
    main()
