"""The partial and expression indexes match the queries they were written for.

A partial index whose predicate the query does not imply, or an expression index whose
expression differs from the view's, is silently never used; EXPLAIN shows which one is.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from backend.db import predictions, trade_features
from tests.utils.db_factories import (
    T0,
    feature_row,
    make_model,
    prediction_row,
    report_exit,
    store_features,
    store_predictions,
)


def _plan(conn: psycopg.Connection, query: str, params: dict | None = None) -> str:
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # tiny tables: make the choice visible
        rows = conn.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.fixture
def filled(conn: psycopg.Connection) -> psycopg.Connection:
    """500 signals, 10 of them closed (labelled); 500 predictions of other trades, 490 of
    them resolved: both partial indexes cover a small share of their table."""
    model = make_model(conn)
    features = [feature_row() for _ in range(500)]
    preds = [prediction_row(model.id) for _ in range(500)]
    with conn.transaction():  # one commit for the 500 exit reports
        store_features(conn, features)
        store_predictions(conn, preds)
        for f in features[::50]:
            report_exit(conn, f.trade_id, pnl=1.0, return_pct=0.1,
                        exit_time=f.signal_time + timedelta(hours=1))
        for i, p in enumerate(preds):
            if i % 50:
                report_exit(conn, p.trade_id, pnl=1.0, return_pct=0.1,
                            exit_time=T0 + timedelta(hours=i % 200 + 1))
    conn.execute("ANALYZE")
    return conn


def test_training_read_uses_the_labelled_partial_index(filled: psycopg.Connection) -> None:
    plan = _plan(filled, trade_features.LABELED_SQL + trade_features.ORDER_BY_SIGNAL_TIME_SQL,
                 {"feature_set_version": "v1"})
    assert "ml_trade_features_labeled_version_time_idx" in plan


def test_resolve_uses_the_unresolved_partial_index(filled: psycopg.Connection) -> None:
    plan = _plan(filled, predictions.RESOLVE_FROM_EXITS_SQL, {"ids": ["trade-1"]})
    assert "ml_predictions_unresolved_trade_idx" in plan


def test_daily_exit_view_filter_uses_the_expression_index(filled: psycopg.Connection) -> None:
    plan = _plan(filled, "SELECT * FROM daily_exit_performance WHERE exit_date = '2026-01-06'")
    assert "position_exits_exit_date_reason_idx" in plan
