"""The git hook end to end: installed into real repositories, run by real git commands."""

from __future__ import annotations

import itertools
import re
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon import hook
from daemon.errors import DaemonError
from tests.conftest import git

# Records each `-m daemon ...` call's argv (NUL-separated) and stdin; answers the hook's
# "is modwatch importable" probe (`-c ...`) with yes. Every call leaves a `started` marker.
STUB = """#!/bin/sh
here=$(dirname "$0")
: > "$here/started"
if [ "$1" = -m ]; then
    printf '%s\\0' "$@" >> "$here/argv"
    cat > "$here/stdin"
fi
exit 0
"""

FOREIGN = b'#!/bin/sh\necho "legacy post-checkout ran: $1 $2 $3"\nexit 3\n'


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    """A fake interpreter that records how the hook ran it."""
    path = tmp_path / "stub" / "python"
    path.parent.mkdir()
    path.write_text(STUB)
    path.chmod(0o755)
    return path


def calls(stub: Path) -> list[list[str]]:
    """The argv of every `-m daemon` call the stub interpreter received, oldest first."""
    log = stub.parent / "argv"
    if not log.exists():
        return []
    words = log.read_text().split("\0")[:-1]
    starts = [i for i, w in enumerate(words) if w == "-m"] + [len(words)]
    return [words[a:b] for a, b in itertools.pairwise(starts)]


def run_hook(script: Path, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run an installed hook as git would, returning the result and its wall time."""
    start = time.perf_counter()
    done = subprocess.run(["sh", str(script), *args], cwd=cwd, capture_output=True, text=True)
    return done, time.perf_counter() - start


def with_branch(repo: Path) -> tuple[str, str]:
    """Give ``repo`` a tracked file and a branch ``other`` one commit ahead; return both shas."""
    (repo / "a.txt").write_text("one\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "a")
    main = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "a.txt").write_text("two\n")
    git(repo, "commit", "-q", "-am", "b")
    other = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    return main, other


def foreign_hook(path: Path, content: bytes = FOREIGN, mode: int = 0o755) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)


def test_install_writes_executable_hooks_into_the_common_dir_shared_by_worktrees(git_repo):
    messages = hook.install(git_repo)
    hooks = git_repo / ".git" / "hooks"
    for hook_type in hook.HOOK_TYPES:
        path = hooks / hook_type
        assert hook.is_ours(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert "@PYTHON@" not in path.read_text()
    assert messages == [f"installed {hooks / t}" for t in hook.HOOK_TYPES]
    wt = git_repo.parent / "wt"
    git(git_repo, "worktree", "add", "-q", str(wt), "-b", "wt")
    assert hook.hooks_dir(wt) == hooks
    assert hook.install(wt, ["post-checkout"]) == [f"installed {hooks / 'post-checkout'}"]
    assert sorted(p.name for p in hooks.iterdir()) == sorted(hook.HOOK_TYPES)
    assert not (git_repo / ".git" / "worktrees" / "wt" / "hooks").exists()


def test_existing_hook_is_kept_as_legacy_and_still_runs_on_a_real_checkout(git_repo, stub):
    main, other = with_branch(git_repo)
    hooks = git_repo / ".git" / "hooks"
    foreign_hook(hooks / "post-checkout")
    messages = hook.install(git_repo, ["post-checkout"], python=str(stub))
    assert (hooks / "post-checkout.legacy").read_bytes() == FOREIGN
    assert messages[0].endswith("as post-checkout.legacy; it runs first")
    done = subprocess.run(
        ["git", "checkout", "other"], cwd=git_repo, capture_output=True, text=True
    )
    # post-checkout's failure fails checkout (githooks(5)); the legacy's 3 does so as it did
    # before modwatch was installed. git prints hook output on stderr.
    assert done.returncode == 1
    assert git(git_repo, "branch", "--show-current") == "other\n"
    assert re.search(rf"^legacy post-checkout ran: {main} {other} 1$", done.stderr, re.M)
    assert calls(stub) == [["-m", "daemon", "hook-run", "post-checkout", main, other, "1"]]


def test_core_hooks_path_is_refused_with_a_hint_and_git_hooks_left_untouched(git_repo):
    git(git_repo, "config", "core.hooksPath", ".githooks")
    with pytest.raises(DaemonError) as caught:
        hook.install(git_repo)
    assert "core.hooksPath" in caught.value.message
    assert caught.value.hint is not None and "--hooks-path" in caught.value.hint
    assert not (git_repo / ".git" / "hooks").exists()
    assert not (git_repo / ".githooks").exists()
    with pytest.raises(DaemonError):
        hook.uninstall(git_repo)


def test_hooks_path_flag_installs_into_the_configured_dir_that_git_runs(git_repo, stub):
    main, other = with_branch(git_repo)
    git(git_repo, "config", "core.hooksPath", ".githooks")
    hook.install(git_repo, hooks_path=True, python=str(stub))
    assert hook.is_ours(git_repo / ".githooks" / "post-checkout")
    assert not (git_repo / ".git" / "hooks").exists()
    git(git_repo, "checkout", "-q", "other")
    assert calls(stub) == [["-m", "daemon", "hook-run", "post-checkout", main, other, "1"]]


def test_reinstall_is_idempotent_and_never_makes_a_second_legacy(git_repo):
    hooks = git_repo / ".git" / "hooks"
    foreign_hook(hooks / "post-merge")
    hook.install(git_repo)
    before = {p.name: p.read_bytes() for p in hooks.iterdir()}
    messages = hook.install(git_repo)
    assert {p.name: p.read_bytes() for p in hooks.iterdir()} == before
    assert sorted(before) == sorted([*hook.HOOK_TYPES, "post-merge.legacy"])
    assert messages == [f"installed {hooks / t}" for t in hook.HOOK_TYPES]


def test_foreign_hook_with_a_taken_legacy_slot_is_refused_without_writing(git_repo):
    hooks = git_repo / ".git" / "hooks"
    foreign_hook(hooks / "post-checkout")
    foreign_hook(hooks / "post-checkout.legacy", b"#!/bin/sh\necho older\n")
    with pytest.raises(DaemonError, match=r"post-checkout\.legacy both exist"):
        hook.install(git_repo)
    assert sorted(p.name for p in hooks.iterdir()) == ["post-checkout", "post-checkout.legacy"]
    assert (hooks / "post-checkout").read_bytes() == FOREIGN


def test_uninstall_restores_the_original_byte_for_byte_and_leaves_foreign_hooks(git_repo):
    hooks = git_repo / ".git" / "hooks"
    original = b"#!/bin/sh\r\n# odd bytes \xff kept\necho hi\n"
    foreign_hook(hooks / "post-checkout", original, mode=0o700)
    hook.install(git_repo, ["post-checkout", "post-merge"])
    foreign_hook(hooks / "post-rewrite", b"#!/bin/sh\n")  # someone else's, not ours
    messages = hook.uninstall(git_repo)
    assert (hooks / "post-checkout").read_bytes() == original
    assert stat.S_IMODE((hooks / "post-checkout").stat().st_mode) == 0o700
    assert sorted(p.name for p in hooks.iterdir()) == ["post-checkout", "post-rewrite"]
    assert (hooks / "post-rewrite").read_bytes() == b"#!/bin/sh\n"
    assert messages[2].endswith("is not modwatch's, left alone")
    assert hook.uninstall(git_repo, ["post-merge"]) == [f"{hooks / 'post-merge'} is not installed"]


def test_no_op_checkouts_exit_quickly_without_starting_python(git_repo, stub):
    main, _ = with_branch(git_repo)
    hook.install(git_repo, python=str(stub))
    script = git_repo / ".git" / "hooks" / "post-checkout"
    timings = []
    for args in ([main, main, "1"], [main, "0" * 40, "0"], ["0" * 40, main, "1"]):
        done, elapsed = run_hook(script, *args, cwd=git_repo)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        timings.append(elapsed)
    (git_repo / "a.txt").write_text("dirty\n")
    git(git_repo, "checkout", "--", "a.txt")  # flag 0
    git(git_repo, "checkout", "-q", "-b", "new")  # PREV == NEW
    git(git_repo, "worktree", "add", "-q", str(git_repo.parent / "wt"), "main")  # null PREV
    assert not (stub.parent / "started").exists()
    # The marker is the guarantee; the best of three keeps a loaded machine from flaking.
    assert min(timings) < 0.1, timings


def test_missing_interpreter_prints_one_line_and_exits_with_the_legacys_code(git_repo, tmp_path):
    main, other = with_branch(git_repo)
    gone = str(tmp_path / "removed-venv" / "bin" / "python")
    hook.install(git_repo, python=gone)
    script = git_repo / ".git" / "hooks" / "post-checkout"
    done, _ = run_hook(script, main, other, "1", cwd=git_repo)
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == f"modwatch: not installed at {gone}; hook skipped\n"
    hook.uninstall(git_repo)
    foreign_hook(script)
    hook.install(git_repo, python=gone)
    done, _ = run_hook(script, main, other, "1", cwd=git_repo)
    assert done.returncode == 3
    assert done.stdout == f"legacy post-checkout ran: {main} {other} 1\n"
    assert done.stderr.splitlines() == [f"modwatch: not installed at {gone}; hook skipped"]


def test_interpreter_without_modwatch_counts_as_not_installed(git_repo, tmp_path):
    main, other = with_branch(git_repo)
    bare = tmp_path / "bare-python"
    bare.write_text("#!/bin/sh\nexit 1\n")  # what the importability probe sees without daemon
    bare.chmod(0o755)
    hook.install(git_repo, ["post-checkout"], python=str(bare))
    done, _ = run_hook(
        git_repo / ".git" / "hooks" / "post-checkout", main, other, "1", cwd=git_repo
    )
    assert (done.returncode, done.stderr) == (
        0,
        f"modwatch: not installed at {bare}; hook skipped\n",
    )


def test_post_merge_and_post_rewrite_pass_arguments_and_stdin_through(git_repo, stub):
    _, other = with_branch(git_repo)
    hooks = git_repo / ".git" / "hooks"
    foreign_hook(hooks / "post-rewrite", b'#!/bin/sh\necho "legacy saw $1: $(cat)"\n')
    hook.install(git_repo, python=str(stub))
    git(git_repo, "merge", "-q", "--ff-only", "other")
    assert calls(stub)[-1] == ["-m", "daemon", "hook-run", "post-merge", "0"]
    done = subprocess.run(
        ["git", "commit", "-q", "--amend", "-m", "amended"],
        cwd=git_repo,
        capture_output=True,
        text=True,
        check=True,
    )
    amended = git(git_repo, "rev-parse", "HEAD").strip()
    assert calls(stub)[-1] == ["-m", "daemon", "hook-run", "post-rewrite", "amend"]
    assert (stub.parent / "stdin").read_text() == f"{other} {amended}\n"
    assert re.search(rf"^legacy saw amend: {other} {amended}$", done.stdout + done.stderr, re.M)


def test_hook_script_bakes_in_the_running_interpreter_and_its_type(git_repo):
    hook.install(git_repo, ["post-merge"])
    text = (git_repo / ".git" / "hooks" / "post-merge").read_text()
    assert re.search(r"^HOOK_TYPE=post-merge$", text, re.M)
    assert f"\nPYTHON={shlex.quote(sys.executable)}\n" in text


def test_interpreter_path_with_spaces_and_quotes_stays_one_word(tmp_path, git_repo):
    main, other = with_branch(git_repo)
    odd = tmp_path / "it's a venv" / "python"
    odd.parent.mkdir()
    odd.write_text(STUB)
    odd.chmod(0o755)
    hook.install(git_repo, ["post-checkout"], python=str(odd))
    done, _ = run_hook(
        git_repo / ".git" / "hooks" / "post-checkout", main, other, "1", cwd=git_repo
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert calls(odd) == [["-m", "daemon", "hook-run", "post-checkout", main, other, "1"]]


def test_a_failing_modwatch_never_changes_the_hooks_exit_code(git_repo, tmp_path):
    main, other = with_branch(git_repo)
    failing = tmp_path / "failing-python"
    failing.write_text('#!/bin/sh\n[ "$1" = -m ] && exit 2\nexit 0\n')
    failing.chmod(0o755)
    hook.install(git_repo, ["post-checkout"], python=str(failing))
    script = git_repo / ".git" / "hooks" / "post-checkout"
    assert run_hook(script, main, other, "1", cwd=git_repo)[0].returncode == 0
    hook.uninstall(git_repo, ["post-checkout"])
    foreign_hook(script, b"#!/bin/sh\nexit 5\n")
    hook.install(git_repo, ["post-checkout"], python=str(failing))
    assert run_hook(script, main, other, "1", cwd=git_repo)[0].returncode == 5


def test_unknown_hook_type_is_refused(git_repo):
    with pytest.raises(DaemonError, match="unknown hook type pre-commit"):
        hook.install(git_repo, ["pre-commit"])
