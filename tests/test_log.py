"""Logging: JSON off a TTY, console on a TTY, stdlib records through the same renderer."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest
import structlog

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


# --- journald -------------------------------------------------------------------------------


def test_journal_stream_matches_the_file_behind_the_fd(tmp_path):
    """JOURNAL_STREAM=dev:ino of the fd means journal; any other file, or garbage, does not."""
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        st = os.fstat(a.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert log.journal_stream_matches(env, a.fileno())
        assert not log.journal_stream_matches(env, b.fileno())
        assert not log.journal_stream_matches({"JOURNAL_STREAM": "9:x"}, a.fileno())
        assert not log.journal_stream_matches({}, a.fileno())
        closed = os.dup(a.fileno())
        os.close(closed)
        assert not log.journal_stream_matches(env, closed)


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        ("critical", "<2>"),
        ("exception", "<3>"),
        ("error", "<3>"),
        ("warning", "<4>"),
        ("WARNING", "<4>"),
        ("info", "<6>"),
        ("debug", "<7>"),
        ("notset", "<6>"),
    ],
)
def test_syslog_prefix(level, prefix):
    """structlog level names map to syslog priorities journald understands."""
    assert log.syslog_prefix(level) == prefix


def test_journal_mode_prefixes_priorities_when_journal_stream_is_stderr(tmp_path, monkeypatch):
    """Under systemd, JSON lines carry <N> so journald records PRIORITY= per event."""
    with open(tmp_path / "journal", "w+") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert log.configure("auto", "info", stream) == "journal"
        log.get_logger().info("run.finished", source="modular_x.py")
        log.get_logger().warning("output.hand_edited")
        logging.getLogger("git.cmd").error("git failed")
        stream.flush()
        lines = (tmp_path / "journal").read_text().splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>"]
    assert json.loads(lines[0][3:])["source"] == "modular_x.py"


def test_run_id_defaults_to_the_invocation_id():
    stream = io.StringIO()
    log.configure("json", "info", stream)
    assert log.bind_run_id({"INVOCATION_ID": "0123456789abcdef0123"}) == "0123456789ab"
    log.get_logger().info("daemon.started")
    assert _lines(stream)[0]["run_id"] == "0123456789ab"
    assert len(log.bind_run_id({})) == 12
    structlog.contextvars.clear_contextvars()
