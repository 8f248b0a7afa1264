"""ml_trade_features through backend.db.trade_features: the write-behind's insert, replay,
labelling from exits, reads."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg

from backend.db import trade_features
from backend.ml.feature_extractor import named_features
from tests.utils.db_factories import T0, feature_row, report_exit, store_features


def test_round_trip_keeps_every_field(conn: psycopg.Connection) -> None:
    row = feature_row(trade_id="t-1", side="short", strategy="breakout",
                      features={"rsi_14": 71.5, "atr_pct": 0.0031, "gap": None})

    assert store_features(conn, [row]) == 1
    stored = trade_features.get(conn, trade_id="t-1")

    assert stored is not None and stored.id is not None and stored.created_at is not None
    for name in ("trade_id", "symbol", "timeframe", "side", "strategy", "signal_time",
                 "feature_set_version", "features", "label", "closed_at"):
        assert getattr(stored, name) == getattr(row, name), name
    assert trade_features.get(conn, trade_id="absent") is None


def test_non_finite_features_are_stored_as_null(conn: psycopg.Connection) -> None:
    # the extractor hands over a numpy vector; NaN (warm-up) and inf must become JSON null
    vector = np.array([float("nan"), np.float64("inf"), 1.5, np.float32(0.25)])
    store_features(conn, [feature_row(trade_id="t-nan",
                                      features=named_features(["a", "b", "c", "d"], vector))])

    assert trade_features.get(conn, trade_id="t-nan").features == {
        "a": None, "b": None, "c": 1.5, "d": 0.25}


def test_replaying_a_batch_inserts_nothing(conn: psycopg.Connection) -> None:
    batch = [feature_row() for _ in range(50)]

    assert store_features(conn, batch) == 50
    assert store_features(conn, batch) == 0
    assert store_features(conn, [*batch[:10], feature_row()]) == 1
    assert store_features(conn, []) == 0


def test_two_batches_in_one_outer_transaction(conn: psycopg.Connection) -> None:
    # the write-behind writer inserts inside its own transaction
    with conn.transaction():
        store_features(conn, [feature_row()])
        store_features(conn, [feature_row()])

    assert conn.execute("SELECT count(*) FROM ml_trade_features").fetchone()[0] == 2


def test_labels_from_exits_and_labeled_rows_in_time_order(conn: psycopg.Connection) -> None:
    later = feature_row(trade_id="later", signal_time=T0 + timedelta(hours=5))
    earlier = feature_row(trade_id="earlier", signal_time=T0 + timedelta(hours=1))
    open_trade = feature_row(trade_id="open", signal_time=T0 + timedelta(hours=3))
    other_market = feature_row(trade_id="gbp", symbol="GBPUSD")
    other_version = feature_row(trade_id="v0", feature_set_version="v0")
    store_features(conn, [later, earlier, open_trade, other_market, other_version])
    for row, won in ((other_market, True), (other_version, False)):
        report_exit(conn, row.trade_id, pnl=1.0 if won else -1.0, return_pct=0.1,
                    exit_time=row.signal_time + timedelta(hours=1))

    closed = T0 + timedelta(hours=8)
    report_exit(conn, "later", pnl=12.5, return_pct=1.0, exit_time=closed)
    report_exit(conn, "earlier", pnl=-6.0, return_pct=-0.5, exit_time=closed)
    # an exit of a trade without a feature row labels nothing
    report_exit(conn, "unknown", pnl=1.0, return_pct=0.1, exit_time=closed)
    assert not trade_features.label_from_exits(conn, trade_ids=["unknown"])

    rows = trade_features.labeled(conn, feature_set_version="v1", symbol="EURUSD",
                                  timeframe="1h")
    assert [r.trade_id for r in rows] == ["earlier", "later"]
    assert (rows[1].label, rows[1].realized_return, rows[1].realized_pnl, rows[1].closed_at) == (
        1, 0.01, 12.5, closed)
    assert (rows[0].label, rows[0].realized_return) == (0, -0.005)
    everything_v1 = trade_features.labeled(conn, feature_set_version="v1")
    assert {r.trade_id for r in everything_v1} == {"earlier", "later", "gbp"}
