"""Atomic writes, the hand-edit policy and the ledger."""

from __future__ import annotations

import os

import pytest

from daemon.errors import DaemonError
from daemon.outputs import Decision, Ledger, atomic_write, decide, digest


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "modeling_x.py"
    target.write_text("old = 1\n")
    os.chmod(target, 0o640)
    atomic_write(target, "new = 2\n")
    assert target.read_text() == "new = 2\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["modeling_x.py"]


def test_atomic_write_keeps_old_file_when_text_does_not_compile(tmp_path):
    target = tmp_path / "modeling_x.py"
    target.write_text("old = 1\n")
    with pytest.raises(
        DaemonError, match=r"modeling_x.py: generated text does not compile \(line 1"
    ):
        atomic_write(target, "def broken(:\n")
    assert target.read_text() == "old = 1\n"
    assert (tmp_path / "modeling_x.py.broken").read_text() == "def broken(:\n"


def test_atomic_write_writes_unix_newlines_utf8(tmp_path):
    target = tmp_path / "a.py"
    atomic_write(target, 'x = "🚨"\n')
    assert target.read_bytes() == 'x = "🚨"\n'.encode()


def _never() -> str | None:
    raise AssertionError("HEAD's content is not needed for this decision")


def test_decide_unchanged_when_same_text():
    assert decide("a", "a", last_written=None, committed=_never) is Decision.UNCHANGED


def test_decide_writes_missing_file():
    assert decide(None, "a", last_written=None, committed=_never) is Decision.WRITE


def test_decide_writes_over_what_modwatch_wrote():
    verdict = decide("old", "new", last_written=digest("old"), committed=_never)
    assert verdict is Decision.WRITE


def test_decide_writes_over_committed_content():
    """A file restored with `git checkout -- file` is not a hand edit."""
    verdict = decide("old", "new", last_written=digest("other"), committed=lambda: "old")
    assert verdict is Decision.WRITE


def test_decide_refuses_a_hand_edit():
    verdict = decide("edited", "new", last_written=digest("old"), committed=lambda: "old")
    assert verdict is Decision.HAND_EDITED


def test_ledger_round_trip_and_tolerates_garbage(tmp_path):
    path = tmp_path / "modwatch" / "ledger.json"
    ledger = Ledger.load(path)
    ledger.outputs["a.py"] = "1"
    ledger.sources["modular_a.py"] = "2"
    ledger.save()
    again = Ledger.load(path)
    assert again.outputs == {"a.py": "1"} and again.sources == {"modular_a.py": "2"}
    path.write_text("{not json")
    assert Ledger.load(path).outputs == {}
