"""The watch scope (rule 10) and the check of it against the kernel's armed watches."""

from __future__ import annotations

import errno
from pathlib import Path

from daemon.watcher import PathFilter, Watcher
from daemon.watchscope import (
    WatchSpec,
    covers,
    limit_error,
    probe_add_watch,
    scope_dirs,
    unwatched,
    watch_scope,
    watched_inodes,
)

ROOT = Path("/repo")
MODELS = ROOT / "src/transformers/models"


# --- pure: which watches ---------------------------------------------------------------------


def test_upstream_layout_watches_models_recursively_and_root_and_git_dir_shallowly() -> None:
    dirs = [MODELS / "gemma", MODELS / "llama", MODELS / "qwen2_vl"]
    assert watch_scope(ROOT, dirs, ROOT / ".git") == (
        WatchSpec(ROOT, recursive=False),
        WatchSpec(MODELS, recursive=True),
        WatchSpec(ROOT / ".git", recursive=False),
    )


def test_nested_containers_are_covered_by_the_outer_one() -> None:
    dirs = [MODELS / "gemma", MODELS / "deprecated" / "old" / "x"]
    scope = watch_scope(ROOT, dirs, None)
    assert scope == (WatchSpec(ROOT, recursive=False), WatchSpec(MODELS, recursive=True))


def test_separate_trees_get_one_recursive_watch_each() -> None:
    scope = watch_scope(ROOT, [ROOT / "a/m1", ROOT / "b/c/m2"], None)
    assert [s for s in scope if s.recursive] == [
        WatchSpec(ROOT / "a", recursive=True),
        WatchSpec(ROOT / "b/c", recursive=True),
    ]


def test_a_source_at_the_root_or_no_source_falls_back_to_the_whole_tree() -> None:
    whole = (WatchSpec(ROOT, recursive=True),)
    assert watch_scope(ROOT, [ROOT], ROOT / ".git") == whole
    assert watch_scope(ROOT, [ROOT / "pkg"], ROOT / ".git") == whole  # its parent is the root
    assert watch_scope(ROOT, [], ROOT / ".git") == whole


def test_a_directory_outside_the_root_never_widens_the_scope_beyond_it() -> None:
    assert watch_scope(ROOT, [Path("/elsewhere/x")], None) == (WatchSpec(ROOT, recursive=True),)


def test_a_linked_worktree_git_dir_is_watched_where_it_is() -> None:
    git_dir = Path("/main/.git/worktrees/feature")
    scope = watch_scope(ROOT, [MODELS / "gemma"], git_dir)
    assert scope[-1] == WatchSpec(git_dir, recursive=False)


def test_covers_distinguishes_shallow_from_recursive_watches() -> None:
    scope = watch_scope(ROOT, [MODELS / "gemma"], None)
    assert covers(scope, MODELS / "brand_new")
    assert covers(scope, ROOT)
    assert not covers(scope, ROOT / "docs")


# --- real directories and the kernel --------------------------------------------------------


def _tree(root: Path) -> Path:
    for d in ("models/alpha", "models/beta/sub", "docs", ".git/objects/ab"):
        (root / d).mkdir(parents=True)
    return root


def test_scope_dirs_walks_recursive_watches_and_prunes_ignored_directories(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "models" / "__pycache__").mkdir()
    scope = watch_scope(root, [root / "models/alpha"], root / ".git")
    dirs = scope_dirs(scope, PathFilter(root).ignores_dir)
    assert sorted(dirs) == sorted(
        [
            root,
            root / "models",
            root / "models/alpha",
            root / "models/beta",
            root / "models/beta/sub",
            root / ".git",
        ]
    )


def test_every_directory_of_the_scope_carries_a_kernel_watch(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    scope = watch_scope(root, [root / "models/alpha"], root / ".git")
    path_filter = PathFilter(root)
    with Watcher(root, path_filter, print, scope=scope) as watcher:
        armed = watched_inodes()
        assert unwatched(scope_dirs(scope, path_filter.ignores_dir), armed) == []
        # rule 10: nothing below .git, nothing in docs
        assert unwatched([root / ".git/objects", root / "docs"], armed) == [
            root / ".git/objects",
            root / "docs",
        ]
        assert watcher.coverage() is None
    assert unwatched([root / "models"], watched_inodes()) == [root / "models"]


def test_probe_tells_an_armable_directory_from_a_missing_one(tmp_path: Path) -> None:
    assert probe_add_watch(tmp_path) == 0
    assert probe_add_watch(tmp_path / "missing") == errno.ENOENT


def test_limit_error_names_the_limit_its_value_the_need_and_the_sysctl() -> None:
    error = limit_error(errno.ENOSPC, needed=1234)
    assert error is not None
    assert "fs.inotify.max_user_watches" in error.message
    assert "1234 directories to watch" in error.message
    current = Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip()
    assert f"currently {current}" in error.message
    assert error.hint is not None and "sysctl -w fs.inotify.max_user_watches=" in error.hint
    assert limit_error(errno.EMFILE) is not None
    assert limit_error(errno.ENOENT) is None
