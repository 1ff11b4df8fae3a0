"""Logging: structlog configured once, for modwatch and for the libraries it uses.

Everything goes through stdlib logging with structlog's ``ProcessorFormatter``, because
watchdog and GitPython log with ``logging.getLogger(__name__)``: their records get the same
renderer as ours. JSON lines when stderr is not a TTY (journald, CI, pipes), a readable
console on a TTY.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Mapping
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from daemon.config import LogFormat

# structlog's level names; anything else (e.g. "notset") is logged as info.
_PRIORITIES = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "debug": 7}


def journal_stream_matches(env: Mapping[str, str] = os.environ, stderr_fd: int = 2) -> bool:
    """True when ``$JOURNAL_STREAM`` (``device:inode``) is the file behind ``stderr_fd``.

    systemd.exec(5) recommends this check: the variable alone may be inherited by a child
    whose stderr was redirected elsewhere.
    """
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(stderr_fd)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


def syslog_prefix(level: str) -> str:
    """The ``<N>`` syslog priority journald strips from a line and stores as ``PRIORITY=``."""
    return f"<{_PRIORITIES.get(level.lower(), 6)}>"


def _stream_is_journal(stream: TextIO) -> bool:
    try:
        return journal_stream_matches(os.environ, stream.fileno())
    except (OSError, ValueError):  # io.UnsupportedOperation (StringIO) is an OSError
        return False


def resolve_format(fmt: LogFormat, stream: TextIO) -> str:
    """``auto``: journal under systemd, console on a TTY, JSON anywhere else."""
    if fmt == "console":
        return fmt
    if _stream_is_journal(stream):
        return "journal"  # JSON lines with a <N> priority prefix journald turns into PRIORITY=
    if fmt == "json":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


class _SyslogPrefixed:
    """Wraps the JSON renderer: journald needs the level, which only the renderer still sees."""

    def __init__(self, inner: structlog.processors.JSONRenderer) -> None:
        self._inner = inner

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = self._inner(logger, method, event_dict)
        text = rendered.decode() if isinstance(rendered, bytes) else rendered
        return syslog_prefix(method) + text


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _final_processors(rendering: str, stream: TextIO) -> list[Processor]:
    if rendering == "console":
        colors = bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        return [structlog.dev.ConsoleRenderer(colors=colors)]
    # Frames only: the stock dict_tracebacks shows locals, which bloats and may leak secrets.
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    json_renderer = structlog.processors.JSONRenderer(sort_keys=False, default=str)
    if rendering == "journal":
        return [tracebacks, _SyslogPrefixed(json_renderer)]
    return [tracebacks, json_renderer]


def configure(fmt: LogFormat = "auto", level: str = "info", stream: TextIO | None = None) -> str:
    """Configure structlog and the stdlib root logger; return the rendering chosen.

    Args:
        fmt: ``auto``, ``json`` or ``console``.
        level: the minimum level for modwatch's own events.
        stream: where to write (stderr when None).
    """
    stream = sys.stderr if stream is None else stream
    rendering = resolve_format(fmt, stream)
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_final_processors(rendering, stream),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The libraries are chatty at debug level; their warnings still come through.
    logging.getLogger("watchdog").setLevel(logging.WARNING)
    logging.getLogger("git").setLevel(logging.WARNING)
    return rendering


def bind_run_id(env: Mapping[str, str] = os.environ) -> str:
    """Tag every later event of this process with a run id: systemd's INVOCATION_ID if any."""
    run_id = env.get("INVOCATION_ID", "")[:12] or uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(run_id=run_id)
    return run_id


def get_logger(name: str = "modwatch") -> structlog.stdlib.BoundLogger:
    """The logger modules use; events, not sentences."""
    return structlog.stdlib.get_logger(name)
