"""The bundled example repository, for a first run in a directory without modular files."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from daemon import git
from daemon.config import Config
from daemon.log import get_logger
from daemon.runner import Runner
from daemon.watcher import PathFilter, scan

log = get_logger()

MODULAR_FILE = Path("src/zoo/models/orbit/modular_orbit.py")


def example_dir() -> Path:
    """The example inside the installed wheel, else the one in the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (
        here / "resources" / "examples" / "basic",
        here.parent / "examples" / "basic",
    ):
        if (candidate / MODULAR_FILE).is_file():
            return candidate
    raise FileNotFoundError("the bundled example is missing from this installation")


def is_source_checkout(root: Path) -> bool:
    """Is ``root`` modwatch's own source checkout (the one holding the bundled example)?"""
    try:
        example_dir().relative_to(root.resolve())
    except (ValueError, FileNotFoundError):
        return False
    return True


def create(dest: Path) -> Path:
    """Copy the example to ``dest``, make it a git repository, generate and commit outputs."""
    shutil.copytree(example_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git.init_repo(dest)
    git.commit_all(dest, "modwatch example: hand-written zeta model and modular orbit model")
    runner = Runner(dest, Config(git_mode="off"))
    sources = scan(dest, PathFilter(root=dest))
    runner.learn(sources)
    for source in runner.affected(sources, set(sources)):
        runner.run(source)
    git.commit_all(dest, "modwatch example: generated files")
    return dest


def bootstrap(cwd: Path) -> Path:
    """Copy the example into a new temporary git repository and say where it is.

    The copy keeps the bundled example clean; the user edits the copy.
    """
    dest = create(Path(tempfile.mkdtemp(prefix="modwatch-example-")) / "zoo")
    print(
        f"modwatch: no modular files of your own under {cwd};"
        " watching the bundled example instead.\n"
        f"  repository: {dest}\n"
        f"  edit and save: {dest / MODULAR_FILE}\n"
        f"  then look at:  git -C {dest} diff --cached  (the regenerated, staged outputs)",
        flush=True,
    )
    return dest
