"""ml_trade_features through backend.db.trade_features: bulk insert, replay, label, read."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg

from backend.db import trade_features
from tests.utils.db_factories import T0, feature_row


def test_round_trip_keeps_every_field(conn: psycopg.Connection) -> None:
    row = feature_row(trade_id="t-1", side="short", strategy="breakout",
                      features={"rsi_14": 71.5, "atr_pct": 0.0031, "gap": None})

    assert trade_features.insert_many(conn, [row]) == 1
    stored = trade_features.get(conn, trade_id="t-1")

    assert stored is not None and stored.id is not None and stored.created_at is not None
    for name in ("trade_id", "symbol", "timeframe", "side", "strategy", "signal_time",
                 "feature_set_version", "features", "label", "closed_at"):
        assert getattr(stored, name) == getattr(row, name), name
    assert trade_features.get(conn, trade_id="absent") is None


def test_non_finite_features_are_stored_as_null(conn: psycopg.Connection) -> None:
    # the extractor hands over numpy scalars; NaN (warm-up) must become JSON null
    trade_features.insert_many(conn, [feature_row(trade_id="t-nan", features={
        "a": float("nan"), "b": np.float64("inf"), "c": 1.5, "d": np.float32(0.25)})])

    assert trade_features.get(conn, trade_id="t-nan").features == {
        "a": None, "b": None, "c": 1.5, "d": 0.25}


def test_replaying_a_batch_inserts_nothing(conn: psycopg.Connection) -> None:
    batch = [feature_row() for _ in range(50)]

    assert trade_features.insert_many(conn, batch) == 50
    assert trade_features.insert_many(conn, batch) == 0
    assert trade_features.insert_many(conn, [*batch[:10], feature_row()]) == 1
    assert trade_features.insert_many(conn, []) == 0


def test_two_batches_in_one_outer_transaction(conn: psycopg.Connection) -> None:
    # the write-behind writer calls insert_many inside its own transaction
    with conn.transaction():
        trade_features.insert_many(conn, [feature_row()])
        trade_features.insert_many(conn, [feature_row()])

    assert conn.execute("SELECT count(*) FROM ml_trade_features").fetchone()[0] == 2


def test_label_trade_and_labeled_rows_in_time_order(conn: psycopg.Connection) -> None:
    later = feature_row(trade_id="later", signal_time=T0 + timedelta(hours=5))
    earlier = feature_row(trade_id="earlier", signal_time=T0 + timedelta(hours=1))
    open_trade = feature_row(trade_id="open", signal_time=T0 + timedelta(hours=3))
    other_market = feature_row(trade_id="gbp", symbol="GBPUSD", label=1)
    other_version = feature_row(trade_id="v0", feature_set_version="v0", label=0)
    trade_features.insert_many(conn, [later, earlier, open_trade, other_market, other_version])

    closed = T0 + timedelta(hours=8)
    assert trade_features.label_trade(conn, trade_id="later", label=1, realized_return=0.01,
                                      realized_pnl=12.5, closed_at=closed)
    assert trade_features.label_trade(conn, trade_id="earlier", label=0, realized_return=-0.005,
                                      realized_pnl=-6.0, closed_at=closed)
    assert not trade_features.label_trade(conn, trade_id="unknown", label=1,
                                          realized_return=None, realized_pnl=None,
                                          closed_at=closed)

    rows = trade_features.labeled(conn, feature_set_version="v1", symbol="EURUSD",
                                  timeframe="1h")
    assert [r.trade_id for r in rows] == ["earlier", "later"]
    assert (rows[1].label, rows[1].realized_return, rows[1].realized_pnl, rows[1].closed_at) == (
        1, 0.01, 12.5, closed)
    everything_v1 = trade_features.labeled(conn, feature_set_version="v1")
    assert {r.trade_id for r in everything_v1} == {"earlier", "later", "gbp"}


def test_existing_trade_ids(conn: psycopg.Connection) -> None:
    trade_features.insert_many(conn, [feature_row(trade_id="a"), feature_row(trade_id="b")])

    assert trade_features.existing_trade_ids(conn, trade_ids=["a", "c", "b"]) == {"a", "b"}
    assert trade_features.existing_trade_ids(conn, trade_ids=[]) == set()
