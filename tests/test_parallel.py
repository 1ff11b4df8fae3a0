"""Converting many files in worker processes: same results as one process, in order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from daemon.converter import Converted, Failed, Result
from daemon.parallel import WarmParents, _chain_lengths, convert_all_in_memory
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


_KEPT_PARSES = """\
import gc
import sys
from pathlib import Path

from daemon.config import Config
from daemon.converter import parents
from daemon.parallel import convert_all_in_memory, convert_in_worker
from daemon.runner import Runner

repo = Path(sys.argv[1])
source = next(repo.glob("src/zoo/models/*/modular_*.py"))
print("kept", parents.DAEMON_PARSES, gc.get_threshold()[0])  # a fresh process's
Runner(repo, Config()).run(source, stage=False)
print("kept", parents._parsed.cache_info().maxsize, gc.get_threshold()[0])
if sys.argv[2] == "check":
    convert_all_in_memory([source], repo, jobs=1)
else:
    convert_in_worker(source, repo, {}, True)
print("kept", parents._parsed.cache_info().maxsize, gc.get_threshold()[0])
"""


def test_warm_parents_weigh_what_the_free_worker_last_converted() -> None:
    llama, gemma, clip = Path("modeling_llama.py"), Path("modeling_gemma.py"), Path("clip.py")
    size = {llama: 20_000, gemma: 21_000, clip: 30_000}.__getitem__
    warm = WarmParents(size, keep=2)

    warm.converted(101, [llama, gemma])
    warm.converted(202, [clip])

    assert warm.warmth(101, [llama, clip]) == 20_000
    assert warm.warmth(202, [llama, clip]) == 30_000
    assert warm.warmth(None, [llama]) == 0  # no worker has answered yet
    assert warm.warmth(303, [llama]) == 0
    warm.converted(101, [clip])  # keeps 2: the least recent, llama, goes
    assert warm.warmth(101, [llama, gemma, clip]) == 51_000


def test_batch_processes_keep_more_parses_and_collect_less_often(tmp_path: Path) -> None:
    from daemon.converter.parents import BATCH_PARSES, DAEMON_PARSES
    from daemon.parallel import BATCH_GC_THRESHOLD

    repo = example_repo(tmp_path)
    for role in ("check", "worker"):
        done = subprocess.run(
            [sys.executable, "-c", _KEPT_PARSES, str(repo), role],
            capture_output=True,
            text=True,
            check=True,
        )
        # A daemon's own runs keep few parses and the default collector; a check or a worker,
        # converting many, keeps more and collects less often.
        kept = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("kept ")]
        fresh, daemon, batch = kept
        assert daemon == fresh == [str(DAEMON_PARSES), daemon[1]], done.stderr
        assert batch == [str(BATCH_PARSES), str(BATCH_GC_THRESHOLD[0])], done.stderr
