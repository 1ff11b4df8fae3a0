"""The libcst converter: a modular file in, its generated files out.

``convert()`` never raises for bad input: a file being typed into is usually half-broken,
so it returns a ``Failed`` value naming file, line and cause, and the caller decides
whether to log, stage or flag (house style habit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Output:
    """One generated file: where it goes, its file type and its final (formatted) text."""

    path: Path
    kind: str
    text: str


@dataclass(frozen=True)
class Converted:
    """A successful conversion of ``source``."""

    source: Path
    outputs: tuple[Output, ...]
    parents: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Skipped:
    """``source`` is not something the converter handles (wrong file name, say)."""

    source: Path
    reason: str


@dataclass(frozen=True)
class Failed:
    """``source`` could not be converted: ``message`` says why, ``line`` where (1-based)."""

    source: Path
    message: str
    line: int | None = None

    def describe(self) -> str:
        """``file:line: cause``, the form every error message of modwatch takes."""
        where = f"{self.source}:{self.line}" if self.line is not None else str(self.source)
        return f"{where}: {self.message}"


Result = Converted | Skipped | Failed

# The file types a modular file can produce, in the order outputs are reported (R-IO-2).
FILE_TYPES = (
    "modeling",
    "configuration",
    "tokenization",
    "processing",
    "image_processing",
    "image_processing_pil",
    "video_processing",
    "feature_extraction",
)
# The same, for prefix matching: `image_processing_pil` before `image_processing`,
# `video_processing` before `processing` (R-IO-3, R-PAR-1).
FILE_TYPES_BY_PREFIX = (
    "image_processing_pil",
    "image_processing",
    "video_processing",
    "feature_extraction",
    "configuration",
    "tokenization",
    "processing",
    "modeling",
)

__all__ = [
    "FILE_TYPES",
    "FILE_TYPES_BY_PREFIX",
    "Converted",
    "Failed",
    "Output",
    "Result",
    "Skipped",
    "convert",
    "imported_modules",
]


def convert(
    source: Path,
    *,
    root: Path | None = None,
    overlay: Mapping[Path, str] | None = None,
    format: bool = True,
) -> Result:
    """Convert one modular file.

    Args:
        source: absolute path of a ``modular_<name>.py`` file.
        root: the repository root (where ``pyproject.toml`` and, for transformers,
            ``src/transformers`` live); found by walking up from ``source`` when None.
        overlay: file contents that take precedence over the disk, keyed by absolute
            path (the source itself, or parents freshly converted in memory by ``check``).
        format: run the ruff fixes and formatter on the outputs (R-FMT-1).

    Returns:
        ``Converted`` with one ``Output`` per generated file, or ``Skipped`` / ``Failed``.
    """
    from daemon.converter.pipeline import run

    return run(source, root=root, overlay=overlay or {}, format=format)


def imported_modules(source: Path, text: str) -> list[tuple[int, str]] | None:
    """The ``(dots, module)`` of every ``from <module> import`` in ``text``, at any depth, or
    None when ``text`` does not parse.

    The parse is the converter's own, kept for the file's next conversion (the daemon reads the
    imports of a saved file just before converting it): that conversion then parses nothing,
    and the next save reparses only the statements it touched.
    """
    from daemon.converter.pipeline import REPARSER
    from daemon.converter.resolve import dotted_name, import_froms
    from daemon.errors import ConvertError

    try:
        module = REPARSER.parse(text, source)
    except ConvertError:
        return None
    found = []
    for node in import_froms(module):
        name = dotted_name(node.module) if node.module is not None else None
        if name:
            found.append((len(node.relative), name))
    return found
