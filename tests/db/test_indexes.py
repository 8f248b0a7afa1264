"""The partial and expression indexes match the queries they were written for.

A partial index whose predicate the query does not imply, or an expression index whose
expression differs from the view's, is silently never used; EXPLAIN shows which one is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backend.db import position_exits, predictions, trade_features
from tests.utils.db_factories import T0, exit_row, feature_row, make_model, prediction_row


def _plan(conn: psycopg.Connection, query: str, params: dict | None = None) -> str:
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # tiny tables: make the choice visible
        rows = conn.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.fixture
def filled(conn: psycopg.Connection) -> psycopg.Connection:
    model = make_model(conn)
    features = [feature_row(label=1 if i % 50 == 0 else None) for i in range(500)]
    trade_features.insert_many(conn, features)
    predictions.insert_many(conn, [prediction_row(model.id, trade_id=f.trade_id,
                                                  outcome=None if i % 50 == 0 else 1)
                                   for i, f in enumerate(features)])
    for i in range(200):
        position_exits.insert(conn, exit_row(exit_time=T0 + timedelta(hours=i + 1)))
    conn.execute("ANALYZE")
    return conn


def test_training_read_uses_the_labelled_partial_index(filled: psycopg.Connection) -> None:
    plan = _plan(filled, trade_features.LABELED_SQL + trade_features.ORDER_BY_SIGNAL_TIME_SQL,
                 {"feature_set_version": "v1"})
    assert "ml_trade_features_labeled_version_time_idx" in plan


def test_resolve_uses_the_unresolved_partial_index(filled: psycopg.Connection) -> None:
    plan = _plan(filled, predictions.RESOLVE_SQL, {
        "trade_id": "trade-1", "outcome": 1, "realized_return": 0.0,
        "resolved_at": datetime.now(UTC)})
    assert "ml_predictions_unresolved_trade_idx" in plan


def test_daily_exit_view_filter_uses_the_expression_index(filled: psycopg.Connection) -> None:
    plan = _plan(filled, "SELECT * FROM daily_exit_performance WHERE exit_date = '2026-01-06'")
    assert "position_exits_exit_date_reason_idx" in plan
