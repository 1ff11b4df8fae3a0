"""The check cache: a re-check converts only what changed, and reports exactly as without it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import CONFIGURATION, MODELING, MODULAR, example_repo, modwatch

ZETA_MODELING = Path("src/zoo/models/zeta/modeling_zeta.py")


def _check(repo: Path, *flags: str) -> tuple[int, dict[str, object]]:
    done = modwatch(repo, "check", "--json", *flags, str(repo / MODULAR))
    return done.returncode, json.loads(done.stdout)


def _statuses(report: dict[str, object]) -> dict[str, str]:
    outputs = report["outputs"]
    assert isinstance(outputs, list)
    return {o["path"]: o["status"] for o in outputs}


def test_a_second_check_answers_from_the_cache_with_the_same_report(tmp_path: Path) -> None:
    repo = example_repo(tmp_path, commit_outputs=True)
    first_code, first = _check(repo)
    second_code, second = _check(repo)
    assert first_code == second_code == 0
    assert first["cached"] == 0 and second["cached"] == 1
    assert second["outputs"] == first["outputs"]  # the same entries, in the same order
    assert (
        _statuses(first)
        == _statuses(second)
        == {
            MODELING.as_posix(): "ok",
            CONFIGURATION.as_posix(): "ok",
        }
    )
    assert (repo / ".git/modwatch/check-cache.json").is_file()


def test_no_cache_converts_every_file_and_records_afresh(tmp_path: Path) -> None:
    repo = example_repo(tmp_path, commit_outputs=True)
    _check(repo)
    _, report = _check(repo, "--no-cache")
    assert report["cached"] == 0
    _, report = _check(repo)
    assert report["cached"] == 1


def test_an_edited_parent_is_a_miss_and_its_effect_is_reported(tmp_path: Path) -> None:
    repo = example_repo(tmp_path, commit_outputs=True)
    _check(repo)
    parent = repo / ZETA_MODELING
    text = parent.read_text()
    parent.write_text(text.replace("ZETA_SCALE = 2.0", "ZETA_SCALE = 3.0"))
    assert parent.read_text() != text
    code, report = _check(repo)
    assert report["cached"] == 0
    assert code == 1 and _statuses(report)[MODELING.as_posix()] == "stale"


def test_a_hand_edited_output_is_a_miss_and_reported_stale(tmp_path: Path) -> None:
    repo = example_repo(tmp_path, commit_outputs=True)
    _check(repo)
    output = repo / MODELING
    output.write_text(output.read_text() + "# by hand\n")
    code, report = _check(repo)
    assert report["cached"] == 0
    assert code == 1 and _statuses(report)[MODELING.as_posix()] == "stale"
    output.write_text(output.read_text().removesuffix("# by hand\n"))
    code, report = _check(repo)
    assert code == 0 and report["cached"] == 1  # the recorded outputs are on disk again


def test_another_ruff_setting_is_a_miss(tmp_path: Path) -> None:
    repo = example_repo(tmp_path, commit_outputs=True)
    _check(repo)
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# the bytes of ruff's config changed\n")
    _, report = _check(repo)
    assert report["cached"] == 0


def test_an_unreadable_cache_starts_empty(tmp_path: Path) -> None:
    repo = example_repo(tmp_path, commit_outputs=True)
    _check(repo)
    (repo / ".git/modwatch/check-cache.json").write_text("{not json")
    code, report = _check(repo)
    assert code == 0 and report["cached"] == 0
    _, report = _check(repo)
    assert report["cached"] == 1
