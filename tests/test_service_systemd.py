"""Opt-in end to end: ``modwatch service install --now`` under a real ``systemd --user``.

Skipped unless ``MODWATCH_SYSTEMD_E2E=1``, root, and the systemd binaries are present. The user
manager is started by hand as in service notes §2.4: fake ``sd_booted()`` with
``/run/systemd/system``, hand-delegate a cgroup in both the ``name=systemd`` v1 hierarchy and
cgroup2, and point ``XDG_RUNTIME_DIR`` at ``/run/user/0``. ``systemctl --user`` reaches it
through ``$XDG_RUNTIME_DIR/systemd/private``, so no D-Bus daemon is needed and
``DBUS_SESSION_BUS_ADDRESS`` is removed from the children's environment. Whatever the fixture
created is removed again, and the manager's and the daemon's HOME is a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.service import instance_name
from tests.helpers import MODELING, MODULAR, event, example_repo, wait_for

SYSTEMD = Path("/usr/lib/systemd/systemd")
BOOTED = Path("/run/systemd/system")  # sd_booted() only checks that this directory exists
RUNTIME = Path("/run/user/0")
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
USER_CGROUP = Path("user.slice/user-0.slice/user@0.service")

# Read at import: the autouse _hermetic_env fixture removes MODWATCH_* before a test runs.
pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MODWATCH_SYSTEMD_E2E") != "1", reason="set MODWATCH_SYSTEMD_E2E=1"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="the hand-started user manager needs root"),
    pytest.mark.skipif(
        not SYSTEMD.exists() or shutil.which("systemctl") is None, reason="systemd not installed"
    ),
    pytest.mark.skipif(
        not all(root.is_dir() for root in CGROUP_ROOTS),
        reason="the recipe is for hybrid cgroups (name=systemd v1 plus cgroup2 at unified/)",
    ),
]

# The manager moves itself into the delegated cgroups, then becomes systemd --user (§2.4).
_START = (
    f'for root in "$@"; do echo $$ > "$root/cgroup.procs" || exit 1; done; exec {SYSTEMD} --user'
)


@dataclass
class UserManager:
    env: dict[str, str]  # for systemctl and the modwatch CLI
    home: Path
    log: Path

    def systemctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        cmd = ["systemctl", "--user", *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        done = self.systemctl("show", *(f"-p{p}" for p in props), unit)
        assert done.returncode == 0, done.stderr
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    def diagnostics(self) -> str:
        return f"manager log:\n{self.log.read_text(errors='replace')[-4000:]}"


def _mkdirs(path: Path, created: list[Path], mode: int = 0o755) -> None:
    """``mkdir -p`` that records each directory it made, parents first."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=mode)
        created.append(directory)


def _cgroup_pids(top: Path) -> list[int]:
    pids = []
    for directory, _dirs, _files in os.walk(top):
        with contextlib.suppress(FileNotFoundError):  # removed while walking
            pids += [int(p) for p in Path(directory, "cgroup.procs").read_text().split()]
    return pids


def _remove_cgroup_tree(top: Path) -> None:
    """Kill what is left in ``top`` (all of it started by our manager), then rmdir bottom-up."""
    for pid in _cgroup_pids(top):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _cgroup_pids(top), timeout=10, what=f"{top} to empty")
    for directory, _dirs, _files in os.walk(top, topdown=False):
        os.rmdir(directory)  # cgroupfs: the control files go with the directory


@pytest.fixture
def user_manager(tmp_path: Path) -> Iterator[UserManager]:
    if (RUNTIME / "systemd" / "private").exists():
        pytest.skip(f"a user manager already listens on {RUNTIME}/systemd/private")
    home = tmp_path / "home"
    config = home / ".config"
    config.mkdir(parents=True)
    log_path = tmp_path / "manager.log"
    created: list[Path] = []
    proc: subprocess.Popen[bytes] | None = None
    try:
        _mkdirs(BOOTED, created)
        cgroups = [root / USER_CGROUP for root in CGROUP_ROOTS]
        for cgroup in cgroups:
            _mkdirs(cgroup, created)
        _mkdirs(RUNTIME, created, mode=0o700)
        manager_env = {
            "HOME": str(home),
            "USER": "root",
            "LOGNAME": "root",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(RUNTIME),
            "XDG_CONFIG_HOME": str(config),  # where `service install` writes the unit
            # Its own lines still go to /dev/console (notes §2.4); generators write to the file.
            "SYSTEMD_LOG_TARGET": "console",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if "SYSTEMD_LOG_LEVEL" in os.environ:  # e.g. debug, to see the notify messages
            manager_env["SYSTEMD_LOG_LEVEL"] = os.environ["SYSTEMD_LOG_LEVEL"]
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _START, "sh", *map(str, cgroups)],
                env=manager_env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(config), XDG_RUNTIME_DIR=str(RUNTIME))
        manager = UserManager(env=env, home=home, log=log_path)

        def running() -> bool:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(
                    f"systemd --user exited {proc.returncode}\n{manager.diagnostics()}"
                )
            if not (RUNTIME / "systemd" / "private").exists():
                return False
            state = manager.systemctl("is-system-running", timeout=10).stdout.strip()
            return state in ("running", "degraded")

        wait_for(running, timeout=30, what="systemd --user to run")
        yield manager
    finally:
        errors: list[str] = []
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a user manager starts exit.target
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                errors.append("systemd --user ignored SIGTERM for 30 s; killed")
                proc.kill()
                proc.wait(timeout=10)
        for path in reversed(created):
            try:
                if path.is_relative_to("/sys/fs/cgroup"):
                    _remove_cgroup_tree(path)
                elif path == RUNTIME:
                    shutil.rmtree(path)
                else:
                    path.rmdir()
            except (OSError, AssertionError) as exc:
                errors.append(f"could not remove {path}: {exc}")
        if errors:
            pytest.fail("teardown: " + "; ".join(errors))


def _state(manager: UserManager, unit: str) -> dict[str, str]:
    return manager.show(unit, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts")


def _running(manager: UserManager, unit: str) -> dict[str, str] | None:
    """The unit's state once it is active/running with a StatusText, else None."""
    state = _state(manager, unit)
    ok = state["ActiveState"] == "active" and state["SubState"] == "running"
    return state if ok and state["StatusText"] else None


def test_install_start_save_reload_stop_uninstall(user_manager: UserManager, tmp_path: Path):
    manager = user_manager
    repo = example_repo(tmp_path, commit_outputs=True).resolve()
    unit = instance_name(repo)
    daemon_log = tmp_path / "daemon.log"
    # No journald runs here; a drop-in (in the temporary config, not the unit under test)
    # sends the daemon's JSON log lines to a file, for the reload check and for diagnostics.
    dropin = Path(manager.env["XDG_CONFIG_HOME"], "systemd", "user", "modwatch@.service.d")
    dropin.mkdir(parents=True)
    (dropin / "e2e-log.conf").write_text(
        f"[Service]\nStandardOutput=append:{daemon_log}\nStandardError=append:{daemon_log}\n"
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "daemon", "service", *args, "--repo", str(repo)]
        return subprocess.run(
            cmd, cwd=repo, env=manager.env, capture_output=True, text=True, timeout=120
        )

    def diagnostics() -> str:
        log = daemon_log.read_text(errors="replace")[-4000:] if daemon_log.exists() else ""
        status = manager.systemctl("status", "--no-pager", "--full", unit).stdout
        return f"{status}\ndaemon log:\n{log}\n{manager.diagnostics()}"

    installed = cli("install", "--now")
    try:
        assert installed.returncode == 0, installed.stderr + diagnostics()
        enable = shlex.join(["systemctl", "--user", "enable", "--now", unit])
        assert f"ran: {enable}" in installed.stdout, installed.stdout
        assert not (Path(os.environ["HOME"]) / ".config" / "systemd").exists()
        started = wait_for(
            lambda: _running(manager, unit),
            timeout=60,
            what=f"{unit} active/running with a status",
        )
        assert started["StatusText"].startswith("watching"), started
        main_pid = started["MainPID"]
        assert event(daemon_log, "daemon.started"), diagnostics()

        source = repo / MODULAR
        source.write_text(source.read_text().replace("return -x\n", "return -x  # e2e save\n"))
        wait_for(
            lambda: "e2e save" in (repo / MODELING).read_text(),
            timeout=60,
            what=f"{MODELING} regenerated",
        )
        wait_for(
            lambda: "last run" in _state(manager, unit)["StatusText"],
            timeout=30,
            what="STATUS= after the batch",
        )

        reloaded = manager.systemctl("reload", unit)
        assert reloaded.returncode == 0, reloaded.stderr + diagnostics()
        # SIGHUP -> RELOADING=1, config re-read, READY=1: the daemon logs in between.
        wait_for(lambda: event(daemon_log, "daemon.reloaded"), timeout=30, what="daemon.reloaded")
        after = wait_for(
            lambda: _running(manager, unit),
            timeout=30,
            what="active/running after the reload",
        )
        assert after["MainPID"] == main_pid and after["NRestarts"] == "0", after
        assert after["StatusText"].startswith("watching"), after

        stopped = manager.systemctl("stop", unit)
        assert stopped.returncode == 0, stopped.stderr + diagnostics()
        end = manager.show(unit, "ActiveState", "Result", "ExecMainStatus")
        assert end == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}, (
            f"{end}\n{diagnostics()}"
        )
        assert event(daemon_log, "daemon.stopped"), diagnostics()
    finally:
        removed = cli("uninstall")
    assert removed.returncode == 0, removed.stderr + diagnostics()
    disable = shlex.join(["systemctl", "--user", "disable", "--now", unit])
    assert f"ran: {disable}" in removed.stdout, removed.stdout
    assert not Path(manager.env["XDG_CONFIG_HOME"], "systemd", "user", "modwatch@.service").exists()
