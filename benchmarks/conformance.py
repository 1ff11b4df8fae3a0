"""Convert the whole transformers 5.23.0 corpus and compare with the shipped generated files.

Full mode (default) deletes the expected outputs first, so a missing output can never count as
identical, then converts level by level (R-PAR-8) and writes each level's outputs before the next
starts, so children read regenerated parents as upstream does. ``--isolated`` is the spec's
validation method ("How to check conformance"): every file against the pristine shipped parents.

    python -m benchmarks.conformance [-j N] [--isolated] [--model NAME] [--limit N] [--json PATH]
"""

from __future__ import annotations

import argparse
import difflib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as ``python benchmarks/conformance.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import corpus

STATUSES = ("identical", "differing", "missing", "extra", "error")
_BANNER_LINES = 6


@dataclass(frozen=True)
class Attempt:
    """What converting one modular file gave: its outputs (path -> text), or why there are none."""

    source: Path
    outputs: Mapping[Path, str] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None


@dataclass
class Report:
    """The figures of one run; paths are relative to the checkout root."""

    mode: str
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    modular_files: int = 0
    levels: int = 0
    wall_seconds: float = 0.0
    diffs: list[str] = field(default_factory=list)

    @property
    def totals(self) -> Counter[str]:
        """Status counts summed over all output kinds."""
        total = _zeros()
        for counts in self.kinds.values():
            total.update(counts)
        return total

    def to_json(self) -> dict[str, object]:
        """The figures as plain JSON data (diffs left out; categories list every path)."""
        return {**vars(self), "totals": self.totals, "diffs": len(self.diffs)}


def _zeros() -> Counter[str]:
    return Counter(dict.fromkeys(STATUSES, 0))  # so every status shows up, even when 0


def convert_one(source: Path, root: Path) -> Attempt:
    """Convert ``source``; any exception is caught and returned, so one file never aborts a run."""
    try:
        from daemon.converter import Converted, Failed, Skipped, convert

        result = convert(source, root=root)
        if isinstance(result, Converted):
            return Attempt(source, {root / o.path: o.text for o in result.outputs})
        if isinstance(result, Failed):
            return Attempt(source, error=result.describe())
        if isinstance(result, Skipped):
            return Attempt(source, skipped=result.reason)
        return Attempt(source, error=f"convert() returned {type(result).__name__}")
    except Exception as exc:  # a crashing converter is a figure to report, not a harness crash
        return Attempt(source, error=f"{type(exc).__name__}: {exc}")


def conversion_levels(sources: Mapping[Path, str]) -> list[list[Path]]:
    """The modular files in conversion order (R-PAR-8), every one of them exactly once."""
    try:
        # Not written yet when this harness was; the ignore goes stale (harmlessly) once it is.
        from daemon.converter.order import (  # type: ignore[import-not-found,unused-ignore]
            dependency_levels,
        )

        levels = [sorted(p for p in level if p in sources) for level in dependency_levels(sources)]
    except Exception as exc:  # order.py is written in parallel; until it works, run unordered
        print(f"note: dependency_levels unavailable ({type(exc).__name__}: {exc});", end=" ")
        print("falling back to one level in sorted order: children may read deleted parents")
        return [sorted(sources)]
    placed = {p for level in levels for p in level}
    if rest := sorted(set(sources) - placed):
        # Files with no model import are outside the graph (R-PAR-8 edges); they need nothing.
        print(f"note: {len(rest)} modular files missing from dependency_levels, run first")
        levels.insert(0, rest)
    return [level for level in levels if level]


def run_conformance(
    *, isolated: bool = False, model: str | None = None, jobs: int = 2, limit: int | None = None
) -> Report:
    """Make a fresh checkout, convert, compare; see the module docstring for the modes."""
    start = time.perf_counter()
    isolated = isolated or model is not None  # one model is checked against pristine parents
    report = Report(mode="model" if model else "isolated" if isolated else "full")
    with tempfile.TemporaryDirectory(prefix="modwatch-conformance-") as tmp:
        root = corpus.fresh_checkout(Path(tmp) / "checkout")
        owners = corpus.generated_files(root)
        sources = {p: p.read_text(encoding="utf-8") for p in corpus.modular_files(root)}
        levels = [[_select(sources, model)]] if model else conversion_levels(sources)
        levels = _truncate(levels, limit) if limit is not None else levels
        selected = {p for level in levels for p in level}
        expected = {out: out.read_bytes() for out, src in owners.items() if src in selected}
        if isolated:  # nothing is written, so every file sees the shipped parents
            levels = [[p for level in levels for p in level]]
        else:
            for out in expected:
                out.unlink()
        report.modular_files, report.levels = len(selected), len(levels)
        attempts = _run_levels(levels, root, jobs, write=not isolated)
        _compare(report, root, expected, owners, attempts, with_diffs=model is not None)
        if isolated and (touched := corpus.changed_paths(root)):
            # convert() must not write into the tree it reads; if it does, isolation is void.
            print(f"warning: the converter changed {len(touched)} files, e.g. {touched[0]}")
    report.wall_seconds = time.perf_counter() - start
    return report


def _select(sources: Mapping[Path, str], model: str) -> Path:
    """The modular file named ``modular_<model>.py`` (or given by path)."""
    for path in sorted(sources):
        if path.name == f"modular_{model}.py" or str(path).endswith(f"/{model}"):
            return path
    raise ValueError(f"no modular file modular_{model}.py in the corpus")


def _truncate(levels: list[list[Path]], limit: int) -> list[list[Path]]:
    """The first ``limit`` files in conversion order; their parents are always among them."""
    kept: list[list[Path]] = []
    for level in levels:
        if limit <= 0:
            break
        kept.append(level[:limit])
        limit -= len(level)
    return kept


def _run_levels(
    levels: Sequence[Sequence[Path]], root: Path, jobs: int, *, write: bool
) -> dict[Path, Attempt]:
    attempts: dict[Path, Attempt] = {}
    start = time.perf_counter()
    for number, level in enumerate(levels, 1):
        for attempt in _run_level(level, root, jobs):
            attempts[attempt.source] = attempt
        elapsed = time.perf_counter() - start  # progress: a full run takes minutes
        print(f"level {number}/{len(levels)}: {len(level)} files, {elapsed:.0f}s", file=sys.stderr)
        if write:  # all of this level on disk before the next level reads it as parents
            for path in level:
                _write_outputs(attempts[path], root)
    return attempts


def _run_level(level: Sequence[Path], root: Path, jobs: int) -> list[Attempt]:
    if jobs <= 1:
        return [convert_one(path, root) for path in level]
    done = _in_pool(level, root, jobs)
    # A worker that dies (segfault, OOM) breaks the pool and fails every pending file with it;
    # rerun those one per pool, so only the file that kills its own worker counts as crashed.
    for path in [p for p in level if p not in done]:
        done.update(_in_pool([path], root, 1))
    return [done.get(p) or Attempt(p, error="worker process died") for p in level]


def _in_pool(paths: Sequence[Path], root: Path, jobs: int) -> dict[Path, Attempt]:
    """Convert ``paths`` in a fresh pool; files whose worker died are left out."""
    done: dict[Path, Attempt] = {}
    # spawn, not fork: workers inherit no threads or locks from the caller (pytest, say).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(paths)), mp_context=context) as pool:
        futures = {path: pool.submit(convert_one, path, root) for path in paths}
        for path, future in futures.items():
            try:
                done[path] = future.result()
            except BrokenProcessPool:
                continue
            except Exception as exc:  # e.g. a result that does not pickle
                done[path] = Attempt(path, error=f"worker: {type(exc).__name__}: {exc}")
    return done


def _write_outputs(attempt: Attempt, root: Path) -> None:
    """Write each output atomically (temp file, then ``os.replace``), never outside ``root``."""
    for path, text in attempt.outputs.items():
        if not path.resolve().is_relative_to(root.resolve()):
            continue  # reported as "extra" by _compare; must not escape the scratch checkout
        temp = path.with_name(f".{path.name}.conformance-tmp")
        temp.write_bytes(text.encode("utf-8"))
        os.replace(temp, path)


def _compare(
    report: Report,
    root: Path,
    expected: Mapping[Path, bytes],
    owners: Mapping[Path, Path],
    attempts: Mapping[Path, Attempt],
    *,
    with_diffs: bool,
) -> None:
    report.kinds = {kind: _zeros() for kind in corpus.OUTPUT_KINDS}
    for attempt in attempts.values():
        if attempt.error is not None:
            report.errors[_rel(attempt.source, root)] = attempt.error
        if attempt.skipped is not None:
            report.skipped[_rel(attempt.source, root)] = attempt.skipped
        for out in attempt.outputs:
            if owners.get(out) != attempt.source:
                report.kinds.setdefault(_kind(out), _zeros())["extra"] += 1
                report.diffs += [f"extra output: {_rel(out, root)}\n"] if with_diffs else []
    for out, want in sorted(expected.items()):
        attempt = attempts[owners[out]]
        counts = report.kinds[corpus.output_kind(out)]
        if out not in attempt.outputs:
            counts["error" if attempt.error is not None else "missing"] += 1
            report.diffs += [f"not produced: {_rel(out, root)}\n"] if with_diffs else []
            continue
        got = attempt.outputs[out]
        if got.encode("utf-8") == want:
            counts["identical"] += 1
            continue
        counts["differing"] += 1
        wanted = want.decode("utf-8")
        report.categories.setdefault(classify(wanted, got), []).append(_rel(out, root))
        if with_diffs:
            name = _rel(out, root)
            lines = wanted.splitlines(True), got.splitlines(True)
            report.diffs.extend(difflib.unified_diff(*lines, f"expected/{name}", f"actual/{name}"))


def classify(expected: str, actual: str) -> str:
    """Guess why two outputs differ from their first differing line (a rough heuristic)."""
    exp, act = expected.splitlines(), actual.splitlines()
    same = (n for n, (e, a) in enumerate(zip(exp, act, strict=False)) if e != a)
    i = next(same, min(len(exp), len(act)))
    if i < _BANNER_LINES:
        return "banner/header"
    if i >= len(exp) and i >= len(act):
        return "formatting"  # equal lines: line endings or the final newline differ
    if i >= len(act) or i >= len(exp):
        return "missing_dependency" if i >= len(act) else "extra_node"
    e, a = exp[i], act[i]
    if e.split() == a.split() or not e.strip() or not a.strip():
        return "formatting"
    if _in_imports(exp, i) or _in_imports(act, i):
        return "imports"
    if e.lstrip().startswith("#") or a.lstrip().startswith("#"):
        return "comment"
    if '"""' in e or '"""' in a or "\n".join(exp[:i]).count('"""') % 2:
        return "docstring"
    moved = _moved(exp, act, i)
    if moved and not e[:1].isspace():  # top-level lines are distinctive: trust a match later on
        return moved
    return "renaming" if _renamed(e, a) else moved or "other"


def _moved(exp: Sequence[str], act: Sequence[str], i: int) -> str | None:
    """Whether line ``i`` of either file shows up further down in the other."""
    later_e, later_a = exp[i] in act[i + 1 :], act[i] in exp[i + 1 :]
    if later_e and later_a:
        return "ordering"
    if later_e or later_a:
        # Expected line further down in ours: we inserted something; the reverse: we left it out.
        return "extra_node" if later_e else "missing_dependency"
    return None


def _in_imports(lines: Sequence[str], i: int) -> bool:
    """Line ``i`` is, or continues, an import statement."""
    j = i
    while j > 0 and (lines[j][:1].isspace() or lines[j].startswith(")") or not lines[j]):
        if lines[j].lstrip().startswith(("import ", "from ")):
            return True  # an indented (guarded) import
        j -= 1
    return lines[j].startswith(("import ", "from "))


def _renamed(e: str, a: str) -> bool:
    """Same shape, only some identifiers differ."""
    words_e, words_a = re.findall(r"\w+", e), re.findall(r"\w+", a)
    shape = re.sub(r"\w+", "_", e) == re.sub(r"\w+", "_", a) and len(words_e) == len(words_a)
    changed = [(x, y) for x, y in zip(words_e, words_a, strict=True) if x != y] if shape else []
    return bool(changed) and all(not x.isdigit() and not y.isdigit() for x, y in changed)


def _kind(path: Path) -> str:
    try:
        return corpus.output_kind(path)
    except ValueError:
        return "unknown"


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def print_report(report: Report) -> None:
    """Print the per-kind table, totals, difference categories and the commonest errors."""
    print(f"{'kind':<22}" + "".join(f"{s:>11}" for s in STATUSES))
    by_size = sorted(report.kinds.items(), key=lambda kv: -sum(kv[1].values()))
    for kind, counts in [*by_size, ("total", report.totals)]:
        print(f"{kind:<22}" + "".join(f"{counts[s]:>11}" for s in STATUSES))
    failed, skipped = len(report.errors), len(report.skipped)
    print(f"\n{report.mode} mode: {report.modular_files} modular files in {report.levels} levels,")
    print(f"{failed} failed, {skipped} skipped; wall time {report.wall_seconds:.1f}s")
    if report.categories:
        print(f"\n{'first differing line':<22}{'count':>7}  examples")
        for cat, paths in sorted(report.categories.items(), key=lambda kv: -len(kv[1])):
            print(f"{cat:<22}{len(paths):>7}  {', '.join(paths[:3])}")
    if report.errors:
        print("\ncommonest errors:")
        common = Counter(msg.split(": ", 1)[-1].splitlines()[0] for msg in report.errors.values())
        for message, count in common.most_common(5):
            print(f"{count:>5}  {message[:150]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 when every compared output is identical."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conformance", description=__doc__)
    parser.add_argument("--model", help="only modular_<MODEL>.py, with diffs")
    parser.add_argument("--isolated", action="store_true", help="against pristine parents")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--limit", type=int, help="only the first N files in conversion order")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    try:
        report = run_conformance(
            isolated=args.isolated, model=args.model, jobs=args.jobs, limit=args.limit
        )
    except ValueError as exc:
        parser.error(str(exc))
    if report.diffs:
        sys.stdout.writelines(report.diffs)
        print()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    totals = report.totals
    return 0 if totals["identical"] == sum(totals.values()) else 1


if __name__ == "__main__":
    # Import ``main`` from the package module, not ``__main__``, so spawned workers unpickle
    # ``benchmarks.conformance.convert_one`` instead of re-running this script.
    from benchmarks.conformance import main as package_main

    raise SystemExit(package_main())
