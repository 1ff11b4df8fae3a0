"""What every benchmark prints and saves: the machine it ran on, percentiles, a JSON dump."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """The figures that make a timing comparable: cores and load when the benchmark started."""

    cores: int
    load_average: tuple[float, float, float]

    def describe(self) -> str:
        """One line for the top of a report."""
        one, five, fifteen = self.load_average
        return f"machine: {self.cores} cores, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> Machine:
    """Read the core count and the load average now."""
    return Machine(os.cpu_count() or 0, os.getloadavg())


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The 50th percentile."""
    return percentile(values, 50)


def write_json(path: Path | None, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` (nothing when ``path`` is None)."""
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"figures written to {path}")
