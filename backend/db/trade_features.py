"""ml_trade_features: one row per signal the bot asked about, labelled when the trade closes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from backend.db.errors import translate

# The write-behind's insert: the whole batch as one JSON array, unpacked by Postgres, so no
# per-row Python work formats rows. Labels arrive only from position_exits (LABEL_FROM_EXITS).
INSERT_JSON_SQL = """
INSERT INTO public.ml_trade_features
    (trade_id, symbol, timeframe, side, strategy, signal_time, feature_set_version, features)
SELECT r.trade_id, r.symbol, r.timeframe, r.side, r.strategy, r.signal_time,
       r.feature_set_version, r.features
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
    trade_id text, symbol text, timeframe text, side text, strategy text,
    signal_time timestamptz, feature_set_version text, features jsonb)
ON CONFLICT (trade_id) DO NOTHING
"""

GET_SQL = "SELECT * FROM public.ml_trade_features WHERE trade_id = %(trade_id)s"
# Rows that reached the database after their exit was reported (write-behind): label them
# from position_exits with the rule an exit report uses (label = pnl > 0).
LABEL_FROM_EXITS_SQL = """
UPDATE public.ml_trade_features f
SET label = (e.pnl > 0)::int, realized_return = e.return_pct / 100.0,
    realized_pnl = e.pnl, closed_at = e.exit_time
FROM public.position_exits e
WHERE e.trade_id = f.trade_id AND f.label IS NULL AND f.trade_id = ANY(%(ids)s)
  AND e.exit_time >= f.signal_time  -- an inconsistent pair stays unlabelled, never rejected
"""
# Serialises the writer's batch and an exit report touching the same trade, so neither can
# miss the other's uncommitted rows (both run at READ COMMITTED). Sorted: no deadlock.
LOCK_TRADES_SQL = """
SELECT pg_advisory_xact_lock(hashtextextended('ml_trade:' || t, 0))
FROM (SELECT DISTINCT unnest(%(ids)s::text[]) AS t ORDER BY 1) AS ids
"""
LABELED_SQL = """
SELECT * FROM public.ml_trade_features
WHERE feature_set_version = %(feature_set_version)s AND label IS NOT NULL
"""
AND_SYMBOL_SQL = " AND symbol = %(symbol)s"
AND_TIMEFRAME_SQL = " AND timeframe = %(timeframe)s"
ORDER_BY_SIGNAL_TIME_SQL = " ORDER BY signal_time, id"
# The retrain policy's check after each exit: labelled outcomes closed after a moment.
OUTCOMES_SINCE_SQL = """
SELECT count(*), max(closed_at) FROM public.ml_trade_features
WHERE feature_set_version = %(feature_set_version)s AND label IS NOT NULL
  AND closed_at > %(since)s
"""


@dataclass
class TradeFeatureRow:
    trade_id: str
    symbol: str
    timeframe: str
    side: str
    strategy: str
    signal_time: datetime
    feature_set_version: str
    features: dict[str, float | None]
    label: int | None = None
    realized_return: float | None = None
    realized_pnl: float | None = None
    closed_at: datetime | None = None
    id: int | None = None
    created_at: datetime | None = None


def insert_json(conn: psycopg.Connection, *, rows_json: str) -> int:
    """Insert a JSON array of rows (keys as the columns; the service's journal entries);
    trade_ids already stored are skipped. Returns how many were inserted."""
    with translate():
        return conn.execute(INSERT_JSON_SQL, {"rows": rows_json}).rowcount


def get(conn: psycopg.Connection, *, trade_id: str) -> TradeFeatureRow | None:
    with translate(), conn.cursor(row_factory=class_row(TradeFeatureRow)) as cur:
        return cur.execute(GET_SQL, {"trade_id": trade_id}).fetchone()


def lock_trades(conn: psycopg.Connection, *, trade_ids: Sequence[str]) -> None:
    """Transaction-scoped locks on these trades (see LOCK_TRADES_SQL); call inside a
    transaction."""
    with translate():
        conn.execute(LOCK_TRADES_SQL, {"ids": list(trade_ids)})


def label_from_exits(conn: psycopg.Connection, *, trade_ids: Sequence[str]) -> int:
    """Label unlabelled rows of these trades whose exit is already recorded."""
    with translate():
        return conn.execute(LABEL_FROM_EXITS_SQL, {"ids": list(trade_ids)}).rowcount


def labeled(conn: psycopg.Connection, *, feature_set_version: str, symbol: str | None = None,
            timeframe: str | None = None) -> list[TradeFeatureRow]:
    """Labelled rows of one feature set version (optionally one market), by signal_time."""
    query = LABELED_SQL
    if symbol is not None:
        query += AND_SYMBOL_SQL
    if timeframe is not None:
        query += AND_TIMEFRAME_SQL
    query += ORDER_BY_SIGNAL_TIME_SQL
    params = {"feature_set_version": feature_set_version, "symbol": symbol,
              "timeframe": timeframe}
    with translate(), conn.cursor(row_factory=class_row(TradeFeatureRow)) as cur:
        return cur.execute(query, params).fetchall()



def outcomes_since(conn: psycopg.Connection, *, feature_set_version: str,
                   since: datetime) -> tuple[int, datetime | None]:
    """How many labelled rows closed after ``since``, and the newest ``closed_at``."""
    with translate():
        row = conn.execute(OUTCOMES_SINCE_SQL, {"feature_set_version": feature_set_version,
                                                "since": since}).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)
