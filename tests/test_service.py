"""sd_notify against sockets we bind, unit names against systemd-escape, the unit against
systemd-analyze, and install/uninstall/status against a fake systemctl."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon import service
from daemon.errors import DaemonError

REPO_ROOT = Path(__file__).resolve().parent.parent
needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: sun_path holds 108 bytes, pytest's tmp_path can be long."""
    path = Path(tempfile.mkdtemp(prefix="mw-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def notify_socket(short_dir: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A bound datagram socket and the environment that points NOTIFY_SOCKET at it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(short_dir / "notify"))
        server.settimeout(2)
        yield server, {"NOTIFY_SOCKET": str(short_dir / "notify")}


NOTIFICATIONS = [
    (lambda n: n.ready(), {"READY": "1"}),
    (lambda n: n.status("watching 3 sources"), {"STATUS": "watching 3 sources"}),
    (lambda n: n.status("two\nlines  é"), {"STATUS": "two lines é"}),
    (lambda n: n.watchdog(), {"WATCHDOG": "1"}),
    (lambda n: n.stopping(), {"STOPPING": "1"}),
]


@pytest.mark.parametrize(("send", "expected"), NOTIFICATIONS)
def test_notifier_sends_one_datagram_per_message(notify_socket, send, expected):
    """Each Notifier method arrives as one datagram of KEY=VALUE lines (a status on one line)."""
    server, env = notify_socket
    assert send(service.Notifier(env)) is True
    assert _fields(server.recv(4096)) == expected


def test_reloading_carries_a_monotonic_timestamp(notify_socket):
    """RELOADING=1 comes with MONOTONIC_USEC from CLOCK_MONOTONIC, as newer systemd requires."""
    server, env = notify_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert service.Notifier(env).reloading()
    fields = _fields(server.recv(4096))
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_notify_reaches_an_abstract_socket():
    """A leading @ in NOTIFY_SOCKET names the Linux abstract namespace."""
    name = f"modwatch-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        assert service.notify("READY=1\nSTATUS=up", env={"NOTIFY_SOCKET": "@" + name})
        assert _fields(server.recv(4096)) == {"READY": "1", "STATUS": "up"}


@pytest.mark.parametrize("address", [None, "", "vsock:2:1234", "relative/path"])
def test_notify_is_a_no_op_without_a_usable_socket(address):
    """Not under a service manager (or an address we do not speak): nothing sent, False."""
    env = {} if address is None else {"NOTIFY_SOCKET": address}
    assert service.notify("READY=1", env=env) is False
    assert service.Notifier(env).ready() is False


def test_notify_uses_os_environ_by_default(notify_socket, monkeypatch):
    """Without ``env`` the process environment is read."""
    server, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    assert service.notify("WATCHDOG=1")
    assert server.recv(4096) == b"WATCHDOG=1"


def test_a_dead_socket_is_warned_about_once(short_dir):
    """A stale NOTIFY_SOCKET makes notify raise, and the Notifier log one warning, not crash."""
    env = {"NOTIFY_SOCKET": str(short_dir / "gone")}
    with pytest.raises(OSError):
        service.notify("READY=1", env=env)
    notifier = service.Notifier(env)
    with capture_logs() as logs:
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    assert [e["event"] for e in logs] == ["service.notify_failed"]
    assert logs[0]["log_level"] == "warning"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}, 2.0),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "me"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_when_the_watchdog_is_ours(env, expected):
    """Half of WATCHDOG_USEC in seconds, unless WATCHDOG_PID names another process."""
    assert service.Notifier(env).watchdog_interval() == expected


TRICKY_PATHS = [
    "/home/dev/src/my-repo",
    "/a b/c",
    "/a/.b",
    "/.hidden",
    "/x//y/",
    "/ü/ñ",
    "/a:b@c+d",
    "/a/./b",
    "/",
    "/a_b/c.d-e",
    "/a%b$c\\d",
    "/tmp/~x",
    "/caf\udce9",  # a file name that is not UTF-8 (surrogateescape)
]


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="no systemd-escape")
@pytest.mark.parametrize("path", TRICKY_PATHS)
def test_escape_path_matches_systemd_escape(path):
    """The pure-Python port gives what ``systemd-escape --path`` prints."""
    done = subprocess.run(
        [b"systemd-escape", b"--path", b"--", os.fsencode(path)], capture_output=True, check=True
    )
    assert service.escape_path(path) == os.fsdecode(done.stdout.strip())


def test_escape_path_refuses_parent_references():
    """``..`` cannot be escaped reversibly; systemd-escape refuses it too."""
    with pytest.raises(ValueError, match="not a normalized path"):
        service.escape_path("/a/../b")


def test_instance_name_and_its_length_limit():
    """The instance is the escaped path; a name over 255 characters is a DaemonError."""
    assert (
        service.instance_name(Path("/home/dev/my-repo")) == "modwatch@home-dev-my\\x2drepo.service"
    )
    with pytest.raises(DaemonError, match="systemd allows 255") as info:
        service.instance_name(Path("/" + "-" * 70))
    assert info.value.hint is not None and "modwatch watch --repo" in info.value.hint


def test_the_packaged_unit_is_the_checked_in_unit():
    """daemon/resources/ ships an exact copy of systemd/modwatch@.service."""
    packaged = (REPO_ROOT / "daemon" / "resources" / service.TEMPLATE).read_bytes()
    assert packaged == (REPO_ROOT / "systemd" / service.TEMPLATE).read_bytes()


def test_render_unit_points_exec_start_at_the_executable():
    """Only the placeholder changes; the instance path stays /%I."""
    text = service.render_unit(Path("/opt/venv/bin/modwatch"))
    assert "ExecStart=/opt/venv/bin/modwatch watch --repo /%I\n" in text
    assert service.PLACEHOLDER not in text
    template = (REPO_ROOT / "systemd" / service.TEMPLATE).read_text()
    assert text == template.replace(service.PLACEHOLDER, "/opt/venv/bin/modwatch")


def test_render_unit_quotes_spaces_and_percent_signs():
    """A space needs double quotes and a % must not be read as a specifier."""
    text = service.render_unit(Path("/home/a b/100%/modwatch"))
    assert 'ExecStart="/home/a b/100%%/modwatch" watch --repo /%I\n' in text


@pytest.mark.parametrize("path", ["bin/modwatch", "/a'b/modwatch", "/a$HOME/modwatch", "/a\nb"])
def test_render_unit_refuses_paths_it_cannot_write(path):
    """Relative paths and characters with a meaning in unit files are refused."""
    with pytest.raises(DaemonError):
        service.render_unit(Path(path))


def test_default_executable_is_beside_the_interpreter():
    """Not resolved, so a venv's script is found rather than the base interpreter's."""
    assert service.default_executable() == Path(sys.executable).parent / "modwatch"


def test_unit_dir_follows_xdg(tmp_path):
    """XDG_CONFIG_HOME when absolute, else ~/.config."""
    home = str(tmp_path)
    cfg = str(tmp_path / "cfg")
    assert service.unit_dir({"XDG_CONFIG_HOME": cfg}) == Path(cfg, "systemd/user")
    assert service.unit_dir({"XDG_CONFIG_HOME": "rel", "HOME": home}) == Path(
        home, ".config/systemd/user"
    )
    assert service.unit_dir({"HOME": home}) == tmp_path / ".config/systemd/user"
    assert service.unit_dir() == Path(os.environ["XDG_CONFIG_HOME"], "systemd/user")


# --- install / uninstall / status against a fake systemctl ----------------------------------


class FakeSystemctl:
    """Records ``systemctl --user`` calls; answers like a running user manager."""

    def __init__(self, state: str = "running", fail: str | None = None, out: str = "") -> None:
        self.calls: list[list[str]] = []
        self.state, self.fail, self.out = state, fail, out

    def __call__(self, args, *, env, capture_output, text, check):
        assert args[:2] == ["systemctl", "--user"] and capture_output and text and not check
        assert isinstance(env, dict)
        verb = args[2]
        self.calls.append(args[2:])
        if verb == "is-system-running":
            rc = 0 if self.state == "running" else 1
            return subprocess.CompletedProcess(args, rc, f"{self.state}\n", "")
        if verb == self.fail:
            return subprocess.CompletedProcess(args, 1, "", "Access denied\n")
        return subprocess.CompletedProcess(args, 3 if verb == "status" else 0, self.out, "")


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "modwatch"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def reachable(tmp_path: Path) -> dict[str, str]:
    """An environment whose $XDG_RUNTIME_DIR has a user manager's private socket."""
    runtime = tmp_path / "run"
    (runtime / "systemd").mkdir(parents=True)
    (runtime / "systemd" / "private").touch()
    return {
        "HOME": os.environ["HOME"],
        "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"],
        "XDG_RUNTIME_DIR": str(runtime),
    }


def _unit() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"], "systemd", "user", service.TEMPLATE)


def test_install_enables_and_starts_through_systemctl(git_repo, stub, reachable):
    """daemon-reload, then ``enable --now <instance>``; the rendered unit is written."""
    fake = FakeSystemctl()
    lines = service.install(
        git_repo, now=True, enable=True, env=reachable, runner=fake, executable=stub
    )
    name = service.instance_name(git_repo.resolve())
    assert fake.calls == [["is-system-running"], ["daemon-reload"], ["enable", "--now", name]]
    assert _unit().read_text() == service.render_unit(stub)
    assert oct(_unit().stat().st_mode & 0o777) == "0o644"
    assert lines[0] == f"wrote {_unit()}"
    assert "ran: systemctl --user daemon-reload" in lines
    assert lines[-1].endswith(service.LINGER)
    assert not list(_unit().parent.glob(".*"))  # no temp file left behind


@pytest.mark.parametrize(
    ("now", "enable", "last"),
    [(False, True, ["enable"]), (True, False, ["start"]), (False, False, ["daemon-reload"])],
)
def test_install_flags_choose_the_commands(git_repo, stub, reachable, now, enable, last):
    """--now without enable only starts; --no-enable alone only reloads."""
    fake = FakeSystemctl()
    service.install(git_repo, now=now, enable=enable, env=reachable, runner=fake, executable=stub)
    assert fake.calls[-1][: len(last)] == last
    assert len(fake.calls) == (2 if last == ["daemon-reload"] else 3)


def test_install_reports_a_failing_systemctl(git_repo, stub, reachable):
    """systemctl's own message and the command end up in the DaemonError."""
    fake = FakeSystemctl(fail="enable")
    with pytest.raises(DaemonError, match=r"`systemctl --user enable .*` failed: Access denied"):
        service.install(
            git_repo, now=False, enable=True, env=reachable, runner=fake, executable=stub
        )


def test_install_without_a_user_manager_prints_the_commands(git_repo, stub, monkeypatch):
    """No $XDG_RUNTIME_DIR: the unit lands in $XDG_CONFIG_HOME and the lines say what to run."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    fake = FakeSystemctl()
    lines = service.install(git_repo, now=True, enable=True, runner=fake, executable=stub)
    name = service.instance_name(git_repo.resolve())
    assert fake.calls == []
    assert _unit().read_text() == service.render_unit(stub)
    assert "not reachable" in lines[1]
    assert "  systemctl --user daemon-reload" in lines
    assert f"  systemctl --user enable --now '{name}'" in lines
    assert any(line.strip().startswith("loginctl enable-linger $USER") for line in lines)
    assert lines[-1].endswith(f"modwatch watch --repo {git_repo.resolve()}")


@pytest.mark.parametrize("fake", [FakeSystemctl(state="offline"), FakeSystemctl(state="unknown")])
def test_an_offline_manager_is_unreachable(git_repo, stub, reachable, fake):
    """A socket path alone is not enough: ``is-system-running`` must answer."""
    lines = service.install(
        git_repo, now=True, enable=True, env=reachable, runner=fake, executable=stub
    )
    assert fake.calls == [["is-system-running"]]
    assert "not reachable" in lines[1]


def test_a_degraded_manager_is_reachable(reachable):
    """``degraded`` exits 1, yet the manager is there."""
    assert service.manager_reachable(reachable, FakeSystemctl(state="degraded"))


def test_a_missing_systemctl_is_unreachable(reachable):
    """No systemctl binary: unreachable rather than a crash."""

    def runner(args, **_kwargs):
        raise FileNotFoundError(args[0])

    assert not service.manager_reachable(reachable, runner)


def test_install_refuses_a_non_repository_and_a_missing_script(tmp_path, git_repo, reachable):
    """Both are user errors with a hint, before anything is written."""
    with pytest.raises(DaemonError, match="not the top level of a git repository"):
        service.install(tmp_path, now=True, enable=True, env=reachable, runner=FakeSystemctl())
    with pytest.raises(DaemonError, match="does not exist"):
        service.install(
            git_repo,
            now=True,
            enable=True,
            env=reachable,
            runner=FakeSystemctl(),
            executable=tmp_path / "nope",
        )
    assert not _unit().exists()


def _enable_by_hand(name: str) -> None:
    wants = _unit().parent / "default.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / name).symlink_to(_unit())


def test_uninstall_removes_the_template_when_no_instance_is_left(git_repo, stub, reachable):
    """disable --now, then the template goes and the manager reloads."""
    service.install(
        git_repo, now=True, enable=True, env=reachable, runner=FakeSystemctl(), executable=stub
    )
    name = service.instance_name(git_repo.resolve())
    _enable_by_hand(name)  # what the real `enable` would have done
    fake = FakeSystemctl()
    lines = service.uninstall(git_repo, env=reachable, runner=fake)
    assert fake.calls == [["is-system-running"], ["disable", "--now", name], ["daemon-reload"]]
    assert not _unit().exists()
    assert f"removed {_unit()}" in lines


def test_uninstall_keeps_the_template_for_other_instances(git_repo, stub, reachable):
    """Another enabled instance still needs modwatch@.service."""
    service.install(
        git_repo, now=True, enable=True, env=reachable, runner=FakeSystemctl(), executable=stub
    )
    _enable_by_hand("modwatch@other.service")
    fake = FakeSystemctl()
    lines = service.uninstall(git_repo, env=reachable, runner=fake)
    assert fake.calls[-1][:2] == ["disable", "--now"]
    assert _unit().exists()
    assert lines[-1] == f"kept {_unit()}: still enabled for modwatch@other.service"


def test_uninstall_without_a_user_manager_prints_the_commands(git_repo, stub):
    """Nothing is removed; the lines say how (rm only when no other instance is enabled)."""
    env = {"XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}
    service.install(git_repo, now=True, enable=True, env=env, executable=stub)
    fake = FakeSystemctl()
    lines = service.uninstall(git_repo, env=env, runner=fake)
    assert fake.calls == []
    assert _unit().exists()
    assert lines[1].startswith("  systemctl --user disable --now ")
    assert lines[2:] == [f"  rm {_unit()}", "  systemctl --user daemon-reload"]


def test_uninstall_when_nothing_is_installed(git_repo, reachable):
    """No template: nothing to disable, systemctl is not called."""
    fake = FakeSystemctl()
    assert service.uninstall(git_repo, env=reachable, runner=fake)[0].startswith("nothing to do")
    assert fake.calls == []


def test_status_shows_systemctl_status(git_repo, reachable):
    """The unit file line, then systemctl's output even though it exits 3 (inactive)."""
    fake = FakeSystemctl(out='○ modwatch@x.service\n     Status: "watching 3 sources"\n')
    text = service.status(git_repo, env=reachable, runner=fake)
    name = service.instance_name(git_repo.resolve())
    assert fake.calls[-1] == ["status", "--no-pager", "--full", "--lines=10", name]
    assert text.splitlines()[0].startswith("unit file: not installed")
    assert 'Status: "watching 3 sources"' in text


def test_status_without_a_user_manager_says_so(git_repo):
    """One clear line instead of systemctl's "Failed to connect to bus"."""
    text = service.status(git_repo, env={"HOME": os.environ["HOME"]}, runner=FakeSystemctl())
    assert "user manager is not reachable" in text


# --- systemd-analyze (notes §2.1, §2.2) -----------------------------------------------------


def _analyze_env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "runtime"  # --user fails without an existing XDG_RUNTIME_DIR
    runtime.mkdir(exist_ok=True)
    return {
        "HOME": str(tmp_path / "home"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "XDG_RUNTIME_DIR": str(runtime),
        "LANG": "C.UTF-8",
    }


def _rendered(tmp_path: Path, bindir: str, *names: str) -> list[Path]:
    exe = tmp_path / "home" / bindir / "modwatch"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for name in names:
        (units / name).write_text(service.render_unit(exe))
    return [units / name for name in names]


@needs_analyze
@pytest.mark.parametrize("bindir", [".local/bin", "my bin/100%"])
def test_systemd_analyze_verify_is_silent(tmp_path, bindir):
    """The template and a concrete instance verify with empty stderr (warnings exit 0 too)."""
    instance = service.instance_name(Path("/home/dev/src/my-repo"))
    units = _rendered(tmp_path, bindir, service.TEMPLATE, instance)
    done = subprocess.run(
        ["systemd-analyze", "--user", "verify", *map(str, units)],
        env=_analyze_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")


@needs_analyze
def test_systemd_analyze_security_exposure_is_below_8(tmp_path):
    """The offline exposure score stays under 8.0 (it was 6.3 when written)."""
    [unit] = _rendered(tmp_path, ".local/bin", service.TEMPLATE)
    done = subprocess.run(
        ["systemd-analyze", "--user", "security", "--offline=yes", "--threshold=80", str(unit)],
        env=_analyze_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) < 8.0
    assert done.returncode == 0, done.stderr
