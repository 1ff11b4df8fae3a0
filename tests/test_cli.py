"""The command line end to end: real subprocesses on real git repositories."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import git
from tests.helpers import (
    CONFIGURATION,
    MODELING,
    MODULAR,
    ORBIT,
    REPO,
    event,
    events,
    example_repo,
    modwatch,
    wait_for,
)

EDIT_OLD = "        return -x\n"
EDIT_NEW = "        return -2 * x\n"


def test_version():
    done = modwatch(REPO, "--version")
    assert done.returncode == 0 and done.stdout.startswith("modwatch ")


def test_convert_writes_outputs_that_work_without_the_base_package(tmp_path):
    repo = example_repo(tmp_path)
    done = modwatch(repo, "convert", str(repo / MODULAR))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("written") and line.endswith("modeling_orbit.py") for line in lines)
    assert any(line.endswith("configuration_orbit.py") for line in lines)
    shutil.rmtree(repo / "src/zoo/models/zeta")  # the outputs must stand alone
    probe = (
        "from zoo.models.orbit.modeling_orbit import OrbitModel\n"
        "from zoo.models.orbit.configuration_orbit import OrbitConfig\n"
        "m = OrbitModel(OrbitConfig(num_layers=3))\n"
        "print(m.forward(2.0), m.bias, len(m.layers), OrbitConfig().model_type)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo / "src", capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["-2.0", "1.0", "3", "orbit"]


def test_convert_twice_reports_unchanged(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    done = modwatch(repo, "convert", str(repo / ORBIT))
    assert done.returncode == 0, done.stderr
    assert all(line.startswith("unchanged") for line in done.stdout.splitlines())


def test_check_is_clean_then_stale_after_an_edit(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    assert modwatch(repo, "check", "src").returncode == 0
    source = repo / MODULAR
    source.write_text(source.read_text().replace(EDIT_OLD, EDIT_NEW))
    done = modwatch(repo, "check", "src", "--diff")
    assert done.returncode == 1
    assert "stale" in done.stdout and "modeling_orbit.py" in done.stdout
    assert "+        return -2 * x" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == (
        "fix with: modwatch convert src/zoo/models/orbit/modular_orbit.py"
    )
    # The fix command fixes it; check writes nothing itself.
    fixed = modwatch(repo, *done.stdout.rstrip().splitlines()[-1].split()[3:])
    assert fixed.returncode == 0, fixed.stderr
    assert modwatch(repo, "check", "src").returncode == 0


def test_check_json_lists_every_output_with_its_status(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    (repo / CONFIGURATION).unlink()
    done = modwatch(repo, "check", "src", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    statuses = {o["path"]: o["status"] for o in report["outputs"]}
    assert statuses == {CONFIGURATION.as_posix(): "missing", MODELING.as_posix(): "ok"}
    assert report["counts"] == {"ok": 1, "stale": 0, "missing": 1, "error": 0}
    assert all(o["source"] == MODULAR.as_posix() for o in report["outputs"])


def test_a_broken_file_names_file_and_line_and_the_others_still_convert(tmp_path):
    repo = example_repo(tmp_path)
    broken = repo / "src/zoo/models/broken/modular_broken.py"
    broken.parent.mkdir()
    broken.write_text("from ..zeta.modeling_zeta import ZetaModel\n\nclass Broken(ZetaModel:\n")
    done = modwatch(repo, "convert", "src")
    assert done.returncode == 2
    assert "modular_broken.py:3" in done.stdout
    assert (repo / MODELING).exists()


def test_check_of_a_broken_file_exits_2(tmp_path):
    repo = example_repo(tmp_path)
    (repo / MODULAR).write_text("class (:\n")
    done = modwatch(repo, "check", str(repo / MODULAR), "--json")
    assert done.returncode == 2
    (entry,) = json.loads(done.stdout)["outputs"]
    assert entry["status"] == "error" and "modular_orbit.py:1" in entry["error"]


def test_bad_config_exits_2_naming_file_and_key(tmp_path):
    repo = example_repo(tmp_path)
    (repo / ".modwatch.toml").write_text("[git]\nmode = 'push'\n")
    done = modwatch(repo, "check", "src")
    assert done.returncode == 2
    assert ".modwatch.toml: key 'git.mode' must be one of" in done.stderr


def test_not_a_modular_file_exits_2(tmp_path):
    repo = example_repo(tmp_path)
    done = modwatch(repo, "convert", str(repo / "src/zoo/models/zeta/modeling_zeta.py"))
    assert done.returncode == 2 and "not a modular file" in done.stderr


def test_missing_path_exits_2(tmp_path):
    done = modwatch(tmp_path, "check", "nowhere")
    assert done.returncode == 2 and "nowhere: no such file or directory" in done.stderr


def test_a_foreign_daemon_package_is_refused(tmp_path):
    """python-daemon installs a package named `daemon` too: say so instead of crashing."""
    shutil.copytree(
        REPO / "daemon", tmp_path / "daemon", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "daemon" / "pidfile.py").write_text("# python-daemon\n")
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 2
    assert "is not modwatch's" in done.stderr and "python-daemon" in done.stderr
    assert "hint: install modwatch in its own environment" in done.stderr


def test_watch_regenerates_stages_and_logs_one_event_per_run(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "watch", "--repo", str(repo), "--debounce-ms", "50"],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        wait_for(lambda: event(log_path, "daemon.started"), what="daemon.started")
        source = repo / MODULAR
        source.write_text(source.read_text().replace(EDIT_OLD, EDIT_NEW))
        wait_for(lambda: "return -2 * x" in (repo / MODELING).read_text(), what="regeneration")
        run = wait_for(
            lambda: event(log_path, "run.finished", source=MODULAR.as_posix()), what="event"
        )
        assert run["outcome"] == "ok" and run["git"] == "staged"
        outputs = run["outputs"]
        assert isinstance(outputs, list)
        assert {"path": MODELING.as_posix(), "status": "written"} in outputs
        assert {"path": CONFIGURATION.as_posix(), "status": "unchanged"} in outputs
        assert isinstance(run["duration_ms"], float) and run["level"] == "info"
        staged = git(repo, "diff", "--cached", "--name-only").split()
        assert MODELING.as_posix() in staged

        # A syntax error mid-edit: an error event naming file and line, outputs untouched.
        before = (repo / MODELING).read_text()
        source.write_text(source.read_text() + "\ndef oops(:\n")
        error = wait_for(
            lambda: event(log_path, "run.finished", outcome="error"), what="error event"
        )
        assert error["source"] == MODULAR.as_posix() and isinstance(error["line"], int)
        assert "error" in error
        assert (repo / MODELING).read_text() == before
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert event(log_path, "daemon.stopped") is not None
    runs = [e for e in events(log_path) if e.get("event") == "run.finished"]
    assert len(runs) == 2  # the daemon's own writes never re-triggered it


def test_watch_in_modwatchs_own_checkout_runs_a_copy_of_the_example(tmp_path):
    """The README's first command runs in this checkout: its example must stay clean."""
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "watch"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    try:
        started = wait_for(lambda: event(log_path, "daemon.started"), what="daemon.started")
        assert started["root"] != str(REPO) and "modwatch-example-" in str(started["root"])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
    assert "watching the bundled example" in out
    shutil.rmtree(Path(str(started["root"])).parent, ignore_errors=True)


def test_watch_without_modular_files_runs_the_bundled_example(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    log_path = tmp_path / "daemon.log"
    out_path = tmp_path / "stdout.txt"
    with log_path.open("w") as log_file, out_path.open("w") as out_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "watch"],
            cwd=empty,
            stdout=out_file,
            stderr=log_file,
        )
    try:
        wait_for(lambda: event(log_path, "daemon.started"), what="daemon.started")
        text = out_path.read_text()
        assert "watching the bundled example" in text
        edit_line = next(line for line in text.splitlines() if "edit and save:" in line)
        source = Path(edit_line.split("edit and save:")[1].strip())
        assert source.name == "modular_orbit.py" and source.is_file()
        assert (source.parent / "modeling_orbit.py").is_file()
        assert list(empty.iterdir()) == []  # nothing written where the user stood
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    shutil.rmtree(source.parents[5], ignore_errors=True)


def test_deps_lists_parents_and_transitive_dependents(tmp_path):
    repo = example_repo(tmp_path)
    nova = repo / "src/zoo/models/nova/modular_nova.py"
    nova.parent.mkdir()
    nova.write_text(
        "from ..orbit.modeling_orbit import OrbitModel\n\n\n"
        "class NovaModel(OrbitModel):\n    pass\n"
    )
    done = modwatch(repo, "deps", "src/zoo/models/zeta/modeling_zeta.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "  feeds (2, in conversion order):",
        "    src/zoo/models/orbit/modular_orbit.py",
        "    src/zoo/models/nova/modular_nova.py",
    ]
    done = modwatch(repo, "deps", "src/zoo/models/nova/modular_nova.py")
    assert "  depends on:\n    src/zoo/models/orbit/modeling_orbit.py  (missing)\n" in done.stdout


def test_convert_refuses_a_hand_edit_and_force_keeps_a_copy(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    modeling = repo / MODELING
    edited = modeling.read_text() + "# hand edit\n"
    modeling.write_text(edited)
    source = repo / MODULAR
    source.write_text(source.read_text().replace(EDIT_OLD, EDIT_NEW))
    done = modwatch(repo, "convert", str(source))
    assert done.returncode == 2
    assert f"hand_edited {MODELING.as_posix()}" in " ".join(done.stdout.split())
    assert "--force" in done.stderr and modeling.read_text() == edited
    forced = modwatch(repo, "convert", "--force", str(source))
    assert forced.returncode == 0, forced.stderr
    assert "return -2 * x" in modeling.read_text()
    kept = list((repo / ".git/modwatch/hand-edits").rglob("modeling_orbit.py.*"))
    assert len(kept) == 1 and kept[0].read_text() == edited


def test_restart_reconciles_an_output_deleted_while_no_daemon_ran(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    (repo / MODELING).unlink()
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "watch", "--repo", str(repo)],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        reconciled = wait_for(lambda: event(log_path, "daemon.reconciled"), what="reconcile")
        assert reconciled["converted"] == 1 and (repo / MODELING).exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def _with_nova(repo: Path) -> Path:
    nova = repo / "src/zoo/models/nova/modular_nova.py"
    nova.parent.mkdir()
    (nova.parent / "__init__.py").write_text("")
    nova.write_text(
        "from ..orbit.modeling_orbit import OrbitModel\n\n\n"
        "class NovaModel(OrbitModel):\n    pass\n"
    )
    return nova


def test_check_in_parallel_matches_sequential_and_children_see_fresh_parents(tmp_path):
    repo = example_repo(tmp_path)
    _with_nova(repo)
    assert modwatch(repo, "convert", "src").returncode == 0
    source = repo / MODULAR
    source.write_text(source.read_text().replace(EDIT_OLD, EDIT_NEW))
    one = modwatch(repo, "check", "src", "--json", "-j", "1")
    two = modwatch(repo, "check", "src", "--json", "-j", "2")
    assert one.returncode == two.returncode == 1
    assert json.loads(one.stdout) == json.loads(two.stdout)
    stale = {o["path"] for o in json.loads(two.stdout)["outputs"] if o["status"] == "stale"}
    # nova's output is stale too: its parent, orbit's modeling file, changes with the edit.
    assert stale == {MODELING.as_posix(), "src/zoo/models/nova/modeling_nova.py"}


def test_check_changed_since_limits_to_changed_files_and_dependents(tmp_path):
    repo = example_repo(tmp_path)
    _with_nova(repo)
    assert modwatch(repo, "convert", "src").returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "outputs")
    quiet = modwatch(repo, "check", "--changed-since", "HEAD", "--json")
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["outputs"] == []
    zeta = repo / "src/zoo/models/zeta/modeling_zeta.py"
    zeta.write_text(zeta.read_text().replace("ZETA_SCALE = 2.0", "ZETA_SCALE = 4.0"))
    done = modwatch(repo, "check", "--changed-since", "HEAD", "--json")
    assert done.returncode == 1
    sources = {o["source"] for o in json.loads(done.stdout)["outputs"]}
    assert sources == {MODULAR.as_posix(), "src/zoo/models/nova/modular_nova.py"}


def test_check_rejects_zero_jobs(tmp_path):
    repo = example_repo(tmp_path)
    done = modwatch(repo, "check", "src", "-j", "0")
    assert done.returncode == 2 and "-j must be at least 1" in done.stderr
