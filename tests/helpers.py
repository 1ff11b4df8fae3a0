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

from daemon import control
from daemon import git as gitmod
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


def events(log_path: Path) -> list[dict[str, object]]:
    """The JSON log lines a daemon wrote so far."""
    import json

    found = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def event(log_path: Path, name: str, **fields: object) -> dict[str, object] | None:
    """The first event called ``name`` whose fields include ``fields``, if any yet."""
    for item in events(log_path):
        if item.get("event") == name and all(item.get(k) == v for k, v in fields.items()):
            return item
    return None


class RunningDaemon:
    """``modwatch watch`` in a subprocess, its stderr in a file; stopped with SIGTERM."""

    def __init__(self, repo: Path, log_path: Path, *args: str, env: dict[str, str] | None = None):
        self.repo = repo
        self.log_path = log_path
        with log_path.open("w") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon", "watch", "--repo", str(repo), *args],
                cwd=repo,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env={**os.environ, **(env or {})},
            )

    def wait_started(self) -> dict[str, object]:
        return wait_for(lambda: event(self.log_path, "daemon.started"), what="daemon.started")

    def sync(self, timeout: float = 30.0) -> None:
        """Return once every event that happened before this call has been processed."""
        sock = control.resolve_socket(gitmod.git_dir(self.repo))
        reply = control.query(sock, {"cmd": "sync", "timeout": timeout}, timeout=timeout + 5)
        assert reply.get("synced") is True, reply

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code
