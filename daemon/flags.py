"""Flagged outputs: what modwatch could not (or would not) stage, and why, kept on disk.

The file lives under the git directory (``modwatch/flags.json``) so ``modwatch status``, the
hook and a restarted daemon all see the same list. An entry goes away when the output is
staged by modwatch, or once it is committed in sync with its source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from daemon.outputs import atomic_write


@dataclass
class Flags:
    """Output (relative path) -> {"reason": ..., "source": ...}."""

    path: Path | None
    entries: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Flags:
        """Read the flags; a missing or unreadable file means none."""
        if path is None:
            return cls(None)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(data, dict):
            return cls(path)
        entries = {
            str(k): {"reason": str(v.get("reason", "")), "source": str(v.get("source", ""))}
            for k, v in data.items()
            if isinstance(v, dict)
        }
        return cls(path, entries)

    def flag(self, output: str, source: str, reason: str) -> None:
        self.entries[output] = {"reason": reason, "source": source}

    def clear(self, output: str) -> None:
        self.entries.pop(output, None)

    def reasons(self) -> dict[str, str]:
        """Output -> reason, for ``modwatch status``."""
        return {k: v["reason"] for k, v in sorted(self.entries.items())}

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(
            self.path, json.dumps(self.entries, indent=1, sort_keys=True) + "\n", check_python=False
        )
