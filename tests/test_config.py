"""Config: defaults, each layer, per-key precedence and every error path."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import config
from daemon.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_configured(tmp_path):
    cfg = config.load(tmp_path, env={})
    assert cfg == config.Config()
    assert cfg.include == ("**/modular_*.py",)
    assert cfg.git_mode == "stage" and cfg.format is True and cfg.log_format == "auto"
    assert cfg.origins == {}


def test_dotfile_sets_nested_keys(tmp_path):
    _write(tmp_path / ".modwatch.toml", 'debounce_ms = 20\n[git]\nmode = "flag"\n')
    cfg = config.load(tmp_path, env={})
    assert cfg.debounce_ms == 20 and cfg.git_mode == "flag"
    assert cfg.origins["git_mode"] == str(tmp_path / ".modwatch.toml")


def test_pyproject_tool_table_is_read(tmp_path):
    _write(tmp_path / "pyproject.toml", '[tool.modwatch]\nexclude = ["build/**"]\n')
    assert config.load(tmp_path, env={}).exclude == ("build/**",)


def test_pyproject_without_table_is_ignored(tmp_path):
    _write(tmp_path / "pyproject.toml", "[tool.ruff]\nline-length = 119\n")
    assert config.load(tmp_path, env={}) == config.Config()


def test_dotfile_wins_over_pyproject_without_merging(tmp_path):
    _write(tmp_path / "pyproject.toml", "[tool.modwatch]\ndebounce_ms = 5\nformat = false\n")
    _write(tmp_path / ".modwatch.toml", "debounce_ms = 7\n")
    cfg = config.load(tmp_path, env={})
    assert cfg.debounce_ms == 7 and cfg.format is True


def test_precedence_cli_env_repo_user_defaults_per_key(tmp_path):
    home = tmp_path / "xdg"
    _write(
        home / "modwatch" / "config.toml",
        'debounce_ms = 1\nmax_wait_ms = 900\n[log]\nlevel = "debug"\n',
    )
    _write(tmp_path / ".modwatch.toml", 'debounce_ms = 2\n[git]\nmode = "off"\n')
    env = {"XDG_CONFIG_HOME": str(home), "MODWATCH_DEBOUNCE_MS": "3", "MODWATCH_GIT_MODE": "flag"}
    cfg = config.load(tmp_path, env=env, cli={"debounce_ms": 4})
    assert cfg.debounce_ms == 4  # CLI beats env, repo and user
    assert cfg.git_mode == "flag"  # env beats repo
    assert cfg.max_wait_ms == 900 and cfg.log_level == "debug"  # user beats defaults
    assert cfg.origins["git_mode"] == "environment MODWATCH_GIT_MODE"
    assert cfg.origins["debounce_ms"] == "command line"


def test_env_values_are_parsed_to_the_key_type(tmp_path):
    env = {"MODWATCH_INCLUDE": "a/**/modular_*.py, b/modular_*.py", "MODWATCH_FORMAT": "0"}
    cfg = config.load(tmp_path, env=env)
    assert cfg.include == ("a/**/modular_*.py", "b/modular_*.py") and cfg.format is False


def test_relative_xdg_config_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "rel" / "modwatch" / "config.toml", "debounce_ms = 9\n")
    assert (
        config.load(tmp_path, env={"XDG_CONFIG_HOME": "rel"}).debounce_ms
        == config.Config().debounce_ms
    )


def test_unknown_key_names_file_and_key(tmp_path):
    path = _write(tmp_path / ".modwatch.toml", "[git]\nmod = 'stage'\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={})
    assert str(path) in str(err.value) and "'git.mod'" in str(err.value)
    assert "known keys" in str(err.value)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("debounce_ms = '50'", "debounce_ms", "integer number of milliseconds"),
        ("debounce_ms = true", "debounce_ms", "integer number of milliseconds"),
        ("max_wait_ms = -1", "max_wait_ms", "integer number of milliseconds"),
        ("include = 'modular_*.py'", "include", "list of non-empty glob strings"),
        ("exclude = ['']", "exclude", "list of non-empty glob strings"),
        ("format = 'yes'", "format", "true or false"),
        ("[git]\nmode = 'push'", "git.mode", '"stage", "flag", "off"'),
        ("[log]\nformat = 'xml'", "log.format", '"auto", "json", "console"'),
        ("[log]\nlevel = 'loud'", "log.level", "debug, info, warning, error"),
    ],
)
def test_wrong_type_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = _write(tmp_path / ".modwatch.toml", text + "\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={})
    message = str(err.value)
    assert str(path) in message and repr(key) in message and expected in message


def test_wrong_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"environment MODWATCH_DEBOUNCE_MS.*'soon'"):
        config.load(tmp_path, env={"MODWATCH_DEBOUNCE_MS": "soon"})


def test_wrong_cli_value_names_the_command_line(tmp_path):
    with pytest.raises(ConfigError, match=r"command line: key 'git.mode'"):
        config.load(tmp_path, env={}, cli={"git.mode": "push"})


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = _write(tmp_path / ".modwatch.toml", "debounce_ms = \n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={})
    assert str(path) in str(err.value) and "line 1" in str(err.value)


def test_max_wait_shorter_than_debounce_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"max_wait_ms .* must not be shorter"):
        config.load(tmp_path, env={}, cli={"debounce_ms": 500, "max_wait_ms": 100})


def test_example_file_documents_every_key_with_its_default():
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    import tomllib

    values = config._flatten(tomllib.loads(example.read_text(encoding="utf-8")))
    assert set(values) == set(config.KEYS)
    defaults = config.Config()
    for key, value in values.items():
        name = config._SCHEMA[key][0]
        default = getattr(defaults, name)
        assert (tuple(value) if isinstance(value, list) else value) == default, key
