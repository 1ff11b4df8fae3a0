"""Logging: JSON off a TTY, console on a TTY, stdlib records through the same renderer."""

from __future__ import annotations

import io
import json
import logging

from daemon import log


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_auto_is_json_when_not_a_tty():
    stream = io.StringIO()
    assert log.configure("auto", "info", stream) == "json"
    log.get_logger().info("run.finished", source="modular_x.py", duration_ms=1.5)
    (event,) = _lines(stream)
    assert event["event"] == "run.finished" and event["source"] == "modular_x.py"
    assert event["level"] == "info" and "timestamp" in event


def test_auto_is_console_on_a_tty():
    stream = _TTY()
    assert log.configure("auto", "info", stream) == "console"
    log.get_logger().info("run.finished", source="modular_x.py")
    text = stream.getvalue()
    assert "run.finished" in text and "source" in text
    assert not text.lstrip().startswith("{")


def test_library_records_are_rendered_as_json_too():
    stream = io.StringIO()
    log.configure("json", "info", stream)
    logging.getLogger("watchdog.observers.inotify_buffer").warning("queue overflow")
    logging.getLogger("git.cmd").warning("git failed")
    events = _lines(stream)
    assert [e["event"] for e in events] == ["queue overflow", "git failed"]
    assert events[0]["logger"] == "watchdog.observers.inotify_buffer"


def test_level_filters_debug_and_libraries_are_quiet_below_warning():
    stream = io.StringIO()
    log.configure("json", "info", stream)
    log.get_logger().debug("batch.started")
    logging.getLogger("git.cmd").info("Popen(...)")
    assert stream.getvalue() == ""


def test_exceptions_render_frames_without_locals():
    stream = io.StringIO()
    log.configure("json", "info", stream)
    secret = "hunter2"
    try:
        raise ValueError("boom")
    except ValueError:
        log.get_logger().exception("batch.failed")
    (event,) = _lines(stream)
    assert "boom" in json.dumps(event["exception"]) and secret not in stream.getvalue()
