"""The transformers 5.23.0 corpus: a cached, pristine checkout to convert and compare against.

The shipped generated files are the converter's reference output (modular-spec.md, "Provenance").
We rebuild a repository-shaped tree from the published artefacts rather than cloning the upstream
repository: the wheel gives ``src/transformers/...`` and the sdist gives the root ``pyproject.toml``
whose ruff settings the formatting step depends on (R-FMT-1, R-FMT-3). Nothing else is taken from
the sdist; in particular its ``utils/`` directory is never extracted (clean-room rule).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from daemon.converter import FILE_TYPES_BY_PREFIX

VERSION = "5.23.0"
PACKAGE = "transformers"
DEFAULT_CACHE = Path("/var/tmp/modwatch-corpus")
CACHE_ENV = "MODWATCH_CORPUS_CACHE"

# Longest prefix first: ``image_processing_pil_x.py`` also starts with ``image_processing_``.
OUTPUT_KINDS = FILE_TYPES_BY_PREFIX

_STAMP = "modwatch-corpus.json"  # lives in .git/, so it is never part of a checkout's work tree
_BANNER_SOURCE = re.compile(r"^#\s+This file was automatically generated from (\S+)\.\s*$")
_REPO = Path(__file__).resolve().parents[1]
# Identity and settings passed on every git call: the build must not depend on (or be broken
# by) the user's global/system config, e.g. no identity, gpg signing, or autocrlf rewriting bytes.
_GIT_CONFIG = (
    "-c", "user.name=modwatch corpus",
    "-c", "user.email=corpus@modwatch.invalid",
    "-c", "commit.gpgsign=false",
    "-c", "core.autocrlf=false",
)  # fmt: skip


def cache_dir() -> Path:
    """The corpus cache: ``$MODWATCH_CORPUS_CACHE`` or ``/var/tmp/modwatch-corpus``.

    Raises:
        RuntimeError: the cache would live inside the modwatch repository.
    """
    value = os.environ.get(CACHE_ENV)
    path = Path(value).expanduser().resolve() if value else DEFAULT_CACHE
    if path.is_relative_to(_REPO):
        raise RuntimeError(f"{CACHE_ENV}={path} is inside the repository; put it elsewhere")
    return path


def pristine_checkout(cache: Path | None = None) -> Path:
    """Return the pristine checkout in the cache, downloading and building it the first time.

    The checkout is a git repository with one commit holding ``pyproject.toml`` and
    ``src/transformers/``. Treat it as read-only; use ``fresh_checkout`` to get a copy to modify.
    """
    cache = cache or cache_dir()
    checkout = cache / f"checkout-{VERSION}"
    if _is_complete(checkout):
        return checkout
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "lock"):
        if _is_complete(checkout):  # another process built it while we waited
            return checkout
        if checkout.exists():  # left over from an interrupted build of an older layout
            shutil.rmtree(checkout)
        wheel, sdist = _download(cache / "downloads")
        # A subdirectory: nothing globbing ``cache/*`` for a checkout can pick up a half-built one.
        (cache / "tmp").mkdir(exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix="build-", dir=cache / "tmp"))
        build.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
        try:
            _build(build, wheel, sdist)
            os.replace(build, checkout)  # atomic: a half-built tree is never at ``checkout``
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return checkout


def fresh_checkout(dest: Path) -> Path:
    """Copy the pristine checkout to ``dest`` (which must not exist) and return ``dest``.

    A local clone copies one pack file and checks out the tree, which is faster than copying
    thousands of loose files, and gives the copy its own git history to modify.
    """
    source = pristine_checkout()
    _git(dest.parent, "clone", "--local", "--no-hardlinks", "-q", str(source), str(dest))
    return dest


def changed_paths(root: Path) -> list[str]:
    """Paths that differ from the commit in a checkout (``git status --porcelain``), sorted."""
    done = subprocess.run(
        ["git", *_GIT_CONFIG, "status", "--porcelain", "--untracked-files=all"],
        cwd=root, env=_git_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return sorted(line[3:] for line in done.stdout.splitlines())


def modular_files(root: Path) -> list[Path]:
    """All ``src/transformers/models/**/modular_*.py`` files under ``root``, sorted."""
    return sorted((root / "src" / "transformers" / "models").rglob("modular_*.py"))


def banner_source(text: str) -> str | None:
    """The modular path named on line 2 of a generated-file banner (R-IO-4), or None."""
    lines = text.split("\n", 2)
    if len(lines) < 2:
        return None
    match = _BANNER_SOURCE.match(lines[1])
    return match.group(1) if match else None


def generated_files(root: Path) -> dict[Path, Path]:
    """Map each generated file under ``root`` to the modular file its banner names."""
    found: dict[Path, Path] = {}
    for path in sorted((root / "src" / "transformers").rglob("*.py")):
        with path.open("rb") as handle:
            head = handle.read(2048)  # the banner is the first 6 lines; no need to read it all
        source = banner_source(head.decode("utf-8", errors="replace"))
        if source is not None:
            found[path] = root / source
    return found


def output_kind(path: Path) -> str:
    """The file type of a generated file, from its name (``modeling_x.py`` -> ``modeling``).

    Raises:
        ValueError: the name starts with none of the eight file types.
    """
    for kind in OUTPUT_KINDS:
        if path.name.startswith(f"{kind}_"):
            return kind
    raise ValueError(f"{path.name} does not start with a known output kind")


def _is_complete(checkout: Path) -> bool:
    return (checkout / ".git" / _STAMP).is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so concurrent test runs do not build the cache twice."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(downloads: Path) -> tuple[Path, Path]:
    """Return the wheel and the sdist, fetching with pip only what is not cached yet."""
    downloads.mkdir(parents=True, exist_ok=True)
    wheel = _fetch(downloads, f"{PACKAGE}-{VERSION}-*.whl", "--only-binary=:all:")
    sdist = _fetch(downloads, f"{PACKAGE}-{VERSION}.tar.gz", "--no-binary=:all:")
    return wheel, sdist


def _fetch(downloads: Path, pattern: str, binary_flag: str) -> Path:
    cached = sorted(downloads.glob(pattern))
    if cached:
        return cached[0]
    # Download into a scratch directory first so an interrupted pip never leaves a partial
    # file that the glob above would take for a complete one.
    with tempfile.TemporaryDirectory(dir=downloads) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", binary_flag]
        command += ["-d", scratch, f"{PACKAGE}=={VERSION}"]
        subprocess.run(command, check=True)
        fetched = sorted(Path(scratch).glob(pattern))
        if not fetched:
            raise RuntimeError(f"pip download produced no file matching {pattern}")
        target = downloads / fetched[0].name
        os.replace(fetched[0], target)
    return target


def _build(build: Path, wheel: Path, sdist: Path) -> None:
    """Lay out the checkout in ``build`` and commit it."""
    (build / "pyproject.toml").write_bytes(_sdist_pyproject(sdist))
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(f"{PACKAGE}/") or ".." in name.split("/"):
                continue
            target = build / "src" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
    _git(build, "init", "-q", "-b", "main")
    _git(build, "add", "-A")
    _git(build, "commit", "-q", "--no-verify", "-m", f"{PACKAGE} {VERSION} (wheel + pyproject)")
    _git(build, "repack", "-a", "-d", "-q")  # one pack file: fast local clones
    stamp = {"package": PACKAGE, "version": VERSION, "wheel": wheel.name, "sdist": sdist.name}
    (build / ".git" / _STAMP).write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def _sdist_pyproject(sdist: Path) -> bytes:
    """Read only ``<top>/pyproject.toml`` from the sdist; no other member is extracted."""
    with tarfile.open(sdist, "r:gz") as archive:
        member = archive.getmember(f"{PACKAGE}-{VERSION}/pyproject.toml")
        handle = archive.extractfile(member)
        if handle is None:
            raise RuntimeError(f"{sdist.name}: pyproject.toml is not a regular file")
        with handle:
            return handle.read()


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *_GIT_CONFIG, *args], cwd=cwd, env=_git_env(), check=True)


def _git_env() -> dict[str, str]:
    # Inherited GIT_DIR / GIT_INDEX_FILE (say, from inside a hook) would point git at another
    # repository; drop them. GIT_CONFIG_NOSYSTEM and friends are harmless and kept.
    return {k: v for k, v in os.environ.items() if k not in _GIT_REPO_VARS}


_GIT_REPO_VARS = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"}
)
