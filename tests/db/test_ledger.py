"""The ledger of pending records on its own: what is journaled but not yet committed."""

from __future__ import annotations

from pathlib import Path

from backend.db.journal import Segment
from backend.db.ledger import PendingLedger
from backend.db.records import JournalRecord


def record(trade_id: str) -> JournalRecord:
    return JournalRecord(feature={"trade_id": trade_id}, prediction=None)


def ids(records: list[JournalRecord]) -> list[str]:
    return [r.feature["trade_id"] for r in records if r.feature]


def segment(n: int, records: int) -> Segment:
    return Segment(Path(f"/journal/segment-{n:08d}.jsonl"), records)


def accept_and_close(ledger: PendingLedger, n: int, *trade_ids: str) -> None:
    for t in trade_ids:
        ledger.accept(record(t))
    assert ledger.take()
    ledger.segment_closed(segment(n, len(trade_ids)))


def test_records_move_from_queued_to_taken_in_order() -> None:
    ledger = PendingLedger()
    assert ledger.accept(record("a")) == 1
    assert ledger.accept(record("b")) == 2
    assert ledger.queued == 2 and ledger.depth == 2 and ledger.taken() == []
    assert ledger.take()
    assert not ledger.take()  # nothing new queued
    ledger.accept(record("c"))
    assert ids(ledger.taken()) == ["a", "b"]
    assert ids(ledger.records()) == ["a", "b", "c"]
    assert ledger.queued == 1 and ledger.depth == 3
    assert ledger.accepted == 3 and ledger.committed == 0


def test_an_acknowledged_segment_drops_exactly_its_own_records() -> None:
    ledger = PendingLedger()
    accept_and_close(ledger, 1, "a", "b")
    accept_and_close(ledger, 2, "c")
    accept_and_close(ledger, 3, "d", "e", "f")
    assert ledger.segment_names() == [f"segment-{n:08d}.jsonl" for n in (1, 2, 3)]
    assert ledger.acknowledge("segment-00000002.jsonl")  # the middle one, out of order
    assert ids(ledger.records()) == ["a", "b", "d", "e", "f"]
    assert ledger.committed == 1
    assert ledger.acknowledge("segment-00000003.jsonl")
    assert ids(ledger.records()) == ["a", "b"] and ledger.committed == 4
    assert ledger.segment_names() == ["segment-00000001.jsonl"]


def test_a_late_acknowledgement_of_a_dropped_segment_changes_nothing() -> None:
    ledger = PendingLedger()
    accept_and_close(ledger, 1, "a")
    accept_and_close(ledger, 2, "b")
    assert ledger.acknowledge("segment-00000001.jsonl")
    assert not ledger.acknowledge("segment-00000001.jsonl")
    assert not ledger.acknowledge("segment-00000099.jsonl")
    assert ids(ledger.records()) == ["b"] and ledger.committed == 1


def test_replayed_records_are_pending_but_never_counted_as_accepted() -> None:
    ledger = PendingLedger()
    ledger.replay(segment(4, 2), [record("old-1"), record("old-2")])
    accept_and_close(ledger, 5, "new")
    assert ids(ledger.records()) == ["old-1", "old-2", "new"]
    assert ledger.accepted == 1
    assert ledger.acknowledge("segment-00000004.jsonl")
    assert ledger.committed == 0  # the replayed ones were not accepted by this process
    assert ids(ledger.records()) == ["new"]
    assert ledger.acknowledge("segment-00000005.jsonl")
    assert ledger.committed == 1 and ledger.depth == 0


def test_records_left_in_the_open_segment_by_a_failed_rotation_follow_its_segment() -> None:
    ledger = PendingLedger()
    ledger.accept(record("a"))
    assert ledger.take()  # taken, but the rotation failed: no segment closed
    ledger.accept(record("b"))
    assert ledger.take()
    ledger.segment_closed(segment(1, 2))  # the next rotation covers both
    assert ledger.acknowledge("segment-00000001.jsonl")
    assert ledger.depth == 0 and ledger.committed == 2


def test_committing_the_taken_records_frees_their_segments() -> None:
    ledger = PendingLedger()
    ledger.replay(segment(1, 1), [record("old")])
    accept_and_close(ledger, 2, "a", "b")
    ledger.accept(record("queued"))  # accepted after the take: not in the batch
    done = ledger.commit_taken()
    assert [s.name for s in done] == ["segment-00000001.jsonl", "segment-00000002.jsonl"]
    assert ledger.segment_names() == [] and ledger.taken() == []
    assert ids(ledger.records()) == ["queued"]
    assert ledger.accepted == 3 and ledger.committed == 2
