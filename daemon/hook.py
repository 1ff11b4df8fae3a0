"""Install and uninstall modwatch's git hooks as a guest in someone's repository (habit 9).

Hooks are written from ``resources/hook-tmpl``, which carries an ID-hash marker so we only
ever rewrite or remove our own scripts. A foreign hook is kept as ``<type>.legacy`` and run
first by ours; uninstall puts it back. Hooks go into the common git dir, which linked
worktrees share, or into ``core.hooksPath`` only when asked to (scenario 25).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from daemon import git
from daemon.errors import DaemonError

HOOK_TYPES = ("post-checkout", "post-merge", "post-rewrite")

# The template's marker line; a hook containing it is ours to rewrite or remove. Never change
# the hash: hooks installed by older versions must stay recognisable.
MARKER = b"# modwatch-hook-id: 3de879741e58633c98af7a19a79c960adf8531f8"
TEMPLATE = "hook-tmpl"
LEGACY_SUFFIX = ".legacy"


def is_ours(path: Path) -> bool:
    """Return whether ``path`` is a hook written by modwatch (it carries the ID-hash marker)."""
    try:
        return MARKER in path.read_bytes()
    except OSError:  # missing, a directory, a dangling link, unreadable: not ours
        return False


def render(hook_type: str, python: str) -> str:
    """Return the hook script for ``hook_type`` that runs modwatch with interpreter ``python``.

    Args:
        hook_type: one of :data:`HOOK_TYPES`.
        python: absolute path of the interpreter that has modwatch installed.
    """
    text = (resources.files("daemon") / "resources" / TEMPLATE).read_text(encoding="utf-8")
    # Shell-quoted: an interpreter path with a space or quote must stay one word.
    text = text.replace("@HOOK_TYPE@", shlex.quote(hook_type))
    return text.replace("@PYTHON@", shlex.quote(python))


def hooks_dir(root: Path, *, hooks_path: bool = False) -> Path:
    """Return the directory git runs this worktree's hooks from.

    Args:
        root: a worktree top level (main or linked).
        hooks_path: accept a configured ``core.hooksPath`` and return it.

    Returns:
        The common git dir's ``hooks/`` (shared by all worktrees), or ``core.hooksPath``
        resolved against ``root`` as git does when ``hooks_path`` is true and it is set.

    Raises:
        DaemonError: ``core.hooksPath`` is set and ``hooks_path`` is false. git ignores
            ``.git/hooks`` then, so a hook written there would silently never run.
    """
    configured = git.hooks_path_config(root)
    if configured is None:
        return git.common_dir(root) / "hooks"
    where = root / configured  # an absolute value replaces root, as for git
    if not hooks_path:
        raise DaemonError(
            f"core.hooksPath is set to {configured!r}: git runs hooks from {where}, "
            f"and ignores {git.common_dir(root) / 'hooks'}",
            hint="install there with `modwatch hook install --hooks-path` (another tool may "
            "own that directory), or unset it: git config --unset core.hooksPath",
        )
    return where


def _check_types(types: Sequence[str]) -> None:
    """Refuse hook types modwatch has no template behaviour for."""
    unknown = [t for t in types if t not in HOOK_TYPES]
    if unknown:
        raise DaemonError(
            f"unknown hook type {', '.join(unknown)}",
            hint=f"choose from --type {','.join(HOOK_TYPES)}",
        )


def _write_atomically(dest: Path, text: str) -> None:
    """Write an executable ``dest`` via a temp file in its directory and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o755)  # explicit: mkstemp's 0o600 is not executable, umask aside
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def install(
    root: Path,
    types: Sequence[str] = HOOK_TYPES,
    *,
    hooks_path: bool = False,
    python: str | None = None,
) -> list[str]:
    """Install modwatch's hooks, keeping any foreign hook as ``<type>.legacy``.

    Idempotent: our own hook is simply rewritten and an existing ``.legacy`` is kept.

    Args:
        root: a worktree top level.
        types: which hooks to install, a subset of :data:`HOOK_TYPES`.
        hooks_path: install into a configured ``core.hooksPath`` instead of refusing.
        python: the interpreter baked into the hooks (default: the running one).

    Returns:
        One message per action, for the CLI to print.

    Raises:
        DaemonError: an unknown type; ``core.hooksPath`` set without ``hooks_path``; or a
            foreign hook whose ``.legacy`` slot is taken too. Nothing is written then.
    """
    _check_types(types)
    where = hooks_dir(root, hooks_path=hooks_path)
    # Decide everything before touching anything, so a refusal leaves the directory as it was.
    blocked = [
        t
        for t in types
        if _present(where / t) and not is_ours(where / t) and _present(_legacy(where / t))
    ]
    if blocked:
        names = ", ".join(f"{where / t} and {_legacy(where / t).name}" for t in blocked)
        raise DaemonError(
            f"not installing: {names} both exist and neither is modwatch's; "
            "keeping one as .legacy would overwrite the other",
            hint="merge or remove one of them, then run `modwatch hook install` again",
        )
    where.mkdir(parents=True, exist_ok=True)  # an empty template dir leaves no hooks/
    interpreter = python if python is not None else sys.executable
    messages = []
    for hook_type in types:
        dest = where / hook_type
        if _present(dest) and not is_ours(dest):
            # A rename keeps the user's bytes, mode and symlinks exactly (uninstall renames back).
            os.replace(dest, _legacy(dest))
            messages.append(f"kept the existing {dest} as {_legacy(dest).name}; it runs first")
        _write_atomically(dest, render(hook_type, interpreter))
        messages.append(f"installed {dest}")
    return messages


def uninstall(
    root: Path, types: Sequence[str] = HOOK_TYPES, *, hooks_path: bool = False
) -> list[str]:
    """Remove modwatch's hooks and put back the ``.legacy`` hook each one kept.

    Hooks without our marker are never touched.

    Args:
        root: a worktree top level.
        types: which hooks to remove, a subset of :data:`HOOK_TYPES`.
        hooks_path: act on a configured ``core.hooksPath`` instead of refusing.

    Returns:
        One message per hook type, for the CLI to print.

    Raises:
        DaemonError: an unknown type, or ``core.hooksPath`` set without ``hooks_path``.
    """
    _check_types(types)
    where = hooks_dir(root, hooks_path=hooks_path)
    messages = []
    for hook_type in types:
        dest = where / hook_type
        if not is_ours(dest):
            state = "is not modwatch's, left alone" if _present(dest) else "is not installed"
            messages.append(f"{dest} {state}")
            continue
        dest.unlink()
        if _present(_legacy(dest)):
            os.replace(_legacy(dest), dest)
            messages.append(f"removed {dest} and restored the hook it kept")
        else:
            messages.append(f"removed {dest}")
    return messages


def _legacy(hook: Path) -> Path:
    return hook.with_name(hook.name + LEGACY_SUFFIX)


def _present(path: Path) -> bool:
    """Return whether anything, even a dangling symlink, occupies ``path``."""
    return os.path.lexists(path)
