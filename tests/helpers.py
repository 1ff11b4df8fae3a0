"""Shared test helpers: the example repository, running modwatch, waiting with a deadline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.conftest import git

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "basic"
ORBIT = Path("src/zoo/models/orbit")
MODULAR = ORBIT / "modular_orbit.py"
MODELING = ORBIT / "modeling_orbit.py"
CONFIGURATION = ORBIT / "configuration_orbit.py"

T = TypeVar("T")


def example_repo(tmp_path: Path, *, commit_outputs: bool = False) -> Path:
    """A git repository holding a copy of the bundled example, committed."""
    repo = tmp_path / "zoo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "example")
    if commit_outputs:
        done = modwatch(repo, "convert", str(repo / ORBIT))
        assert done.returncode == 0, done.stderr
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "generated")
    return repo


def modwatch(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def wait_for(predicate: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)  # polling interval, not synchronisation: the predicate decides
