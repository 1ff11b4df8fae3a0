"""Locating the pristine transformers corpus for the tests that compare against it.

``benchmarks/corpus.py`` builds it; this only looks for it (never writes there), so these tests
skip rather than download when it is absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

_CACHE_ENV = "MODWATCH_CORPUS_CACHE"
_DEFAULT_CACHE = Path("/var/tmp/modwatch-corpus")
_BANNER_SOURCE = re.compile(r"^#\s+This file was automatically generated from (\S+\.py)\.$")


def corpus_root() -> Path | None:
    """The pristine checkout (a directory holding ``src/transformers/models``), if built."""
    value = os.environ.get(_CACHE_ENV)
    cache = Path(value).expanduser() if value else _DEFAULT_CACHE
    if not cache.is_dir():
        return None
    for candidate in [cache, *sorted(cache.iterdir())]:
        if (candidate / "src" / "transformers" / "models").is_dir():
            return candidate
    return None


def require_corpus() -> Path:
    """The corpus root, or skip the calling test when it has not been built."""
    root = corpus_root()
    if root is None:
        pytest.skip("the transformers corpus is not built (see benchmarks/corpus.py)")
    return root


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
