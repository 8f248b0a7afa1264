"""TML_JOURNAL_FSYNC (issue 12, item 5): the mode reaches the journal, and each mode makes
the fsyncs it promises, counted at the OS boundary (os.fsync wrapped)."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.app import _writer
from backend.config import Settings
from backend.db.batch_writer import WriterStats
from backend.db.intake import Intake
from backend.db.journal import Journal, read_segment
from backend.db.records import JournalRecord
from backend.db.writer_process import ProcessWriteBehind

N = 40


class FsyncCalls:
    """os.fsync, counted: by thread, and whether the fd was a directory."""

    def __init__(self) -> None:
        self.real = os.fsync
        self.calls: list[tuple[str, bool]] = []
        self.lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        with self.lock:
            self.calls.append((threading.current_thread().name, is_dir))
        self.real(fd)

    def files(self, thread: str | None = None) -> int:
        return sum(1 for name, d in self.calls if not d and thread in (None, name))

    def directories(self) -> int:
        return sum(1 for _, d in self.calls if d)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncCalls]:
    calls = FsyncCalls()
    monkeypatch.setattr(os, "fsync", calls)
    yield calls


def submit_batch(intake: Intake) -> None:
    for i in range(N):
        intake.submit(JournalRecord(feature={"trade_id": f"t{i}"}, prediction=None))
        if i % 10 == 9:
            intake.take()  # rotations: new segments, so directory entries to sync


def run(tmp_path: Path, mode: str, fsync_ms: float = 50.0) -> Intake:
    intake = Intake(tmp_path / "journal", WriterStats(), keep_vectors=False, fsync=mode,
                    fsync_ms=fsync_ms)
    intake.open()
    submit_batch(intake)
    return intake


def test_off_never_fsyncs(tmp_path: Path, fsyncs: FsyncCalls) -> None:
    intake = run(tmp_path, "off")
    time.sleep(0.2)
    intake.close()
    assert fsyncs.calls == []


def test_always_fsyncs_every_record_before_it_is_accepted_and_every_new_segment(
        tmp_path: Path, fsyncs: FsyncCalls) -> None:
    intake = run(tmp_path, "always")
    me = threading.current_thread().name
    assert fsyncs.files(me) >= N  # in the submitting thread: before the answer
    assert fsyncs.directories() >= 1 + N // 10  # the first segment and each rotation's
    intake.close()


def test_batch_groups_fsyncs_off_the_request_path(tmp_path: Path,
                                                  fsyncs: FsyncCalls) -> None:
    intake = run(tmp_path, "batch", fsync_ms=50)
    me = threading.current_thread().name
    assert fsyncs.files(me) == 0  # none on the submitting thread
    time.sleep(0.3)
    synced = fsyncs.files("journal-fsync")
    assert 1 <= synced < N  # grouped: the closed segments and the open one, per round
    assert fsyncs.directories() >= 1  # the directory after rotations
    intake.close()
    assert fsyncs.files(me) >= 1  # close syncs what is left
    # every record is still there, once
    names = sorted(p.name for p in intake.journal.directory.glob("segment-*.jsonl"))
    got = [r.feature["trade_id"] for n in names
           for r in read_segment(intake.journal.directory / n) if r.feature]
    assert got == [f"t{i}" for i in range(N)]


def test_an_idle_batch_journal_does_not_fsync_again(tmp_path: Path,
                                                    fsyncs: FsyncCalls) -> None:
    intake = run(tmp_path, "batch", fsync_ms=20)
    time.sleep(0.15)
    first = len(fsyncs.calls)
    assert first >= 1
    time.sleep(0.2)  # ~10 rounds with nothing appended
    assert len(fsyncs.calls) == first
    intake.submit(JournalRecord(feature={"trade_id": "late"}, prediction=None))
    time.sleep(0.15)
    assert len(fsyncs.calls) == first + 1  # the open segment, once
    intake.close()


def test_a_bad_mode_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TML_JOURNAL_FSYNC", "sometimes")
    with pytest.raises(ValidationError, match="'off', 'batch' or 'always'"):
        Settings()
    monkeypatch.setenv("TML_JOURNAL_FSYNC", " Always ")
    assert Settings().journal_fsync == "always"
    monkeypatch.delenv("TML_JOURNAL_FSYNC")
    assert Settings().journal_fsync == "batch"  # the default
    with pytest.raises(ValueError, match="one of off, batch, always"):
        Journal(Path("unused"), fsync="sometimes")
    monkeypatch.setenv("TML_JOURNAL_FSYNC_MS", "0")
    with pytest.raises(ValidationError, match="journal_fsync_ms"):
        Settings()


@pytest.mark.parametrize("mode", ["off", "batch", "always"])
def test_the_setting_reaches_the_journal(tmp_path: Path, mode: str) -> None:
    s = Settings(data_dir=tmp_path, journal_fsync=mode, journal_fsync_ms=20)
    writer = _writer(s, "postgresql://unused", None, None)  # type: ignore[arg-type]
    assert isinstance(writer, ProcessWriteBehind)
    assert writer.intake.journal.fsync == mode and writer.intake.fsync_seconds == 0.02
