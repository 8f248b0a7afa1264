"""ml_predictions through backend.db.predictions: the write-behind's insert, replay,
resolution from exits, reads."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from backend.db import predictions
from backend.db.errors import Conflict
from tests.utils.db_factories import (
    T0,
    by_trade,
    feature_row,
    make_model,
    prediction_row,
    report_exit,
    store_features,
    store_predictions,
)


def test_round_trip_keeps_every_field(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    row = prediction_row(model.id, trade_id="t-1", probability=0.3125, threshold=0.55,
                         decision="skip", contributions={"rsi_14": -0.25}, latency_ms=0.125)

    assert store_predictions(conn, [row]) == 1

    assert predictions.get(conn, prediction_id=row.id) == row
    assert by_trade(conn, "t-1") == [row]
    assert by_trade(conn, "none") == []


def test_ten_thousand_rows_then_a_replay_inserts_nothing(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    batch = [prediction_row(model.id, trade_id=f"bulk-{i}", probability=(i % 100) / 100)
             for i in range(10_000)]

    started = time.perf_counter()
    inserted = store_predictions(conn, batch)
    elapsed = time.perf_counter() - started
    replayed = store_predictions(conn, batch)

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

    assert store_predictions(conn, [first, again]) == 1
    assert [p.id for p in by_trade(conn, "t-1")] == [first.id]


def test_resolve_only_unresolved_rows(conn: psycopg.Connection) -> None:
    a, b = make_model(conn, name="a"), make_model(conn, name="b")
    store_predictions(conn, [prediction_row(a.id, trade_id="t-1"),
                             prediction_row(b.id, trade_id="t-1"),
                             prediction_row(a.id, trade_id="t-2")])
    closed = T0 + timedelta(hours=6)

    report_exit(conn, "t-1", pnl=13.2, return_pct=1.2, exit_time=closed)
    assert predictions.resolve_from_exits(conn, trade_ids=["t-1"]) == 0  # a retry
    # a second, different report of the same trade is refused (409), not applied either
    with pytest.raises(Conflict):
        report_exit(conn, "t-1", pnl=-1.0, return_pct=-100.0,
                    exit_time=closed + timedelta(hours=1))

    rows = by_trade(conn, "t-1")
    assert {(r.outcome, r.realized_return, r.resolved_at) for r in rows} == {
        (1, 1.2 / 100, closed)}
    assert by_trade(conn, "t-2")[0].outcome is None


def test_with_features_joins_the_trade_features(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    store_features(conn, [
        feature_row(trade_id="t-1", features={"rsi_14": 40.0}),
        feature_row(trade_id="t-2", features={"rsi_14": 60.0})])
    store_predictions(conn, [
        prediction_row(model.id, trade_id="t-1", created_at=T0),
        prediction_row(model.id, trade_id="t-2", created_at=T0 + timedelta(hours=1)),
        prediction_row(model.id, trade_id="no-features", created_at=T0 + timedelta(hours=2))])

    pairs = predictions.with_features(conn, model_id=model.id, since=T0 + timedelta(minutes=1))

    assert [(p.trade_id, f) for p, f in pairs] == [("t-2", {"rsi_14": 60.0})]
    assert len(predictions.with_features(conn, model_id=model.id, since=None)) == 2
