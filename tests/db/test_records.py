"""The journal record: what is journaled of it, and what is read back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from backend.db.records import JournalRecord, NotARecord


def test_a_record_round_trips_through_its_journal_line_without_its_vector() -> None:
    pid = uuid.uuid4()
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    r = JournalRecord(feature={"trade_id": "t", "signal_time": when},
                      prediction={"id": pid, "trade_id": "t", "contributions": None},
                      vector=np.array([1.0, 2.0]))
    line = r.to_json()
    assert b"\n" not in line
    assert orjson.loads(line) == {
        "feature": {"trade_id": "t", "signal_time": "2024-05-01T12:00:00+00:00"},
        "prediction": {"id": str(pid), "trade_id": "t", "contributions": None}}
    back = JournalRecord.from_json(line)
    assert back.vector is None
    assert back.feature == {"trade_id": "t", "signal_time": "2024-05-01T12:00:00+00:00"}
    assert back.prediction == {"id": str(pid), "trade_id": "t", "contributions": None}


def test_missing_rows_read_as_none_and_are_not_validated() -> None:
    r = JournalRecord.from_json(b'{"feature": {"trade_id": "half"}}')
    assert r.feature == {"trade_id": "half"} and r.prediction is None
    odd = JournalRecord.from_json(b'{"feature": 5, "prediction": "x"}')
    assert (odd.feature, odd.prediction) == (5, "x")  # the writer rejects it, not the reader


@pytest.mark.parametrize("line", [b"null", b"[1, 2]", b"3", b'"text"'])
def test_json_that_is_not_an_object_is_not_a_record(line: bytes) -> None:
    with pytest.raises(NotARecord):
        JournalRecord.from_json(line)


def test_a_line_that_is_not_json_raises_a_decode_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        JournalRecord.from_json(b"{not json")


def test_without_vector_shares_the_rows() -> None:
    r = JournalRecord(feature={"trade_id": "t"}, prediction={"trade_id": "t"},
                      vector=np.zeros(3))
    bare = r.without_vector()
    assert bare.vector is None and r.vector is not None
    assert bare.feature is r.feature and bare.prediction is r.prediction
    assert bare.without_vector() is bare
