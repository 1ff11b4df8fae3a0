"""Reading a process's CPU time and memory from /proc (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
TICK_S = 1 / _TICKS  # the resolution of every CPU time read here


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds of a process, and of the children it has waited for."""

    user: float
    system: float
    children_user: float
    children_system: float

    @property
    def own(self) -> float:
        """utime + stime: the process's own CPU seconds."""
        return self.user + self.system

    @property
    def children(self) -> float:
        """cutime + cstime: CPU seconds of waited-for children (git, ruff...)."""
        return self.children_user + self.children_system


def cpu_times(pid: int) -> CpuTimes:
    """Fields 14-17 of ``/proc/<pid>/stat`` (proc(5)), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state), so field N is fields[N - 3].
    utime, stime, cutime, cstime = (int(fields[n - 3]) / _TICKS for n in (14, 15, 16, 17))
    return CpuTimes(utime, stime, cutime, cstime)


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 once it has exited or for a zombie)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it, from ``/proc/<pid>/task/*/children``."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as fh:
                    pending.extend(int(child) for child in fh.read().split())
            except FileNotFoundError:
                continue  # the thread exited between listdir and open
    return found


def tree_rss_kb(pid: int) -> int:
    """The summed RSS of ``pid`` and its descendants (shared pages count once per process)."""
    return sum(rss_kb(p) for p in descendants(pid))
