"""ml_predictions through backend.db.predictions: bulk insert, replay, resolve, reads."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from backend.db import predictions, trade_features
from tests.utils.db_factories import T0, feature_row, make_model, prediction_row


def test_round_trip_keeps_every_field(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    row = prediction_row(model.id, trade_id="t-1", probability=0.3125, threshold=0.55,
                         decision="skip", contributions={"rsi_14": -0.25}, latency_ms=0.125)

    assert predictions.insert_many(conn, [row]) == 1

    assert predictions.get(conn, prediction_id=row.id) == row
    assert predictions.get_by_trade_id(conn, trade_id="t-1") == [row]
    assert predictions.get_by_trade_id(conn, trade_id="none") == []


def test_ten_thousand_rows_then_a_replay_inserts_nothing(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    batch = [prediction_row(model.id, trade_id=f"bulk-{i}", probability=(i % 100) / 100)
             for i in range(10_000)]

    started = time.perf_counter()
    inserted = predictions.insert_many(conn, batch)
    elapsed = time.perf_counter() - started
    replayed = predictions.insert_many(conn, batch)

    assert (inserted, replayed) == (10_000, 0)
    count, total = conn.execute("SELECT count(*), sum(probability) FROM ml_predictions").fetchone()
    assert count == 10_000
    assert total == pytest.approx(sum((i % 100) / 100 for i in range(10_000)))
    # generous bound for a shared 2-core machine; measured ~0.1 s when idle
    assert elapsed < 5.0, f"10,000 predictions took {elapsed:.2f} s"


def test_same_trade_and_model_twice_is_kept_once(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    first = prediction_row(model.id, trade_id="t-1")
    again = prediction_row(model.id, trade_id="t-1")  # new id, same (trade_id, model_id)

    assert predictions.insert_many(conn, [first, again]) == 1
    assert [p.id for p in predictions.get_by_trade_id(conn, trade_id="t-1")] == [first.id]


def test_resolve_only_unresolved_rows(conn: psycopg.Connection) -> None:
    a, b = make_model(conn, name="a"), make_model(conn, name="b")
    predictions.insert_many(conn, [prediction_row(a.id, trade_id="t-1"),
                                   prediction_row(b.id, trade_id="t-1"),
                                   prediction_row(a.id, trade_id="t-2")])
    closed = T0 + timedelta(hours=6)

    assert predictions.resolve(conn, trade_id="t-1", outcome=1, realized_return=0.012,
                               resolved_at=closed) == 2
    assert predictions.resolve(conn, trade_id="t-1", outcome=0, realized_return=-1.0,
                               resolved_at=closed + timedelta(hours=1)) == 0  # a retry

    rows = predictions.get_by_trade_id(conn, trade_id="t-1")
    assert {(r.outcome, r.realized_return, r.resolved_at) for r in rows} == {
        (1, 0.012, closed)}
    assert predictions.get_by_trade_id(conn, trade_id="t-2")[0].outcome is None


def test_resolved_for_model_since(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    rows = [prediction_row(model.id, trade_id=f"t-{h}", created_at=T0 + timedelta(hours=h))
            for h in range(4)]
    predictions.insert_many(conn, rows)
    for h in (0, 2, 3):
        predictions.resolve(conn, trade_id=f"t-{h}", outcome=h % 2, realized_return=None,
                            resolved_at=T0 + timedelta(days=1))

    assert [r.trade_id for r in predictions.resolved_for_model(conn, model_id=model.id)] == [
        "t-0", "t-2", "t-3"]
    since = predictions.resolved_for_model(conn, model_id=model.id,
                                           since=T0 + timedelta(hours=2))
    assert [(r.trade_id, r.outcome) for r in since] == [("t-2", 0), ("t-3", 1)]


def test_with_features_joins_the_trade_features(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    trade_features.insert_many(conn, [
        feature_row(trade_id="t-1", features={"rsi_14": 40.0}),
        feature_row(trade_id="t-2", features={"rsi_14": 60.0})])
    predictions.insert_many(conn, [
        prediction_row(model.id, trade_id="t-1", created_at=T0),
        prediction_row(model.id, trade_id="t-2", created_at=T0 + timedelta(hours=1)),
        prediction_row(model.id, trade_id="no-features", created_at=T0 + timedelta(hours=2))])

    pairs = predictions.with_features(conn, model_id=model.id, since=T0 + timedelta(minutes=1))

    assert [(p.trade_id, f) for p, f in pairs] == [("t-2", {"rsi_14": 60.0})]
    assert len(predictions.with_features(conn, model_id=model.id, since=None)) == 2
