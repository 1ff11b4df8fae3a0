"""The daemon's worker subprocesses: calls in, results and exceptions out, nothing left."""

from __future__ import annotations

import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from daemon.converter import Converted
from daemon.parallel import convert_in_worker
from daemon.workers import SubprocessExecutor
from tests.helpers import MODELING, MODULAR, example_repo


def _children() -> list[int]:
    tasks = Path(f"/proc/{os.getpid()}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def test_calls_run_in_other_processes_and_every_worker_is_reaped_at_shutdown():
    before = _children()
    with SubprocessExecutor(2) as pool:
        pids = {pool.submit(os.getpid).result(timeout=60) for _ in range(6)}
        assert len(_children()) == len(before) + 2
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert _children() == before


def test_an_exception_in_the_call_reaches_the_caller_and_the_worker_goes_on():
    with SubprocessExecutor(1) as pool:
        with pytest.raises(ValueError, match="invalid literal"):
            pool.submit(int, "not a number").result(timeout=60)
        assert pool.submit(int, "7").result(timeout=60) == 7


def test_a_killed_worker_fails_its_calls_with_broken_process_pool():
    with SubprocessExecutor(1) as pool:
        pid = pool.submit(os.getpid).result(timeout=60)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            pool.submit(os.getpid).result(timeout=60)


def test_a_conversion_in_a_worker_is_the_conversion_in_process(tmp_path):
    repo = example_repo(tmp_path, commit_outputs=True)
    with SubprocessExecutor(1) as pool:
        remote = pool.submit(convert_in_worker, repo / MODULAR, repo, {}, True).result(timeout=60)
    local = convert_in_worker(repo / MODULAR, repo, {}, True)
    assert isinstance(remote, Converted) and isinstance(local, Converted)
    assert remote.outputs == local.outputs
    assert {o.path: o.text for o in remote.outputs}[repo / MODELING] == (
        repo / MODELING
    ).read_text()


def test_shutdown_cancels_calls_not_started():
    before = _children()
    pool = SubprocessExecutor(1)
    first = pool.submit(os.getpid)
    queued = [pool.submit(os.getpid) for _ in range(20)]
    first.result(timeout=60)
    pool.shutdown(cancel_futures=True)
    assert all(f.done() for f in queued)  # run or cancelled, none left waiting
    assert _children() == before
    with pytest.raises(RuntimeError):
        pool.submit(os.getpid)
