"""The journal under disk faults (issue 12, items 1 and 2), at the OS boundary: a real 2 MB
tmpfs filled up, os.write / os.ftruncate / os.open failing with ENOSPC or EMFILE. A refused
record must leave no byte behind that a later write carries; an accepted one is read back
exactly once."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.db import batch_writer
from backend.db.batch_writer import WriterStats
from backend.db.intake import Intake
from backend.db.journal import Journal, read_segment
from backend.db.records import JournalRecord
from tests.utils.disk_full import fill
from tests.utils.disk_full import tmpfs as mount_tmpfs

PAD = "x" * 900  # ~1 KB lines: a few of them fill what a page of slack holds


def record(trade_id: str) -> JournalRecord:
    return JournalRecord(feature={"trade_id": trade_id, "pad": PAD}, prediction=None)


def line(trade_id: str) -> bytes:
    return record(trade_id).to_json() + b"\n"


def trade_ids(records: list[JournalRecord]) -> list[str]:
    return [r.feature["trade_id"] for r in records if r.feature]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (needs root and mount permission; skipped otherwise)."""
    with mount_tmpfs(tmp_path / "tmpfs") as not_mounted:
        if not_mounted:
            pytest.skip(f"cannot mount a tmpfs here: {not_mounted}")
        yield tmp_path / "tmpfs"


def test_records_refused_on_a_full_tmpfs_are_never_written_later(tmpfs: Path) -> None:
    journal = Journal(tmpfs / "journal")
    journal.open()
    try:
        accepted, refused = ["before"], []
        journal.append(line("before"))
        filler = fill(tmpfs)
        for i in range(13):  # the slack of the segment's last page may take a few
            try:
                journal.append(line(f"full-{i}"))
                accepted.append(f"full-{i}")
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                refused.append(f"full-{i}")
        assert len(refused) >= 10
        filler.unlink()  # space again: the next writes must not carry the refused bytes
        journal.append(line("after"))
        accepted.append("after")
        closed = journal.rotate()
        assert closed.records == len(accepted)
        assert trade_ids(read_segment(closed.path)) == accepted
        assert closed.path.stat().st_size == sum(len(line(t)) for t in accepted)
    finally:
        journal.close()


class FailingWrites:
    """os.write at the OS boundary: the first call writes only half its bytes (a short
    write, as on a filling disk), the next ``n`` calls raise ENOSPC."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.short_done = False
        self.real = os.write

    def __call__(self, fd: int, data: Any) -> int:
        if not self.short_done:
            self.short_done = True
            return self.real(fd, bytes(data)[: len(data) // 2])
        if self.n > 0:
            self.n -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(fd, data)


def test_a_short_write_then_enospc_leaves_no_torn_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path / "journal")
    journal.open()
    try:
        journal.append(line("a"))
        monkeypatch.setattr(os, "write", FailingWrites(3))
        for t in ("r1", "r2", "r3"):  # r1: half written, then ENOSPC; r2, r3: ENOSPC
            with pytest.raises(OSError):
                journal.append(line(t))
        journal.append(line("b"))
        closed = journal.rotate()
        assert trade_ids(read_segment(closed.path)) == ["a", "b"] and closed.records == 2
    finally:
        journal.close()


def test_a_tail_that_cannot_be_cut_off_blocks_the_segment_until_it_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path / "journal")
    journal.open()
    try:
        journal.append(line("a"))
        real_truncate = os.ftruncate
        failures = {"left": 2}

        def ftruncate(fd: int, length: int) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_truncate(fd, length)

        monkeypatch.setattr(os, "write", FailingWrites(2))
        monkeypatch.setattr(os, "ftruncate", ftruncate)
        with pytest.raises(OSError):
            journal.append(line("torn"))  # half written; the cut fails (1)
        with pytest.raises(OSError):
            journal.append(line("r"))  # the cut is retried first, fails again (2): refused
        with pytest.raises(OSError):
            journal.append(line("r2"))  # the cut works now; the write itself fails
        journal.append(line("b"))
        closed = journal.rotate()
        assert trade_ids(read_segment(closed.path)) == ["a", "b"]
    finally:
        journal.close()


def test_a_refused_record_is_logged_counted_and_marks_the_journal_stalled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(batch_writer, "REFUSAL_HOLD_S", 0.3)
    stats = WriterStats()
    intake = Intake(tmp_path / "journal", stats, keep_vectors=False)
    intake.open()
    try:
        monkeypatch.setattr(os, "write", FailingWrites(1))
        with caplog.at_level("WARNING", logger="backend.db.intake"), pytest.raises(OSError):
            intake.submit(record("t-503"))  # half written then ENOSPC
        assert stats.refused == 1 and stats.accepted == 0 and stats.stalled
        [msg] = [r for r in caplog.records if r.levelname == "WARNING"]
        assert "t-503" in msg.getMessage() and "refused" in msg.getMessage()
        assert str(tmp_path) not in msg.getMessage()  # no paths in the log
        intake.submit(record("ok"))
        assert stats.append_error is None and stats.accepted == 1
        assert stats.stalled  # a refusal counts for REFUSAL_HOLD_S: readiness never flaps
        time.sleep(0.35)
        assert not stats.stalled
    finally:
        intake.close()


def segment_opens_fail(monkeypatch: pytest.MonkeyPatch, errno_: int) -> dict[str, bool]:
    """os.open at the OS boundary raises ``errno_`` for new segment files while
    ``state["failing"]``."""
    real_open = os.open
    state = {"failing": True}

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if state["failing"] and "segment-" in os.fspath(path):
            raise OSError(errno_, os.strerror(errno_))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    return state


def test_a_failed_rotation_is_retried_at_the_next_take_without_a_new_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = WriterStats()
    intake = Intake(tmp_path / "journal", stats, keep_vectors=False)
    intake.open()
    try:
        intake.submit(record("a"))
        state = segment_opens_fail(monkeypatch, errno.EMFILE)
        intake.take()
        assert stats.stalled and "Too many open files" in (stats.rotation_error or "")
        assert intake.ledger.segment_names() == []
        state["failing"] = False
        intake.take()  # nothing new queued: the owed rotation happens all the same
        [name] = intake.ledger.segment_names()
        assert trade_ids(read_segment(intake.journal.directory / name)) == ["a"]
        assert not stats.stalled
    finally:
        intake.close()


def test_a_segment_that_cannot_be_cut_back_is_rotated_away_at_the_next_take(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = WriterStats()
    intake = Intake(tmp_path / "journal", stats, keep_vectors=False)
    intake.open()
    try:
        intake.submit(record("a"))
        intake.take()  # "a" in a closed segment: nothing queued from here on
        monkeypatch.setattr(os, "write", FailingWrites(1))

        def ftruncate(fd: int, length: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "ftruncate", ftruncate)  # this file can never be cut back
        for t in ("torn", "refused"):
            with pytest.raises(OSError):
                intake.submit(record(t))
        intake.take()  # no record queued, yet the torn segment is closed: a fresh one
        intake.submit(record("b"))
        intake.take()
        names = intake.ledger.segment_names()
        got = [t for n in names for t in trade_ids(read_segment(intake.journal.directory / n))]
        assert got == ["a", "b"] and stats.accepted == 2 and stats.refused == 2
    finally:
        intake.close()
