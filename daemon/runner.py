"""One conversion run per modular file: convert, write safely, stage or flag, log one event.

Shared by ``modwatch convert`` and the watch loop, so both behave the same way.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from daemon import git
from daemon.config import Config
from daemon.converter import Converted, Failed, Output, Result, Skipped, convert, imported_modules
from daemon.converter.order import dependency_levels
from daemon.errors import DaemonError
from daemon.flags import Flags
from daemon.graph import (
    dependents,
    parent_paths,
    paths_of_imports,
    possible_outputs,
    topological,
)
from daemon.log import get_logger
from daemon.outputs import Decision, Ledger, atomic_write, decide, digest, read_text

log = get_logger()

STALE_AFTER_CHECKOUT = "stale_after_checkout"


@dataclass(frozen=True)
class OutputRecord:
    """What happened to one output of a run."""

    path: Path
    status: str  # "written" | "unchanged" | "hand_edited" | "stale" (check only)


@dataclass(frozen=True)
class RunRecord:
    """The outcome of converting one modular file: the fields of its ``run.finished`` event."""

    source: Path
    outputs: tuple[OutputRecord, ...] = ()
    duration_ms: float = 0.0
    outcome: str = "ok"  # "ok" | "error" | "flagged"
    git: str = "none"  # "staged" | "flagged" | "none"
    error: str | None = None
    line: int | None = None
    reason: str | None = None

    def fields(self, root: Path) -> dict[str, object]:
        """The event's fields, paths relative to the repository root."""
        data: dict[str, object] = {
            "source": _rel(self.source, root),
            "outputs": [{"path": _rel(o.path, root), "status": o.status} for o in self.outputs],
            "duration_ms": round(self.duration_ms, 1),
            "outcome": self.outcome,
            "git": self.git,
        }
        if self.error is not None:
            data["error"] = self.error
            data["line"] = self.line
        if self.reason is not None:
            data["reason"] = self.reason
        return data


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@dataclass
class Runner:
    """Converts modular files of one repository and keeps what it learnt between runs."""

    root: Path
    config: Config
    force: bool = False
    ledger: Ledger = field(init=False)
    parents: dict[Path, tuple[Path, ...]] = field(default_factory=dict, init=False)
    deferred: set[Path] = field(default_factory=set, init=False)
    flags: Flags = field(init=False)
    in_git: bool = field(init=False)
    index_lock: Path | None = field(init=False)
    markers: dict[str, Path] | None = field(init=False)
    head: git.HeadWatch | None = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.reopen()

    def reopen(self) -> None:
        """(Re)locate the git directory and load its ledger: after a start or a replaced root."""
        self.in_git = git.find_worktree(self.root) is not None
        ledger_path = git.git_dir(self.root) / "modwatch" / "ledger.json" if self.in_git else None
        self.ledger = Ledger.load(ledger_path)
        self.flags = Flags.load(ledger_path.with_name("flags.json") if ledger_path else None)
        # Resolved once: a stat per batch instead of a git process (linked worktrees differ).
        self.index_lock = git.git_path(self.root, "index.lock") if self.in_git else None
        self.markers = git.operation_markers(self.root) if self.in_git else None
        self.head = git.HeadWatch(self.root) if self.in_git else None

    def head_commit(self) -> str | None:
        """HEAD's commit (None outside git or without commits), by stat when it can."""
        return self.head.commit() if self.head is not None else None

    def operation(self) -> str | None:
        """The git operation in progress (rule 12), by stat of the resolved markers."""
        return git.operation_from(self.markers) if self.markers is not None else None

    # -- the dependency graph -------------------------------------------------------------

    def learn(self, sources: Iterable[Path], *, converting_here: bool = False) -> None:
        """Record the parents of each source from its imports (start-up and new files).

        ``converting_here``: the sources are converted in this process next (a save or two in
        the daemon), so their imports are read from the converter's own parse, which that
        conversion then reuses (an ``ast`` parse of the saved file was 4 ms of a warm save).
        """
        for source in sources:
            text = read_text(source)
            if text is None:
                continue
            if converting_here:
                imports = imported_modules(source, text) or ()
                self.parents[source] = paths_of_imports(source, imports, self.root)
            else:
                self.parents[source] = parent_paths(source, text, self.root)

    def affected(
        self, changed: Iterable[Path], is_source: set[Path], *, skip_unchanged: bool = False
    ) -> list[Path]:
        """The sources to convert for a set of changed paths, in dependency order.

        With ``skip_unchanged`` a source whose content is what was last converted is left
        alone (a ``touch`` or ``chmod`` is not an edit), unless one of its parents changed.
        """
        changed = {p.resolve(strict=False) for p in changed}
        # An empty source is a save caught between truncate and write (scenario 4): its
        # next event brings the content.
        direct = {p for p in changed if p in is_source and _has_content(p)}
        if skip_unchanged:
            direct = {p for p in direct if not self.unchanged_since_last_run(p)}
        foreign = {p for p in changed if p not in is_source and not self._seen_as_is(p)}
        todo = direct | dependents(self.parents, foreign | todo_outputs(direct))
        todo = {p for p in todo if p.exists()}
        texts = {p: read_text(p) or "" for p in todo}
        try:
            return [p for level in dependency_levels(texts) for p in level]
        except DaemonError:
            return sorted(todo)  # a cycle: convert anyway, each file reports its own errors

    def plan(self, changed: Iterable[Path], is_source: set[Path]) -> tuple[list[Path], set[Path]]:
        """Split a batch: the sources edited (content changed since their last run, in
        dependency order) and the other files that really changed (parents)."""
        changed = {p.resolve(strict=False) for p in changed}
        direct = {
            p
            for p in changed
            if p in is_source and _has_content(p) and not self.unchanged_since_last_run(p)
        }
        foreign = {p for p in changed if p not in is_source and not self._seen_as_is(p)}
        return topological(direct, self.parents), foreign

    def _seen_as_is(self, path: Path) -> bool:
        """An event on a file whose content is what we wrote (rule 7: our own echo) or what
        we last converted against (a touched parent) changes nothing."""
        text = read_text(path)
        if text is None:
            return False
        key = _rel(path, self.root)
        known = {self.ledger.outputs.get(key), self.ledger.parents.get(key)}
        return digest(text) in known

    def stale_since_last_run(self, source: Path) -> bool:
        """Start-up reconcile: did the source, a parent or an output change while no daemon
        ran? Sources the ledger never saw are not judged (see ``Daemon.reconcile``)."""
        if _rel(source, self.root) not in self.ledger.sources:
            return False
        if not self.unchanged_since_last_run(source):
            return True
        for parent in self.parents.get(source, ()):
            recorded = self.ledger.parents.get(_rel(parent, self.root))
            text = read_text(parent)
            if recorded is not None and (text is None or digest(text) != recorded):
                return True
        for output in possible_outputs(source):
            recorded = self.ledger.outputs.get(_rel(output, self.root))
            text = read_text(output)
            if recorded is not None and (text is None or digest(text) != recorded):
                return True  # deleted, or edited: the run decides (hand edits are flagged)
        return False

    def unchanged_since_last_run(self, source: Path) -> bool:
        text = read_text(source)
        return text is not None and self.ledger.sources.get(_rel(source, self.root)) == digest(text)

    # -- one run ----------------------------------------------------------------------------

    def run(
        self,
        source: Path,
        *,
        stage: bool = True,
        result: Result | None = None,
        elapsed: float = 0.0,
    ) -> RunRecord:
        """Convert ``source``, write its outputs, stage or flag them; log ``run.finished``.

        ``result``: the conversion, already done by a worker process in ``elapsed`` seconds,
        which the event's ``duration_ms`` includes; only applied here.
        """
        started = time.perf_counter() - elapsed
        record = self._run(source, stage=stage, result=result)
        record = _with_duration(record, started)
        self._track_flags(record)
        self._log(record)
        return record

    def _track_flags(self, record: RunRecord) -> None:
        """Flagged outputs stay listed (``modwatch status``) until a later run settles them."""
        before = dict(self.flags.entries)
        source = _rel(record.source, self.root)
        for output in record.outputs:
            key = _rel(output.path, self.root)
            if record.git == "flagged" or output.status == Decision.HAND_EDITED.value:
                self.flags.flag(key, source, record.reason or "flagged")
            elif record.git == "staged" or output.status == Decision.UNCHANGED.value:
                self.flags.clear(key)
        if self.flags.entries != before:
            self.flags.save()

    def settle_flags(self) -> None:
        """Drop flags of outputs since committed in sync with their source: both clean
        against HEAD, and the committed output is what modwatch generated."""
        if not self.in_git:
            return
        settled = []
        for key, entry in self.flags.entries.items():
            output, source = self.root / key, self.root / entry["source"]
            committed = git.head_text(self.root, output)
            if (
                committed is not None
                and committed == read_text(output)
                and git.head_text(self.root, source) == read_text(source)
                and self.ledger.outputs.get(key) == digest(committed)
            ):
                settled.append(key)
        for key in settled:
            self.flags.clear(key)
        if settled:
            self.flags.save()

    def matches_head(self, source: Path) -> bool:
        """The source is exactly as committed: a checkout brought it, not an edit."""
        return self.in_git and git.head_text(self.root, source) == read_text(source)

    def check_only(self, source: Path) -> RunRecord:
        """After HEAD moved: convert in memory, flag stale outputs, write nothing (rule 12)."""
        started = time.perf_counter()
        result = convert(source, root=self.root, format=self.config.format)
        if not isinstance(result, Converted):
            record = self._run_failed(source, result)
        else:
            outputs = []
            for output in result.outputs:
                on_disk = read_text(output.path)
                in_sync = on_disk == output.text
                outputs.append(OutputRecord(output.path, "unchanged" if in_sync else "stale"))
                if in_sync:
                    self.ledger.outputs[_rel(output.path, self.root)] = digest(output.text)
            self.parents[source] = result.parents or self.parents.get(source, ())
            self._remember_source(source, result.parents)
            self.ledger.save()
            stale = [o for o in outputs if o.status == "stale"]
            for o in stale:
                log.info(
                    "output.flagged", path=_rel(o.path, self.root), reason=STALE_AFTER_CHECKOUT
                )
            record = RunRecord(
                source,
                tuple(outputs),
                outcome="flagged" if stale else "ok",
                git="flagged" if stale else "none",
                reason=STALE_AFTER_CHECKOUT if stale else None,
            )
        record = _with_duration(record, started)
        self._track_flags(record)
        self._log(record)
        return record

    def _run(self, source: Path, *, stage: bool, result: Result | None = None) -> RunRecord:
        operation = self.operation()
        if operation is not None:
            # Rule 12: during a merge, rebase, bisect... check and flag, never rewrite.
            self.deferred.add(source)
            return RunRecord(
                source,
                outcome="flagged",
                git="flagged",
                reason=f"operation_in_progress:{operation}",
            )
        if result is None:
            result = convert(source, root=self.root, format=self.config.format)
        if not isinstance(result, Converted):
            return self._run_failed(source, result)
        return self._apply(source, result, stage=stage)

    def _run_failed(self, source: Path, result: Failed | Skipped) -> RunRecord:
        if isinstance(result, Skipped):
            return RunRecord(source, outcome="error", error=result.reason)
        reason = "parse_error" if result.message.startswith("syntax error") else None
        return RunRecord(
            source, outcome="error", error=result.message, line=result.line, reason=reason
        )

    def _apply(self, source: Path, result: Converted, *, stage: bool) -> RunRecord:
        self.parents[source] = result.parents or self.parents.get(source, ())
        records = []
        for output in result.outputs:
            try:
                records.append(OutputRecord(output.path, self._write(output).value))
            except DaemonError as exc:
                return RunRecord(source, tuple(records), outcome="error", error=str(exc))
        self._remember_source(source, result.parents)
        self.ledger.save()
        written = [r.path for r in records if r.status == Decision.WRITE.value]
        hand_edited = [r.path for r in records if r.status == Decision.HAND_EDITED.value]
        if hand_edited:
            for path in hand_edited:
                log.warning("output.hand_edited", path=_rel(path, self.root))
            return RunRecord(
                source, tuple(records), outcome="flagged", git="flagged", reason="hand_edited"
            )
        git_state, reason = self._publish(source, written) if stage else ("none", None)
        outcome = "flagged" if git_state == "flagged" else "ok"
        return RunRecord(source, tuple(records), outcome=outcome, git=git_state, reason=reason)

    def _write(self, output: Output) -> Decision:
        key = _rel(output.path, self.root)
        on_disk = read_text(output.path)

        def committed() -> str | None:
            return git.head_text(self.root, output.path) if self.in_git else None

        decision = decide(
            on_disk, output.text, last_written=self.ledger.outputs.get(key), committed=committed
        )
        if decision is Decision.HAND_EDITED and self.force and on_disk is not None:
            self._keep_hand_edit(output.path, on_disk)
            decision = Decision.WRITE
        if decision is Decision.WRITE:
            atomic_write(output.path, output.text)
        if decision is not Decision.HAND_EDITED:
            self.ledger.outputs[key] = digest(output.text)
        return decision

    def _keep_hand_edit(self, path: Path, text: str) -> None:
        """``--force`` overwrites a hand edit, but keeps a copy so nothing is lost."""
        base = git.git_dir(self.root) / "modwatch" / "hand-edits" if self.in_git else None
        if base is None:
            base = path.parent
            keep = base / f"{path.name}.hand-edit-{int(time.time())}"
        else:
            keep = base / f"{_rel(path, self.root)}.{int(time.time())}"
        keep.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(keep, text, check_python=False)
        log.warning("output.hand_edit_kept", path=_rel(path, self.root), copy=str(keep))

    def _remember_source(self, source: Path, parents: Iterable[Path]) -> None:
        text = read_text(source)
        if text is not None:
            self.ledger.sources[_rel(source, self.root)] = digest(text)
        for parent in parents:
            parent_text = read_text(parent)
            if parent_text is not None:
                self.ledger.parents[_rel(parent, self.root)] = digest(parent_text)

    def _publish(self, source: Path, written: list[Path]) -> tuple[str, str | None]:
        """Stage or flag what this run wrote, per ``git.mode``."""
        if not written or not self.in_git or self.config.git_mode == "off":
            return "none", None
        if self.config.git_mode == "flag":
            for path in written:
                log.info("output.flagged", path=_rel(path, self.root), reason="git.mode=flag")
            return "flagged", "git.mode=flag"
        result = git.stage(self.root, written, source=source)
        for path in result.flagged:
            log.info("output.flagged", path=_rel(path, self.root), reason=result.reason)
        return ("flagged", result.reason) if result.flagged else ("staged", None)

    def _log(self, record: RunRecord) -> None:
        fields = record.fields(self.root)
        if record.outcome == "error":
            log.error("run.finished", **fields)
        else:
            log.info("run.finished", **fields)


def _has_content(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def todo_outputs(sources: Iterable[Path]) -> set[Path]:
    """Files a changed source will rewrite: its dependents must follow (rule 7)."""
    return {o for s in sources for o in possible_outputs(s)}


def _with_duration(record: RunRecord, started: float) -> RunRecord:
    return replace(record, duration_ms=(time.perf_counter() - started) * 1000)


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a directory tree without caches (used for the bundled example)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
