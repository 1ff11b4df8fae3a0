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
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from daemon.config import LogFormat


def resolve_format(fmt: LogFormat, stream: TextIO) -> str:
    """``auto`` means console on a TTY and JSON anywhere else."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


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
    return [tracebacks, structlog.processors.JSONRenderer(sort_keys=False, default=str)]


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


def get_logger(name: str = "modwatch") -> structlog.stdlib.BoundLogger:
    """The logger modules use; events, not sentences."""
    return structlog.stdlib.get_logger(name)
