"""Scenario 33 in small: a long-running daemon leaks no fds and no git children."""

from __future__ import annotations

from benchmarks.soak import soak


def test_scenario_33_no_fd_or_child_leak_over_40_cycles(tmp_path):
    samples = soak(40, tmp_path, every=10)
    first, *_, last = samples
    assert last.cycle == 40
    assert last.fds == first.fds, samples
    assert all(s.children == 0 for s in samples), samples  # no git cat-file left between batches
