"""systemd integration: sd_notify, journald helpers and the per-repository user unit.

Pure Python, no systemd library (service notes §1.6: systemd-python needs a C build). The
protocols are small: sd_notify is one datagram to ``$NOTIFY_SOCKET``; journald reads our stderr
and strips a ``<N>`` priority prefix from each line (§1.5).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from daemon.errors import DaemonError
from daemon.log import get_logger

log = get_logger()

TEMPLATE = "modwatch@.service"
PLACEHOLDER = "@MODWATCH@"
MAX_UNIT_NAME = 255  # systemd's UNIT_NAME_MAX (notes §1.1)
LINGER = "loginctl enable-linger $USER"
_SEND_TIMEOUT_S = 2.0  # a stalled manager must not wedge the loop that pings the watchdog

Runner = Callable[..., "CompletedProcess[Any]"]  # subprocess.run, or a test's fake


# --- sd_notify (notes §1.6) -------------------------------------------------------------------


def notify(message: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (``KEY=VALUE`` lines) as one datagram to ``$NOTIFY_SOCKET`` in ``env``.

    Returns True when sent, False (a no-op) when not under a service manager. Raises OSError
    when the socket is gone or full; ``Notifier`` turns that into one warning.
    """
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]  # Linux abstract namespace
    elif not address.startswith("/"):
        return False  # unset, or a vsock: address, which systemd only hands to VMs
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(_SEND_TIMEOUT_S)
        sock.sendto(message.encode("utf-8"), address)
    return True


class Notifier:
    """The daemon's side of sd_notify: never raises, warns once if the socket fails.

    ``env`` (default ``os.environ``) is copied, so later changes to it do not matter.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._warned = False

    def ready(self) -> bool:
        """Start-up (or a reload) is complete: ``systemctl start`` returns now."""
        return self._send("READY=1")

    def status(self, text: str) -> bool:
        """A one-line human summary, shown by ``systemctl status``."""
        return self._send("STATUS=" + " ".join(text.split()))  # a newline would start a new key

    def watchdog(self) -> bool:
        """Keep-alive; send every ``watchdog_interval()`` seconds from the working loop."""
        return self._send("WATCHDOG=1")

    def reloading(self) -> bool:
        """A reload started; send ``ready()`` when it is done (notes §1.2)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """Shutdown started."""
        return self._send("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when no watchdog is ours."""
        pid = self._env.get("WATCHDOG_PID")
        try:
            if pid is not None and int(pid) != os.getpid():
                return None  # the variables were inherited from the process systemd watches
            usec = int(self._env.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 2e6 if usec > 0 else None

    def _send(self, message: str) -> bool:
        try:
            return notify(message, env=self._env)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "service.notify_failed", error=str(exc), socket=self._env.get("NOTIFY_SOCKET")
                )
            return False


# --- unit names (notes §1.1) ------------------------------------------------------------------


def escape_path(path: str) -> str:
    """``systemd-escape --path``; raises ValueError for a ``..`` component, as it does."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{path!r} is not a normalized path")
    if not parts:
        return "-"
    out: list[str] = []
    for i, ch in enumerate("/".join(parts)):
        if ch == "/":
            out.append("-")
        elif (ch.isascii() and (ch.isalnum() or ch in ":_")) or (ch == "." and i > 0):
            out.append(ch)
        else:  # surrogateescape gives undecodable file-name bytes back as they were
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def instance_name(repo: Path) -> str:
    """``modwatch@<escaped repo>.service``; DaemonError past 255 characters (``-`` costs 4)."""
    name = f"modwatch@{escape_path(os.path.abspath(repo))}.service"
    if len(name) > MAX_UNIT_NAME:
        raise DaemonError(
            f"the unit name for {repo} has {len(name)} characters; systemd allows {MAX_UNIT_NAME}",
            hint=f"run `modwatch watch --repo {shlex.quote(str(repo))}` in the foreground instead",
        )
    return name


# --- the unit file ----------------------------------------------------------------------------


def default_executable() -> Path:
    """The ``modwatch`` script beside the running interpreter."""
    # Not resolved: a venv's python is a symlink to a base interpreter that has no modwatch.
    return Path(sys.executable).parent / "modwatch"


def render_unit(executable: Path) -> str:
    """The unit template with ``ExecStart`` pointing at ``executable`` (which must be absolute)."""
    template = resources.files("daemon") / "resources" / TEMPLATE
    return template.read_text(encoding="utf-8").replace(PLACEHOLDER, _exec_word(executable))


def _exec_word(executable: Path) -> str:
    """``executable`` as the first word of ``ExecStart=`` (systemd.service(5) "Command lines")."""
    text = str(executable)
    if not executable.is_absolute():
        raise DaemonError(f"ExecStart needs an absolute path, not {text}")
    if any(ch in "\"'\\$" or not ch.isprintable() for ch in text):
        raise DaemonError(
            f"cannot write {text!r} into a unit file",
            hint="install modwatch under a path free of quotes, backslashes, $ and control bytes",
        )
    text = text.replace("%", "%%")  # specifiers are expanded in ExecStart=
    return f'"{text}"' if " " in text else text


def unit_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CONFIG_HOME/systemd/user``, with the XDG fallback ``~/.config``."""
    config = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config):  # the XDG spec says to ignore a relative value
        config = os.path.join(env.get("HOME") or Path.home(), ".config")
    return Path(config, "systemd", "user")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- systemctl --user (notes §1.7) ------------------------------------------------------------


def manager_reachable(env: Mapping[str, str], runner: Runner = subprocess.run) -> bool:
    """True when ``systemctl --user`` can talk to a user manager."""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    sockets = [Path(runtime, "systemd", "private"), Path(runtime, "bus")] if runtime else []
    if not env.get("DBUS_SESSION_BUS_ADDRESS") and not any(s.exists() for s in sockets):
        return False  # systemctl would only say "Failed to connect to bus"
    try:
        done = _run(runner, ["is-system-running"], env)
    except OSError:
        return False  # no systemctl at all
    # "degraded" (a failed unit somewhere) exits 1 yet is reachable; "offline" means no manager.
    return str(done.stdout).strip() not in ("", "offline", "unknown")


def _run(runner: Runner, args: Sequence[str], env: Mapping[str, str]) -> CompletedProcess[Any]:
    cmd = ["systemctl", "--user", *args]
    return runner(cmd, env=dict(env), capture_output=True, text=True, check=False)


def _systemctl(runner: Runner, env: Mapping[str, str], args: Sequence[str]) -> str:
    done = _run(runner, args, env)
    command = _command(args)
    if done.returncode != 0:
        raise DaemonError(
            f"`{command}` failed: {str(done.stderr or done.stdout).strip()}",
            hint="look at `journalctl --user -xe`",
        )
    return f"ran: {command}"


def _command(args: Sequence[str]) -> str:
    return shlex.join(["systemctl", "--user", *args])


_UNREACHABLE = (
    "the systemd user manager is not reachable from here (no $XDG_RUNTIME_DIR/systemd/private);"
    " in a login session (ssh or desktop) run:"
)


def install(
    repo: Path,
    *,
    now: bool,
    enable: bool,
    env: Mapping[str, str] = os.environ,
    runner: Runner = subprocess.run,
    executable: Path | None = None,
) -> list[str]:
    """Write the unit, daemon-reload and ``enable [--now]`` the instance; return lines to print.

    ``now`` without ``enable`` only starts it. ``executable`` defaults to
    ``default_executable()``. With no user manager reachable the lines give the commands to run.
    Raises DaemonError for a non-top-level ``repo``, a missing script or a failing systemctl.
    """
    repo = repo.resolve()
    if not (repo / ".git").exists():  # the unit's ConditionPathExists would skip it silently
        raise DaemonError(
            f"{repo} is not the top level of a git repository",
            hint='pass --repo "$(git rev-parse --show-toplevel)"',
        )
    name = instance_name(repo)
    executable = default_executable() if executable is None else executable
    if not executable.is_file():
        raise DaemonError(
            f"{executable} does not exist, so the service could not start it",
            hint="install modwatch into this environment (pip install modwatch), then retry",
        )
    unit = unit_dir(env) / TEMPLATE
    _write_atomic(unit, render_unit(executable))
    commands = [["daemon-reload"]]
    if enable:
        commands.append(["enable", "--now", name] if now else ["enable", name])
    elif now:
        commands.append(["start", name])
    lines = [f"wrote {unit}"]
    if not manager_reachable(env, runner):
        return [
            *lines,
            _UNREACHABLE,
            *(f"  {_command(args)}" for args in commands),
            f"  {LINGER}    # start it at boot and keep it running after logout",
            f"or run modwatch in the foreground: modwatch watch --repo {shlex.quote(str(repo))}",
        ]
    lines += [_systemctl(runner, env, args) for args in commands]
    if not now:
        lines.append(f"start it now with: {_command(['start', name])}")
    return [*lines, f"to keep it running after logout: {LINGER}"]


def _other_instances(directory: Path, name: str) -> list[str]:
    """Enabled modwatch instances besides ``name``: their symlinks in ``*.wants/``."""
    return sorted({p.name for p in directory.glob("*.wants/modwatch@*.service")} - {name})


def uninstall(
    repo: Path, *, env: Mapping[str, str] = os.environ, runner: Runner = subprocess.run
) -> list[str]:
    """Disable and stop the instance; remove the template unless another instance is enabled.

    Only enabled instances count (an instance started by hand is not looked for). Returns the
    lines to print.
    """
    name = instance_name(repo.resolve())
    unit = unit_dir(env) / TEMPLATE
    if not unit.exists():
        return [f"nothing to do: {unit} is not installed"]
    others = _other_instances(unit.parent, name)
    kept = [f"kept {unit}: still enabled for {', '.join(others)}"] if others else []
    if not manager_reachable(env, runner):
        lines = [_UNREACHABLE, f"  {_command(['disable', '--now', name])}"]
        if not others:
            lines += [f"  rm {shlex.quote(str(unit))}", f"  {_command(['daemon-reload'])}"]
        return [*lines, *kept]
    lines = [_systemctl(runner, env, ["disable", "--now", name])]
    if others:
        return [*lines, *kept]
    unit.unlink()
    return [*lines, f"removed {unit}", _systemctl(runner, env, ["daemon-reload"])]


def status(
    repo: Path, *, env: Mapping[str, str] = os.environ, runner: Runner = subprocess.run
) -> str:
    """The instance's state and the daemon's own ``STATUS=`` line, from ``systemctl status``."""
    name = instance_name(repo.resolve())
    unit = unit_dir(env) / TEMPLATE
    head = f"unit file: {unit}" if unit.exists() else f"unit file: not installed ({unit})"
    if not manager_reachable(env, runner):
        return f"{head}\n{name}: the systemd user manager is not reachable from here; state unknown"
    # Exit 3 (inactive) and 4 (no such unit) are answers, not failures: print whatever it says.
    done = _run(runner, ["status", "--no-pager", "--full", "--lines=10", name], env)
    return "\n".join(s for s in (head, str(done.stdout).rstrip(), str(done.stderr).rstrip()) if s)
