"""pre-commit runs modwatch's hook from this repository, end to end (issue 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import MODULAR, REPO, example_repo

PRE_COMMIT = Path(sys.executable).with_name("pre-commit")


def _head_of_this_repo() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


@pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is a test extra")
def test_pre_commit_runs_modwatch_check_and_catches_a_stale_output(tmp_path: Path) -> None:
    rev = _head_of_this_repo()
    if rev is None:
        pytest.skip("this checkout has no commit for pre-commit to clone")
    repo = example_repo(tmp_path, commit_outputs=True)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {REPO}\n  rev: {rev}\n  hooks:\n  - id: modwatch-check\n"
    )
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "-m", "pre-commit config")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    env.pop("VIRTUAL_ENV", None)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "run", "--all-files"],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )

    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "modwatch (generated files up to date)" in clean.stdout and "Passed" in clean.stdout
    source = repo / MODULAR
    source.write_text(source.read_text().replace("return -x", "return -x * 9"))
    stale = run()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "stale" in stale.stdout and "fix with: modwatch convert" in stale.stdout
    shutil.rmtree(tmp_path / "pre-commit-home", ignore_errors=True)
