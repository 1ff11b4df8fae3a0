"""Locating the pristine transformers corpus for the tests that compare against it.

``benchmarks/corpus.py`` builds it in its cache the first time (a download from PyPI, under a
lock); a test never skips for want of it, since on CI's fresh machine that would mean the tests
against the real corpus never ran.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.corpus import pristine_checkout

_BANNER_SOURCE = re.compile(r"^#\s+This file was automatically generated from (\S+\.py)\.$")


def require_corpus() -> Path:
    """The pristine checkout (read-only), built on first use."""
    return pristine_checkout()


def banner_sources(root: Path) -> dict[Path, Path]:
    """Each generated file under ``root`` -> the modular file named on its banner's line 2."""
    found: dict[Path, Path] = {}
    for path in sorted((root / "src" / "transformers" / "models").rglob("*.py")):
        with path.open(encoding="utf-8") as handle:
            handle.readline()
            second = handle.readline()
        match = _BANNER_SOURCE.match(second)
        if match:
            found[path] = root / match.group(1)
    return found
