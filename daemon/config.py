"""Configuration: validated once, at the edge, into a frozen value.

Precedence, merged per key: CLI flags > ``MODWATCH_*`` environment > repository file
(``.modwatch.toml`` at the root, else ``[tool.modwatch]`` in ``pyproject.toml``) > user file
(``$XDG_CONFIG_HOME/modwatch/config.toml``) > defaults. Every bad value names where it came
from, the key and what is expected; no key is ever silently dropped.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from daemon.errors import ConfigError

GitMode = Literal["stage", "flag", "off"]
LogFormat = Literal["auto", "json", "console"]
OnCheckout = Literal["flag", "regenerate"]

GIT_MODES: tuple[GitMode, ...] = ("stage", "flag", "off")
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
ON_CHECKOUT: tuple[OnCheckout, ...] = ("flag", "regenerate")


@dataclass(frozen=True)
class Config:
    """The settings of one modwatch run; ``origins`` says where each non-default came from."""

    include: tuple[str, ...] = ("**/modular_*.py",)
    exclude: tuple[str, ...] = ()
    debounce_ms: int = 50
    max_wait_ms: int = 1600
    jobs: int = 0  # worker processes for a wave of dependents; 0: one per core
    git_mode: GitMode = "stage"
    hook_on_checkout: OnCheckout = "flag"
    format: bool = True
    log_format: LogFormat = "auto"
    log_level: str = "info"
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)


def _expect_globs(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def _expect_ms(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 600_000:
        return value
    return None


def _expect_jobs(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 256:
        return value
    return None


def _expect_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _expect_choice(choices: tuple[str, ...]) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        return value if isinstance(value, str) and value in choices else None

    return check


# dotted key -> (Config field, validator returning None when the value is wrong, expectation)
_SCHEMA: dict[str, tuple[str, Callable[[object], object | None], str]] = {
    "include": ("include", _expect_globs, "a list of non-empty glob strings"),
    "exclude": ("exclude", _expect_globs, "a list of non-empty glob strings"),
    "debounce_ms": ("debounce_ms", _expect_ms, "an integer number of milliseconds, 0-600000"),
    "max_wait_ms": ("max_wait_ms", _expect_ms, "an integer number of milliseconds, 0-600000"),
    "jobs": ("jobs", _expect_jobs, "an integer number of processes, 0-256 (0: one per core)"),
    "git.mode": ("git_mode", _expect_choice(GIT_MODES), 'one of "stage", "flag", "off"'),
    "hook.on_checkout": (
        "hook_on_checkout",
        _expect_choice(ON_CHECKOUT),
        'one of "flag", "regenerate"',
    ),
    "format": ("format", _expect_bool, "true or false"),
    "log.format": ("log_format", _expect_choice(LOG_FORMATS), 'one of "auto", "json", "console"'),
    "log.level": ("log_level", _expect_choice(LOG_LEVELS), f"one of {', '.join(LOG_LEVELS)}"),
}

KEYS: tuple[str, ...] = tuple(_SCHEMA)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, object]:
    """``{"git": {"mode": "flag"}}`` -> ``{"git.mode": "flag"}``; tables nest by dots."""
    flat: dict[str, object] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in _SCHEMA:
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _validate(values: Mapping[str, object], origin: str) -> dict[str, object]:
    """Check every key and value of one layer; return them keyed by Config field."""
    checked: dict[str, object] = {}
    for key, value in values.items():
        if key not in _SCHEMA:
            raise ConfigError(
                f"{origin}: unknown key {key!r}",
                hint=f"known keys: {', '.join(KEYS)} (see config.example.toml)",
            )
        name, validator, expected = _SCHEMA[key]
        result = validator(value)
        if result is None:
            raise ConfigError(f"{origin}: key {key!r} must be {expected}, got {value!r}")
        checked[name] = result
    return checked


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:  # tomllib needs a binary file
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        # On 3.11 the message carries "(at line N, column M)"; add the file ourselves.
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def repo_layer(root: Path) -> tuple[dict[str, object], str] | None:
    """The repository's own settings: ``.modwatch.toml`` wins over ``[tool.modwatch]``."""
    dotfile = root / ".modwatch.toml"
    if dotfile.is_file():
        return _flatten(_read_toml(dotfile)), str(dotfile)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        table = tool.get("modwatch") if isinstance(tool, dict) else None
        if isinstance(table, dict):
            return _flatten(table), f"{pyproject} [tool.modwatch]"
    return None


def _default_config_home(value: str | None) -> Path:
    """``$XDG_CONFIG_HOME`` when set and absolute (per the XDG spec), else ``~/.config``."""
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".config"


def user_config_path(env: Mapping[str, str]) -> Path:
    """Where the user's own config file lives."""
    return _default_config_home(env.get("XDG_CONFIG_HOME")) / "modwatch" / "config.toml"


def user_layer(env: Mapping[str, str]) -> tuple[dict[str, object], str] | None:
    path = user_config_path(env)
    if path.is_file():
        return _flatten(_read_toml(path)), str(path)
    return None


def _parse_env_value(key: str, raw: str) -> object:
    """Environment values are strings: turn them into the type the key expects."""
    if key in ("include", "exclude"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if key in ("debounce_ms", "max_wait_ms", "jobs"):
        return int(raw) if raw.strip().isdigit() else raw
    if key == "format":
        lowered = raw.strip().lower()
        return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(
            lowered, raw
        )
    return raw


def env_var_name(key: str) -> str:
    """``git.mode`` -> ``MODWATCH_GIT_MODE``."""
    return "MODWATCH_" + key.replace(".", "_").upper()


def env_layer(env: Mapping[str, str]) -> list[tuple[dict[str, object], str]]:
    """One layer per ``MODWATCH_*`` variable, so an error names the variable."""
    layers = []
    for key in KEYS:
        name = env_var_name(key)
        if name in env:
            layers.append(({key: _parse_env_value(key, env[name])}, f"environment {name}"))
    return layers


def load(
    root: Path,
    *,
    cli: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Build the Config for a repository.

    Args:
        root: the repository (worktree) root.
        cli: values given as command-line flags, keyed by dotted key (``git.mode``).
        env: the environment to read (``os.environ`` when None).

    Returns:
        A frozen Config; raises ConfigError naming file, key and expectation.
    """
    env = os.environ if env is None else env
    layers: list[tuple[dict[str, object], str]] = []
    for layer in (user_layer(env), repo_layer(root)):
        if layer is not None:
            layers.append(layer)
    layers.extend(env_layer(env))
    if cli:
        layers.append((dict(cli), "command line"))
    merged: dict[str, object] = {}
    origins: dict[str, str] = {}
    for values, origin in layers:  # lowest precedence first; later layers win per key
        checked = _validate(values, origin)
        merged.update(checked)
        origins.update(dict.fromkeys(checked, origin))
    config = Config(**cast(dict[str, Any], merged), origins=origins)
    if config.max_wait_ms < config.debounce_ms:
        raise ConfigError(
            f"{origins.get('max_wait_ms', 'defaults')}: max_wait_ms ({config.max_wait_ms}) "
            f"must not be shorter than debounce_ms ({config.debounce_ms})"
        )
    return config
