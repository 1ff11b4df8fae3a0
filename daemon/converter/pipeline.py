"""One modular file in, its outputs out: the wiring of stages P2-P13.

``run`` never raises: expected problems become ``Failed`` naming the file, the line of the
offending statement and the cause; anything unexpected is caught per file and reported with
its exception type (house style habit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from daemon.converter import Converted, Failed, Output, Result, Skipped
from daemon.converter.assemble import Conversion
from daemon.converter.memo import next_conversion
from daemon.converter.naming import load_casing_table
from daemon.converter.render import banner, format_many
from daemon.converter.reparse import Reparser
from daemon.converter.resolve import read_text
from daemon.errors import ConvertError

_PREFIX = "modular_"
# The last trees of the modular files converted here: a save reparses only what it touched.
REPARSER = Reparser()


def model_name(source: Path) -> str | None:
    """R-IO-1: the text after ``modular_`` in the file name, or None for other names."""
    name = source.name
    if not name.startswith(_PREFIX) or not name.endswith(".py") or name == f"{_PREFIX}.py":
        return None
    return name[len(_PREFIX) : -len(".py")]


def find_root(source: Path) -> Path:
    """The repository root: the nearest ancestor with ``src/transformers``, else with a
    ``pyproject.toml``, else the file's directory."""
    for ancestor in source.parents:
        if (ancestor / "src" / "transformers").is_dir():
            return ancestor
    for ancestor in source.parents:
        if (ancestor / "pyproject.toml").is_file():
            return ancestor
    return source.parent


def output_path(source: Path, kind: str) -> Path:
    """R-IO-2: the modular path with ``modular_`` replaced by ``<file type>_``."""
    return source.with_name(source.name.replace(_PREFIX, f"{kind}_", 1))


def run(
    source: Path,
    *,
    root: Path | None = None,
    overlay: Mapping[Path, str],
    format: bool = True,
) -> Result:
    """Convert one modular file; see ``daemon.converter.convert``.

    Returns:
        ``Converted``, ``Skipped`` for a file that is not ``modular_<name>.py``, or ``Failed``.
    """
    model = model_name(source)
    if model is None:
        return Skipped(source, "not a modular_<name>.py file")
    root = find_root(source) if root is None else root
    next_conversion()  # lets the per-node caches drop what earlier conversions left
    conversion: Conversion | None = None
    try:
        text = read_text(source, overlay)
        if text is None:
            return Failed(source, "file not found")
        module = REPARSER.parse(text, source)
        header = banner(source, root)
        conversion = Conversion(source, module, model=model, root=root, overlay=overlay)
        conversion.casing = load_casing_table(root)
        files = conversion.convert()
        raws = [(output_path(source, kind), header + body) for kind, body in files.items()]
        finals = format_many(raws, root) if format else [raw for _, raw in raws]
        outputs = [
            Output(path, kind, final)
            for kind, (path, _), final in zip(files, raws, finals, strict=True)
        ]
    except ConvertError as error:
        return Failed(source, error.cause, error.line)
    except RecursionError:
        return Failed(source, "RecursionError: the file nests too deeply to convert")
    except Exception as error:  # R-ERR-7: never let one file take the process down
        line = conversion.current_line if conversion is not None else None
        return Failed(source, f"{type(error).__name__}: {error}", line)
    return Converted(
        source,
        outputs=tuple(outputs),
        parents=conversion.parent_paths,
        warnings=tuple(conversion.warnings),
    )
