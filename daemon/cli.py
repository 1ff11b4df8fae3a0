"""The command line: the only module that parses arguments or decides the exit code.

Exit codes: 0 ok, 1 ``check`` found stale outputs, 2 user/config/input error,
3 unexpected error, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

import daemon
from daemon import commands, config, log
from daemon.errors import DaemonError
from daemon.runner import RunRecord

EXIT_OK, EXIT_STALE, EXIT_USER, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_PYTHON_DAEMON_FILES = ("daemon.py", "pidfile.py")  # python-daemon's own modules


class ForeignDaemonPackage(DaemonError):
    """Another distribution (python-daemon) installed a package named ``daemon`` over ours."""


def check_own_package() -> None:
    """Refuse to run when ``daemon`` is not modwatch's package (python-daemon shares the name).

    A directory listing, not importlib.metadata: it costs microseconds, hooks stay fast.
    """
    location = getattr(daemon, "__file__", None)
    version = getattr(daemon, "__version__", None)
    package_dir = Path(location).parent if location else None
    foreign = [
        name
        for name in _PYTHON_DAEMON_FILES
        if package_dir is not None and (package_dir / name).exists()
    ]
    if package_dir is None or version is None or foreign:
        where = package_dir or "an unknown location"
        raise ForeignDaemonPackage(
            f"the Python package 'daemon' in {where} is not modwatch's "
            f"(found {', '.join(foreign) or 'no modwatch version'}); "
            "python-daemon installs a package of the same name",
            hint="install modwatch in its own environment: "
            "python3 -m venv ~/.local/modwatch && ~/.local/modwatch/bin/pip install modwatch",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modwatch",
        description="Regenerate transformers-style generated files from modular_*.py sources.",
    )
    parser.add_argument("--version", action="version", version=f"modwatch {daemon.__version__}")
    parser.add_argument("--log-format", choices=config.LOG_FORMATS, help="default: auto")
    parser.add_argument("--log-level", choices=config.LOG_LEVELS, help="default: info")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = subcommands.add_parser("convert", help="regenerate the outputs of modular files")
    convert.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    convert.add_argument("--force", action="store_true", help="overwrite hand-edited outputs")
    _add_shared_flags(convert)

    check = subcommands.add_parser("check", help="fail when generated files are stale")
    check.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="default: .")
    check.add_argument("--diff", action="store_true", help="show unified diffs")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument(
        "--no-cache",
        action="store_true",
        help="convert every file, ignoring what earlier checks verified (and record it afresh)",
    )
    check.add_argument(
        "--changed-since",
        metavar="REF",
        help="only modular files changed since REF (committed or not), and their dependents",
    )
    check.add_argument(
        "-j", "--jobs", type=int, default=None, help="worker processes (default: all cores)"
    )
    _add_shared_flags(check)

    watch = subcommands.add_parser("watch", help="run the daemon in the foreground")
    watch.add_argument("--repo", type=Path, default=None, help="default: the current directory")
    watch.add_argument("--git-mode", choices=config.GIT_MODES)
    watch.add_argument("--debounce-ms", type=int)
    _add_shared_flags(watch)

    deps = subcommands.add_parser("deps", help="what a file feeds and what it depends on")
    deps.add_argument("path", type=Path, metavar="PATH")
    _add_shared_flags(deps)

    sync = subcommands.add_parser(
        "sync", help="reconcile after HEAD moved (what the post-checkout hook runs)"
    )
    sync.add_argument("--from", dest="before", required=True, metavar="COMMIT")
    sync.add_argument("--to", dest="after", default="HEAD", metavar="COMMIT")
    sync.add_argument("--repo", type=Path, default=None)
    _add_shared_flags(sync)

    hook = subcommands.add_parser("hook", help="install or remove modwatch's git hooks")
    hook_actions = hook.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name in ("install", "uninstall"):
        action = hook_actions.add_parser(name, help=f"{name} the git hooks")
        action.add_argument("--repo", type=Path, default=None)
        action.add_argument(
            "--type",
            dest="types",
            default="post-checkout,post-merge,post-rewrite",
            help="comma-separated hook types (default: %(default)s)",
        )
        action.add_argument(
            "--hooks-path", action="store_true", help="use the directory core.hooksPath names"
        )

    hook_run = subcommands.add_parser("hook-run", help=argparse.SUPPRESS)
    hook_run.add_argument("hook_type")
    hook_run.add_argument("hook_args", nargs="*")

    status = subcommands.add_parser("status", help="ask the running daemon what it is doing")
    status.add_argument("--repo", type=Path, default=None, help="default: the current directory")
    status.add_argument("--json", action="store_true", help="print the raw JSON reply")

    service = subcommands.add_parser("service", help="run modwatch as a systemd user service")
    actions = service.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser("install", help="install and enable the unit for a repository")
    install.add_argument("--repo", type=Path, default=None)
    when = install.add_mutually_exclusive_group()
    when.add_argument("--now", action="store_true", help="also start it now")
    when.add_argument("--no-enable", action="store_true", help="write the unit, enable nothing")
    for name in ("uninstall", "status"):
        action = actions.add_parser(name, help=f"{name} the unit of a repository")
        action.add_argument("--repo", type=Path, default=None)
    return parser


def _add_shared_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--no-format", dest="format", action="store_false", default=None, help="skip ruff"
    )


def _cli_values(args: argparse.Namespace) -> dict[str, object]:
    """Flags the user actually gave, keyed like config keys (CLI beats every other layer)."""
    pairs = {
        "log.format": args.log_format,
        "log.level": args.log_level,
        "format": getattr(args, "format", None),
        "git.mode": getattr(args, "git_mode", None),
        "debounce_ms": getattr(args, "debounce_ms", None),
    }
    return {key: value for key, value in pairs.items() if value is not None}


@contextlib.contextmanager
def _error_handler(exit_code: list[int]) -> Iterator[None]:
    """One handler for the process: expected -> 2, ^C -> 130, anything else -> 3."""
    try:
        yield
    except DaemonError as exc:
        print(f"modwatch: error: {exc}", file=sys.stderr)
        exit_code[0] = EXIT_USER
    except KeyboardInterrupt:
        print("modwatch: interrupted", file=sys.stderr)
        exit_code[0] = EXIT_INTERRUPTED
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(
            f"modwatch: unexpected error: {type(exc).__name__}: {exc}\n"
            "hint: this is a bug in modwatch; please report it with the traceback above",
            file=sys.stderr,
        )
        exit_code[0] = EXIT_UNEXPECTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    exit_code = [EXIT_OK]
    with _error_handler(exit_code):
        check_own_package()
        args = _parser().parse_args(argv)
        exit_code[0] = _dispatch(args)
    return exit_code[0]


def _dispatch(args: argparse.Namespace) -> int:
    cli_values = _cli_values(args)
    if args.command == "hook":
        from daemon import hook

        types = [t.strip() for t in args.types.split(",") if t.strip()]
        do = hook.install if args.action == "install" else hook.uninstall
        for line in do(_repo_root(args.repo), types, hooks_path=args.hooks_path):
            print(line)
        return EXIT_OK
    if args.command == "hook-run":
        return _hook_run(args.hook_type, args.hook_args)
    if args.command == "sync":
        root = _repo_root(args.repo)
        cfg = config.load(root, cli=cli_values)
        log.configure(cfg.log_format, cfg.log_level)
        return _print_sync(commands.sync_checkout(root, cfg, args.before, args.after))
    if args.command == "status":
        return _status(_repo_root(args.repo), as_json=args.json)
    if args.command == "service":
        return _service(args)
    if args.command == "watch":
        from daemon import loop

        root = (args.repo or Path.cwd()).resolve()
        if not root.is_dir():
            raise DaemonError(f"{root}: not a directory")
        cfg = config.load(root, cli=cli_values)
        log.configure(cfg.log_format, cfg.log_level)
        return loop.watch(root, cfg)
    if args.command == "deps":
        root = commands.find_root([args.path])
        cfg = config.load(root, cli=cli_values)
        print(commands.render_deps(args.path.resolve(), root, cfg), end="")
        return EXIT_OK
    paths = args.paths or [Path.cwd()]
    root = commands.find_root(paths)
    cfg = config.load(root, cli=cli_values)
    log.configure(cfg.log_format, cfg.log_level)
    if args.command == "convert":
        return _convert(root, cfg, commands.collect_sources(paths, root, cfg), force=args.force)
    if args.changed_since:
        wanted = set(commands.collect_sources(paths, root, cfg, allow_empty=True))
        sources = [s for s in commands.changed_since(root, cfg, args.changed_since) if s in wanted]
    else:
        sources = commands.collect_sources(paths, root, cfg)
    jobs = args.jobs if args.jobs is not None else parallel_jobs()
    if jobs < 1:
        raise DaemonError(f"-j must be at least 1, got {jobs}")
    return _check(
        root, cfg, sources, diff=args.diff, as_json=args.json, jobs=jobs, cache=not args.no_cache
    )


def _repo_root(repo: Path | None) -> Path:
    from daemon import git

    start = (repo or Path.cwd()).resolve()
    root = git.find_worktree(start)
    if root is None:
        raise DaemonError(f"{start}: not inside a git repository")
    return root


def _print_sync(records: Sequence[RunRecord]) -> int:
    flagged = 0
    for record in records:
        for output in record.outputs:
            if output.status in ("stale", "hand_edited") or record.git == "flagged":
                flagged += 1
                print(f"flagged    {commands.display(output.path)} ({record.reason})")
            elif output.status == "written":
                print(f"written    {commands.display(output.path)}")
        if record.error is not None:
            print(f"error      {record.source}:{record.line}: {record.error}")
    if flagged:
        print(
            f"modwatch: {flagged} generated files are stale; regenerate them with modwatch convert"
        )
    return EXIT_OK


def _hook_range(hook_type: str, hook_args: Sequence[str]) -> tuple[str, str] | None:
    """Which commits a git hook's arguments compare (None: nothing to do)."""
    if hook_type == "post-checkout":
        if len(hook_args) < 3 or hook_args[2] == "0" or hook_args[0] == hook_args[1]:
            return None  # a file checkout, `checkout -b`, or no arguments
        return hook_args[0], hook_args[1]
    if hook_type == "post-merge":
        return "ORIG_HEAD", "HEAD"
    if hook_type == "post-rewrite":
        return ("HEAD@{1}", "HEAD") if hook_args[:1] == ["amend"] else ("ORIG_HEAD", "HEAD")
    return None


def _hook_run(hook_type: str, hook_args: Sequence[str]) -> int:
    """The git hook's entry point: never fails the user's git command."""
    from daemon import control, git

    span = _hook_range(hook_type, hook_args)
    if span is None:
        return EXIT_OK
    try:
        root = _repo_root(None)
        try:
            control.query(
                control.resolve_socket(git.git_dir(root)),
                {"cmd": "checkout", "from": span[0], "to": span[1]},
            )
            return EXIT_OK  # the running daemon reconciles
        except control.DaemonNotRunning:
            pass
        cfg = config.load(root)
        log.configure(cfg.log_format, "warning")
        _print_sync(commands.sync_checkout(root, cfg, *span))
    except Exception as exc:  # a guest in someone's repo: say it in one line, never fail
        reason = exc.message if isinstance(exc, DaemonError) else f"{type(exc).__name__}: {exc}"
        print(f"modwatch: hook {hook_type} skipped: {reason}", file=sys.stderr)
    return EXIT_OK


def _status(root: Path, *, as_json: bool) -> int:
    from daemon import control, git

    try:
        reply = control.query(control.resolve_socket(git.git_dir(root)), {"cmd": "status"})
    except control.DaemonNotRunning:
        print(f"modwatch: no daemon is running for {root}", file=sys.stderr)
        return EXIT_UNEXPECTED
    if as_json:
        print(json.dumps(reply, indent=2))
        return EXIT_OK
    print(commands.render_status(reply), end="")
    return EXIT_OK


def _service(args: argparse.Namespace) -> int:
    from daemon import service

    repo = _repo_root(args.repo)
    if args.action == "install":
        lines = service.install(repo, now=args.now, enable=not args.no_enable)
    elif args.action == "uninstall":
        lines = service.uninstall(repo)
    else:
        lines = [service.status(repo)]
    for line in lines:
        print(line)
    return EXIT_OK


def _convert(root: Path, cfg: config.Config, sources: list[Path], *, force: bool) -> int:
    records = commands.convert_all(root, cfg, sources, force=force)
    failed = hand_edited = False
    for record in records:
        if record.error is not None:
            failed = True
            where = f"{record.source}:{record.line}" if record.line else str(record.source)
            print(f"error      {where}: {record.error}")
        for output in record.outputs:
            hand_edited |= output.status == "hand_edited"
            print(f"{output.status:<10} {commands.display(output.path)}")
    if hand_edited:
        print(
            "modwatch: error: hand-edited outputs were left alone (they differ from what "
            "modwatch wrote and from HEAD)\nhint: move the edit into the modular file, or "
            "run again with --force (the edited copies are kept under .git/modwatch/hand-edits/)",
            file=sys.stderr,
        )
    return EXIT_USER if failed or hand_edited else EXIT_OK


def parallel_jobs() -> int:
    from daemon.parallel import default_jobs

    return default_jobs()


def _check(
    root: Path,
    cfg: config.Config,
    sources: list[Path],
    *,
    diff: bool,
    as_json: bool,
    jobs: int,
    cache: bool,
) -> int:
    progress = commands.Progress(len(sources), sys.stderr)
    try:
        report = commands.check(
            root,
            cfg,
            sources,
            jobs=min(jobs, len(sources) or 1),
            on_done=progress,
            use_cache=cache,
        )
    finally:
        progress.close()
    if as_json:
        print(json.dumps(report.to_json(root), indent=2))
    else:
        print(report.render(root, diff=diff), end="")
    if report.counts["error"]:
        return EXIT_USER
    return EXIT_STALE if report.counts["stale"] or report.counts["missing"] else EXIT_OK


if __name__ == "__main__":  # pragma: no cover - `python -m daemon` is the supported path
    sys.exit(main())
