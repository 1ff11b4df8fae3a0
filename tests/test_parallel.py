"""Converting many files in worker processes: same results as one process, in order."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from daemon.converter import Converted, Failed, Result
from daemon.parallel import _chain_lengths, convert_all_in_memory
from tests.helpers import example_repo

MODELS = Path("src/zoo/models")
NOVA = """\
from ..orbit.modeling_orbit import OrbitModel


class NovaModel(OrbitModel):
    pass
"""
NEBULA = """\
from ..nova.modeling_nova import NovaModel


class NebulaModel(NovaModel):
    pass
"""


def _add(repo: Path, name: str, text: str) -> Path:
    path = repo / MODELS / name / f"modular_{name}.py"
    path.parent.mkdir()
    (path.parent / "__init__.py").write_text("")
    path.write_text(text)
    return path


def _texts(results: Mapping[Path, Result]) -> dict[Path, list[tuple[Path, str]]]:
    return {
        s: [(o.path, o.text) for o in r.outputs]
        for s, r in results.items()
        if isinstance(r, Converted)
    }


def test_workers_give_what_one_process_gives_children_after_parents(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    orbit = repo / MODELS / "orbit" / "modular_orbit.py"
    nova = _add(repo, "nova", NOVA)
    nebula = _add(repo, "nebula", NEBULA)  # reads nova's output, which does not exist on disk
    sources = [nebula, nova, orbit]
    done: list[Path] = []
    parallel = convert_all_in_memory(sources, repo, jobs=2, on_done=lambda s, _: done.append(s))
    serial = convert_all_in_memory(sources, repo, jobs=1)
    assert list(parallel) == list(serial) == [orbit, nova, nebula]
    assert done == [orbit, nova, nebula]  # a chain: each waits for its parent
    assert _texts(parallel) == _texts(serial) and len(_texts(parallel)) == 3
    nebula_model = dict(_texts(parallel)[nebula])[nebula.with_name("modeling_nebula.py")]
    assert "class NebulaModel" in nebula_model and "class OrbitModel" not in nebula_model


def test_a_cycle_reports_each_file_instead_of_waiting_forever(tmp_path: Path) -> None:
    repo = example_repo(tmp_path)
    a = _add(repo, "nova", NOVA.replace("..orbit.modeling_orbit", "..nebula.modeling_nebula"))
    b = _add(repo, "nebula", NEBULA)
    results = convert_all_in_memory([a, b], repo, jobs=2)
    assert set(results) == {a, b}
    assert all(isinstance(r, Failed) for r in results.values())


def test_chain_lengths_count_the_longest_line_of_readers() -> None:
    a, b, c, d = (Path(n) for n in "abcd")
    readers = {a: {b, d}, b: {c}, c: set(), d: set()}
    assert _chain_lengths([a, b, d, c], readers) == {a: 3, b: 2, c: 1, d: 1}
