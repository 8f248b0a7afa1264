"""The journal on its own (real files, no database): segments, rotation, the lock, reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.db.journal import Journal, read_segment, segment_number
from backend.db.records import JournalRecord


def record(trade_id: str) -> JournalRecord:
    return JournalRecord(feature={"trade_id": trade_id}, prediction=None)


def line(trade_id: str) -> bytes:
    return record(trade_id).to_json() + b"\n"


def trade_ids(records: list[JournalRecord]) -> list[str]:
    return [r.feature["trade_id"] for r in records if r.feature]


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal(tmp_path / "journal")
    yield j
    j.close()


def test_open_creates_the_directory_and_a_first_segment(journal: Journal) -> None:
    assert journal.open() == []
    assert [p.name for p in journal.directory.glob("segment-*.jsonl")] == [
        "segment-00000001.jsonl"]
    assert journal.rejected_path == journal.directory / "rejected.jsonl"


def test_append_then_rotate_closes_a_segment_with_its_record_count(journal: Journal) -> None:
    journal.open()
    for t in ("a", "b", "c"):
        journal.append(line(t))
    first = journal.rotate()
    assert first.name == "segment-00000001.jsonl" and first.records == 3
    journal.append(line("d"))
    second = journal.rotate()
    assert second.name == "segment-00000002.jsonl" and second.records == 1
    assert trade_ids(read_segment(first.path)) == ["a", "b", "c"]
    assert trade_ids(read_segment(second.path)) == ["d"]
    assert journal.rotate().records == 0  # an empty segment rotates too


def test_appended_lines_are_on_disk_before_any_rotation(journal: Journal) -> None:
    journal.open()
    journal.append(line("a"))
    assert journal.size_bytes() == len(line("a"))  # flushed to the OS, not buffered


def test_a_failed_rotation_keeps_the_open_segment_and_its_count(
        journal: Journal, tmp_path: Path) -> None:
    journal.open()
    journal.append(line("a"))
    journal.directory.rename(tmp_path / "moved")
    with pytest.raises(OSError):
        journal.rotate()
    (tmp_path / "moved").rename(journal.directory)
    journal.append(line("b"))  # still the same segment
    closed = journal.rotate()
    assert closed.name == "segment-00000001.jsonl" and closed.records == 2
    assert trade_ids(read_segment(closed.path)) == ["a", "b"]


def test_open_returns_leftovers_oldest_first_and_numbers_after_them(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    for n in (9, 10, 2):  # numeric order, not the order of the names' characters
        (directory / f"segment-{n:08d}.jsonl").write_bytes(line(f"t{n}"))
    j = Journal(directory)
    try:
        leftovers = j.open()
        assert [segment_number(p) for p in leftovers] == [2, 9, 10]
        j.append(line("new"))
        assert j.rotate().name == "segment-00000011.jsonl"
    finally:
        j.close()


def test_a_second_journal_on_the_same_directory_is_refused_until_close(
        journal: Journal) -> None:
    journal.open()
    other = Journal(journal.directory)
    with pytest.raises(RuntimeError, match="in use by another process"):
        other.open()
    journal.close()
    other.open()  # released at close
    other.close()


def test_append_after_close_is_refused(journal: Journal) -> None:
    journal.open()
    journal.close()
    with pytest.raises(OSError, match="not open"):
        journal.append(line("late"))


def test_read_segment_stops_at_a_torn_line_and_skips_what_is_not_a_record(
        tmp_path: Path) -> None:
    path = tmp_path / "segment-00000001.jsonl"
    torn = record("torn").to_json()
    path.write_bytes(line("a") + b"{not json\n" + b"null\n" + b"[1, 2]\n" + line("b")
                     + torn[: len(torn) // 2])
    assert trade_ids(read_segment(path)) == ["a", "b"]


def test_size_counts_every_segment(journal: Journal) -> None:
    journal.open()
    journal.append(line("a"))
    journal.rotate()
    journal.append(line("bb"))
    assert journal.size_bytes() == len(line("a")) + len(line("bb"))
