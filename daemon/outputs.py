"""Writing generated files safely, and remembering what modwatch wrote.

Nothing is ever half-written: a temporary file in the same directory, compiled, then
``os.replace``. Nothing is silently overwritten: an output that differs from what modwatch
last wrote, from its committed content and from the new conversion is a hand edit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from daemon.errors import DaemonError

TEMP_PREFIX = ".modwatch-"
TEMP_SUFFIX = ".tmp"


def digest(text: str) -> str:
    """The content hash modwatch keys everything on (rule 7: content, not timing)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist (or is not a regular file)."""
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def atomic_write(path: Path, text: str, *, check_python: bool = True) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a mix.

    With ``check_python`` the text is compiled first; when it does not compile the old file
    stays and the broken text is kept beside it as ``<name>.broken`` for inspection.
    """
    if check_python:
        try:
            compile(text, str(path), "exec")
        except SyntaxError as exc:
            broken = path.with_name(path.name + ".broken")
            atomic_write(broken, text, check_python=False)
            raise DaemonError(
                f"{path}: generated text does not compile (line {exc.lineno}: {exc.msg}); "
                f"kept the previous file, the broken output is in {broken}"
            ) from exc
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        if not path.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Decision(Enum):
    """What to do with one output."""

    WRITE = "written"
    UNCHANGED = "unchanged"
    HAND_EDITED = "hand_edited"


def decide(
    on_disk: str | None,
    new: str,
    *,
    last_written: str | None,
    committed: Callable[[], str | None],
) -> Decision:
    """Pure policy: may modwatch replace ``on_disk`` by ``new``?

    Args:
        on_disk: the current file text (None when absent).
        new: the freshly converted text.
        last_written: the hash of what modwatch last wrote there (None when unknown).
        committed: returns the file's text at HEAD (None when untracked or no git); called
            only when the other facts do not decide, as it costs git processes.
    """
    if on_disk == new:
        return Decision.UNCHANGED
    if on_disk is None:
        return Decision.WRITE
    current = digest(on_disk)
    if current == last_written or on_disk == committed():
        return Decision.WRITE  # ours, or restored with `git checkout -- file`
    return Decision.HAND_EDITED


@dataclass
class Ledger:
    """Hashes of the outputs modwatch wrote and of the sources it converted, on disk."""

    path: Path | None
    outputs: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Ledger:
        """Read the ledger; a missing or unreadable one starts empty (it is only a cache)."""
        if path is None:
            return cls(None)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                path,
                dict(data.get("outputs", {})),
                dict(data.get("sources", {})),
                dict(data.get("parents", {})),
            )
        except (OSError, ValueError, AttributeError):
            return cls(path)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {"outputs": self.outputs, "sources": self.sources, "parents": self.parents}, indent=1
        )
        atomic_write(self.path, text + "\n", check_python=False)
