"""What ``modwatch check`` verified last time, so a re-check only converts what changed.

A conversion is a function of its inputs: the modular file, the parent files it reads (fresh
outputs of this check when their source was converted in it, else the files on disk), the
casing table of the checkout, ruff's binary and configuration for the output directory, the
``format`` setting and the converter's own code. The cache keeps, per source, a digest of those
inputs and the digest of each output the conversion produced. When the inputs digest again to
the same value and every output on disk has the recorded digest, the conversion would give
exactly the files on disk: the check reports them ok without converting. Anything else (an
edited parent, a hand-edited or missing output, another ruff setting, another modwatch) is a
miss and converts, as without a cache. Failed conversions are never recorded.

The cache lives in ``.git/modwatch/check-cache.json``; it is only ever an optimisation, so an
unreadable one starts empty, and ``modwatch check --no-cache`` converts everything (and records
it afresh).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import daemon
from daemon.converter import Converted, Output
from daemon.converter.naming import casing_files
from daemon.converter.render import format_context
from daemon.outputs import atomic_write, digest, read_text

VERSION = 2  # of the file's layout


@cache
def code_stamp() -> str:
    """The converter's identity: modwatch's version, its code, and the libraries it runs."""
    h = hashlib.sha256(f"{VERSION}\0{daemon.__version__}\0".encode())
    for name in ("libcst", "ruff"):
        h.update(f"{name}={metadata.version(name)}\0".encode())
    package = Path(daemon.__file__).parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@dataclass
class CheckCache:
    """Per source: the inputs digest, the parents read and the digest of each output."""

    path: Path | None
    root: Path
    format: bool
    entries: dict[str, dict[str, object]] = field(default_factory=dict)
    hits: int = 0

    @classmethod
    def load(cls, path: Path | None, root: Path, *, format: bool, read: bool = True) -> CheckCache:
        """The cache at ``path``; with ``read`` False it starts empty (and is rewritten)."""
        found = cls(path, root, format)
        if path is None or not read:
            return found
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return found
        if isinstance(data, dict) and data.get("stamp") == code_stamp():
            entries = data.get("entries")
            if isinstance(entries, dict):
                found.entries = entries
        return found

    def lookup(self, source: Path, fresh: Mapping[Path, str]) -> Converted | None:
        """The conversion's result, from the files on disk, when nothing it reads changed."""
        entry = self.entries.get(self._rel(source))
        if entry is None:
            return None
        parents = [self.root / str(p) for p in _strings(entry.get("parents"))]
        if entry.get("inputs") != self._inputs(source, parents, fresh):
            return None
        outputs: list[Output] = []
        expected = entry.get("outputs")
        if not isinstance(expected, list) or not expected:
            return None
        for record in expected:  # in the conversion's order, so the report reads the same
            if not isinstance(record, list) or len(record) != 3:
                return None
            rel, kind, want = record
            path = self.root / str(rel)
            text = read_text(path)
            if text is None or digest(text) != want:
                return None  # missing, stale or hand-edited: convert, to report it with a diff
            outputs.append(Output(path, str(kind), text))
        self.hits += 1
        return Converted(source, tuple(outputs), parents=tuple(parents))

    def store(self, source: Path, result: Converted, fresh: Mapping[Path, str]) -> None:
        parents = list(result.parents)
        self.entries[self._rel(source)] = {
            "inputs": self._inputs(source, parents, fresh),
            "parents": [self._rel(p) for p in parents],
            "outputs": [[self._rel(o.path), o.kind, digest(o.text)] for o in result.outputs],
        }

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"stamp": code_stamp(), "entries": self.entries}
        atomic_write(self.path, json.dumps(data, sort_keys=True), check_python=False)

    def _inputs(self, source: Path, parents: list[Path], fresh: Mapping[Path, str]) -> str | None:
        h = hashlib.sha256(f"format={self.format}\0".encode())
        for path in (source, *parents):
            text = fresh.get(path)
            if text is None:
                text = read_text(path)
            if text is None:
                return None  # a parent gone: the conversion will say so
            h.update(f"{self._rel(path)}\0{digest(text)}\0".encode())
        for path in casing_files(self.root):
            text = read_text(path)
            h.update(f"{self._rel(path)}\0{digest(text) if text is not None else '-'}\0".encode())
        h.update(format_context(source, self.root))  # outputs sit beside their source
        return h.hexdigest()

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
