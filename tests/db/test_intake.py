"""The accepting side of the write-behind on its own: journal and ledger move together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.db.batch_writer import WriterStats
from backend.db.intake import Intake
from backend.db.journal import read_segment
from backend.db.records import JournalRecord


def record(trade_id: str) -> JournalRecord:
    return JournalRecord(feature={"trade_id": trade_id}, prediction=None, vector=np.ones(2))


def ids(records: list[JournalRecord]) -> list[str]:
    return [r.feature["trade_id"] for r in records if r.feature]


@pytest.mark.parametrize("keep_vectors", [True, False])
def test_a_submitted_record_is_journaled_and_pending(tmp_path: Path,
                                                     keep_vectors: bool) -> None:
    stats = WriterStats()
    intake = Intake(tmp_path / "journal", stats, keep_vectors=keep_vectors)
    assert intake.open() == 0
    try:
        assert intake.submit(record("a")) == 1
        assert intake.submit(record("b")) == 2
        assert stats.accepted == 2 and intake.depth == 2
        assert ids(intake.records()) == ["a", "b"]
        assert all((r.vector is not None) == keep_vectors for r in intake.records())
        intake.take()
        [name] = intake.ledger.segment_names()
        assert ids(read_segment(intake.journal.directory / name)) == ["a", "b"]
        assert ids(intake.ledger.taken()) == ["a", "b"]
    finally:
        intake.close()


def test_what_an_earlier_process_left_is_replayed_as_pending(tmp_path: Path) -> None:
    first = Intake(tmp_path / "journal", WriterStats(), keep_vectors=True)
    first.open()
    for t in ("a", "b", "c"):
        first.submit(record(t))
    first.close()  # as if the process died: nothing committed

    stats = WriterStats()
    second = Intake(tmp_path / "journal", stats, keep_vectors=True)
    try:
        assert second.open() == 3
        assert stats.replayed == 3 and stats.accepted == 0
        assert ids(second.records()) == ["a", "b", "c"]
        assert second.ledger.accepted == 0  # flush() waits for nothing replayed
        assert second.wait_committed(0.1, lambda: None)
    finally:
        second.close()


def test_a_failed_rotation_keeps_the_records_for_the_next_one(tmp_path: Path) -> None:
    stats = WriterStats()
    intake = Intake(tmp_path / "journal", stats, keep_vectors=False)
    intake.open()
    try:
        intake.submit(record("a"))
        intake.journal.directory.rename(tmp_path / "moved")
        intake.take()
        assert stats.last_error and "journal rotation" in stats.last_error
        assert intake.ledger.segment_names() == [] and ids(intake.ledger.taken()) == ["a"]
        (tmp_path / "moved").rename(intake.journal.directory)
        intake.submit(record("b"))
        intake.take()
        [name] = intake.ledger.segment_names()
        assert ids(read_segment(intake.journal.directory / name)) == ["a", "b"]
        assert intake.ledger.acknowledge(name)
        assert intake.depth == 0
        assert intake.wait_committed(0.1, lambda: None)
    finally:
        intake.close()


def test_flush_times_out_while_records_are_pending(tmp_path: Path) -> None:
    intake = Intake(tmp_path / "journal", WriterStats(), keep_vectors=False)
    intake.open()
    woken = []
    try:
        intake.submit(record("a"))
        assert not intake.wait_committed(0.05, lambda: woken.append(1))
        assert woken  # the writer was woken while waiting
    finally:
        intake.close()


def test_a_closed_intake_refuses_records(tmp_path: Path) -> None:
    intake = Intake(tmp_path / "journal", WriterStats(), keep_vectors=False)
    intake.open()
    intake.close()
    with pytest.raises(OSError):
        intake.submit(record("late"))
    assert intake.depth == 0
