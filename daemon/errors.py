"""The errors modwatch expects: each says what happened and, in ``hint``, what to do."""

from __future__ import annotations

from pathlib import Path


class DaemonError(Exception):
    """An expected failure: the CLI maps it to exit code 2 and prints message and hint."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class ConfigError(DaemonError):
    """A configuration file, variable or flag has an unknown key or a wrong value."""


class ConvertError(DaemonError):
    """A modular file cannot be converted; names the file and, when known, the line."""

    def __init__(
        self, path: Path, message: str, *, line: int | None = None, hint: str | None = None
    ) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line
        self.cause = message


class GitError(DaemonError):
    """A git command failed in a way the user has to look at."""
