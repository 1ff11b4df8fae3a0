"""The one-shot commands behind ``modwatch convert`` and ``modwatch check``."""

from __future__ import annotations

import difflib
import os
import shlex
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from daemon import git
from daemon.checkcache import CheckCache
from daemon.config import Config
from daemon.converter import Converted, Failed, Result
from daemon.errors import DaemonError
from daemon.graph import dependents, parent_paths, possible_outputs
from daemon.outputs import read_text
from daemon.parallel import convert_all_in_memory
from daemon.runner import Runner, RunRecord
from daemon.watcher import PathFilter, scan


def find_root(paths: Sequence[Path]) -> Path:
    """The repository the paths belong to: their git worktree, else the nearest pyproject."""
    first = paths[0].resolve() if paths else Path.cwd()
    if not first.exists():
        raise DaemonError(f"{paths[0]}: no such file or directory")
    start = first if first.is_dir() else first.parent
    worktree = git.find_worktree(start)
    if worktree is not None:
        return worktree
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return start


def collect_sources(
    paths: Sequence[Path], root: Path, cfg: Config, *, allow_empty: bool = False
) -> list[Path]:
    """Modular files named directly, plus those found under directories with the globs."""
    path_filter = PathFilter(include=cfg.include, exclude=cfg.exclude, root=root)
    found: dict[Path, None] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved.is_dir():
            found.update(dict.fromkeys(scan(resolved, path_filter)))
        elif resolved.is_file():
            if not resolved.name.startswith("modular_") or resolved.suffix != ".py":
                raise DaemonError(
                    f"{path}: not a modular file (expected a name like modular_<model>.py)"
                )
            found[resolved] = None
        else:
            raise DaemonError(f"{path}: no such file or directory")
    if not found and not allow_empty:
        raise DaemonError(
            f"no modular files under {', '.join(map(str, paths))}",
            hint=f"modwatch looks for {', '.join(cfg.include)} (the `include` setting)",
        )
    return list(found)


def display(path: Path) -> str:
    """A path as the user would type it: relative to the current directory when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def convert_all(root: Path, cfg: Config, sources: list[Path], *, force: bool) -> list[RunRecord]:
    """Convert in dependency order, writing and staging each file's outputs."""
    runner = Runner(root, cfg, force=force)
    runner.learn(sources)
    return [runner.run(source) for source in runner.affected(sources, set(sources))]


@dataclass(frozen=True)
class CheckEntry:
    """One line of a check report."""

    path: Path
    source: Path
    status: str  # "ok" | "stale" | "missing" | "error"
    error: str | None = None
    expected: str = ""
    actual: str | None = None


@dataclass
class CheckReport:
    """Everything ``modwatch check`` found."""

    entries: list[CheckEntry] = field(default_factory=list)
    cached: int = 0  # sources answered from the check cache, without converting

    @property
    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter({"ok": 0, "stale": 0, "missing": 0, "error": 0})
        counts.update(e.status for e in self.entries)
        return counts

    def fix_command(self) -> str:
        sources = sorted({e.source for e in self.entries if e.status in ("stale", "missing")})
        return "modwatch convert " + " ".join(shlex.quote(display(s)) for s in sources)

    def to_json(self, root: Path) -> dict[str, object]:
        return {
            "outputs": [
                {
                    "path": _rel(e.path, root),
                    "source": _rel(e.source, root),
                    "status": e.status,
                    "error": e.error,
                }
                for e in self.entries
            ],
            "counts": dict(self.counts),
            "cached": self.cached,
        }

    def render(self, root: Path, *, diff: bool) -> str:
        lines = []
        for entry in self.entries:
            if entry.status == "ok":
                continue
            if entry.status == "error":
                lines.append(f"error    {entry.error}")
                continue
            lines.append(f"{entry.status:<8} {display(entry.path)}  (from {display(entry.source)})")
            if diff:
                lines.extend(_diff(entry))
        counts = self.counts
        lines.append(
            f"{counts['ok']} up to date, {counts['stale']} stale, {counts['missing']} missing, "
            f"{counts['error']} failed"
        )
        if counts["stale"] or counts["missing"]:
            lines.append(f"fix with: {self.fix_command()}")
        return "\n".join(lines) + "\n"


def _diff(entry: CheckEntry) -> list[str]:
    before = (entry.actual or "").splitlines(keepends=True)
    after = entry.expected.splitlines(keepends=True)
    name = display(entry.path)
    return [
        line.rstrip("\n") for line in difflib.unified_diff(before, after, f"a/{name}", f"b/{name}")
    ]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check(
    root: Path,
    cfg: Config,
    sources: list[Path],
    *,
    jobs: int = 1,
    on_done: Callable[[Path, Result], None] | None = None,
    use_cache: bool = True,
) -> CheckReport:
    """Convert in memory (children see their freshly converted parents) and compare.

    With ``use_cache``, sources whose inputs and outputs are as a previous check verified them
    are not converted again (``daemon.checkcache``); without it every source is converted. In
    a git repository both record what they verified, for the next check.
    """
    report = CheckReport()
    in_git = git.find_worktree(root) is not None
    cache_path = git.git_dir(root) / "modwatch" / "check-cache.json" if in_git else None
    cache = CheckCache.load(cache_path, root, format=cfg.format, read=use_cache)
    results = convert_all_in_memory(
        sources, root, format=cfg.format, jobs=jobs, on_done=on_done, cache=cache
    )
    cache.save()
    report.cached = cache.hits
    for source, result in results.items():
        if isinstance(result, Failed):
            report.entries.append(CheckEntry(source, source, "error", result.describe()))
        elif not isinstance(result, Converted):
            report.entries.append(CheckEntry(source, source, "error", f"{source}: {result.reason}"))
        else:
            for output in result.outputs:
                actual = read_text(output.path)
                status = "missing" if actual is None else "ok" if actual == output.text else "stale"
                report.entries.append(
                    CheckEntry(output.path, source, status, None, output.text, actual)
                )
    return report


def render_status(reply: dict[str, object]) -> str:
    """``modwatch status`` for a person: one fact per line."""
    git_state = reply.get("git") if isinstance(reply.get("git"), dict) else {}
    assert isinstance(git_state, dict)
    sources = reply.get("sources") or []
    runs = reply.get("last_runs") or []
    flagged = reply.get("flagged") or {}
    assert isinstance(sources, list) and isinstance(runs, list) and isinstance(flagged, dict)
    lines = [
        f"daemon:   pid {reply.get('pid')} watching {reply.get('root')}",
        f"sources:  {len(sources)} modular files",
        f"queue:    {reply.get('queue')} pending, {'busy' if reply.get('busy') else 'idle'}",
        f"git:      mode {git_state.get('mode')}, operation {git_state.get('operation') or 'none'}"
        f", index {'locked' if git_state.get('index_locked') else 'free'}",
        f"flagged:  {len(flagged)}",
    ]
    lines.extend(f"  {path}: {reason}" for path, reason in sorted(flagged.items()))
    lines.append(f"last runs: {len(runs)}")
    for run in runs[-10:]:
        if isinstance(run, dict):
            lines.append(
                f"  {run.get('source')}: {run.get('outcome')} in {run.get('duration_ms')} ms"
                f" (git {run.get('git')})"
            )
    return "\n".join(lines) + "\n"


def render_deps(path: Path, root: Path, cfg: Config) -> str:
    """``modwatch deps PATH``: the parents a file reads and every source it feeds."""
    if not path.is_file():
        raise DaemonError(f"{display(path)}: no such file")
    sources = scan(root, PathFilter(root=root, include=cfg.include, exclude=cfg.exclude))
    graph = {s: parent_paths(s, read_text(s) or "", root) for s in sources}
    lines = [f"{display(path)}"]
    if path in graph:
        lines.append("  depends on:")
        lines.extend(
            f"    {display(p)}" + ("" if p.exists() else "  (missing)") for p in graph[path]
        )
        changed = set(possible_outputs(path))
    else:
        changed = {path}
    fed = dependents(graph, changed)
    fed.discard(path)
    ordered = [p for p in _in_order(fed) if p in fed]
    lines.append(f"  feeds ({len(ordered)}, in conversion order):")
    lines.extend(f"    {display(p)}" for p in ordered)
    return "\n".join(lines) + "\n"


def _in_order(paths: set[Path]) -> list[Path]:
    from daemon.converter.order import dependency_levels

    texts = {p: read_text(p) or "" for p in paths}
    try:
        return [p for level in dependency_levels(texts) for p in level]
    except DaemonError:
        return sorted(paths)


NULL_COMMIT = "0" * 40


def sync_checkout(root: Path, cfg: Config, before: str, after: str) -> list[RunRecord]:
    """``modwatch sync``: after HEAD moved from ``before`` to ``after``, reconcile.

    Sources changed between the commits, and their dependents, are checked: with
    ``hook.on_checkout = "flag"`` (the default) a source exactly as committed is only checked
    and stale outputs are flagged, never rewritten (rule 12); edited ones convert as usual.
    """
    if before.strip("0") == "" or before == after:
        return []  # a clone, `worktree add` or `checkout -b`: nothing to compare
    changed = git.changed_files(root, before, after)
    sources = scan(root, PathFilter(root=root, include=cfg.include, exclude=cfg.exclude))
    runner = Runner(root, cfg)
    runner.learn(sources)
    records = []
    for source in runner.affected(changed, set(sources)):
        if cfg.hook_on_checkout == "flag" and runner.matches_head(source):
            records.append(runner.check_only(source))
        else:
            records.append(runner.run(source))
    return records


def changed_since(root: Path, cfg: Config, ref: str) -> list[Path]:
    """Modular files changed since ``ref`` (committed or not), plus everything they feed."""
    changed = set(git.changed_files(root, ref, "HEAD")) | set(git.uncommitted_files(root))
    sources = scan(root, PathFilter(root=root, include=cfg.include, exclude=cfg.exclude))
    graph = {s: parent_paths(s, read_text(s) or "", root) for s in sources}
    direct = {s for s in sources if s in changed}
    fed = dependents(graph, changed | {o for s in direct for o in possible_outputs(s)})
    return sorted(direct | fed)


class Progress:
    """``[ 12/326] models/x/modular_x.py`` on one line of a terminal; silent elsewhere."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = stream.isatty() and total > 1

    def __call__(self, source: Path, _result: object) -> None:
        self.done += 1
        if self.enabled:
            width = len(str(self.total))
            line = f"[{self.done:>{width}}/{self.total}] {display(source)}"
            self.stream.write("\r\x1b[K" + line[:120])
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
