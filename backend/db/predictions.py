"""ml_predictions: one row per prediction served; the outcome arrives with the trade's exit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row, dict_row

from backend.db.errors import translate

INSERT_COLUMNS = ("id", "model_id", "trade_id", "probability", "threshold", "decision",
                  "decision_rule", "expected_r", "contributions", "latency_ms", "created_at",
                  "outcome", "realized_return", "resolved_at")

# The write-behind's insert: one JSON array per batch, unpacked by Postgres (see
# trade_features). Conflicts on the id or on (trade_id, model_id) are skipped: a replayed
# batch adds nothing. Outcomes arrive only from position_exits (RESOLVE_FROM_EXITS_SQL).
INSERT_JSON_SQL = """
INSERT INTO public.ml_predictions
    (id, model_id, trade_id, probability, threshold, decision, decision_rule, expected_r,
     contributions, latency_ms, created_at, request_sha256)
SELECT r.id, r.model_id, r.trade_id, r.probability, r.threshold, r.decision,
       r.decision_rule, r.expected_r, r.contributions, r.latency_ms, r.created_at,
       r.request_sha256
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
    id uuid, model_id bigint, trade_id text, probability double precision,
    threshold double precision, decision text, decision_rule text,
    expected_r double precision, contributions jsonb,
    latency_ms double precision, created_at timestamptz, request_sha256 text)
ON CONFLICT DO NOTHING
"""

GET_SQL = "SELECT * FROM public.ml_predictions WHERE id = %(id)s"
RESOLVE_FROM_EXITS_SQL = """
UPDATE public.ml_predictions p
SET outcome = (e.pnl > 0)::int, realized_return = e.return_pct / 100.0,
    resolved_at = e.exit_time
FROM public.position_exits e
WHERE e.trade_id = p.trade_id AND p.outcome IS NULL AND p.trade_id = ANY(%(ids)s)
"""
RECENT_ANSWERS_SQL = """
SELECT p.id, p.trade_id, p.probability, p.threshold, p.decision, p.decision_rule,
       p.expected_r, p.contributions, p.request_sha256,
       m.id AS model_id, m.name, m.version, m.feature_set_version
FROM public.ml_predictions AS p JOIN public.ml_models AS m ON m.id = p.model_id
ORDER BY p.created_at DESC
LIMIT %(limit)s
"""
EARLIEST_RESOLVED_SINCE_SQL = """
SELECT min(created_at) FROM public.ml_predictions
WHERE model_id = %(model_id)s AND resolved_at >= %(since)s
"""
_P_COLS = ", ".join(f"p.{c}" for c in INSERT_COLUMNS)
WITH_FEATURES_SQL = f"""
SELECT {_P_COLS}, f.features
FROM public.ml_predictions AS p
JOIN public.ml_trade_features AS f ON f.trade_id = p.trade_id
WHERE p.model_id = %(model_id)s
"""
AND_P_SINCE_SQL = " AND p.created_at >= %(since)s"
P_ORDER_SQL = " ORDER BY p.created_at, p.id"


@dataclass
class PredictionRow:
    id: UUID
    model_id: int
    trade_id: str
    probability: float
    threshold: float
    decision: str
    contributions: dict[str, float] | None
    latency_ms: float | None
    created_at: datetime
    outcome: int | None = None
    realized_return: float | None = None
    resolved_at: datetime | None = None
    decision_rule: str | None = None  # None: stored before decisions by expected value
    expected_r: float | None = None
    # sha256 of the canonical request (backend.ml.scoring.request_digest): a reused trade_id
    # with another payload is a conflict. None: stored before the column existed.
    request_sha256: str | None = None


def insert_json(conn: psycopg.Connection, *, rows_json: str) -> int:
    """Insert a JSON array of predictions (keys as the columns); ids or (trade_id, model_id)
    already stored are skipped. Returns how many were inserted."""
    with translate():
        return conn.execute(INSERT_JSON_SQL, {"rows": rows_json}).rowcount


def get(conn: psycopg.Connection, *, prediction_id: UUID) -> PredictionRow | None:
    with translate(), conn.cursor(row_factory=class_row(PredictionRow)) as cur:
        return cur.execute(GET_SQL, {"id": prediction_id}).fetchone()


def resolve_from_exits(conn: psycopg.Connection, *, trade_ids: Sequence[str]) -> int:
    """Resolve unresolved predictions of these trades whose exit is already recorded."""
    with translate():
        return conn.execute(RESOLVE_FROM_EXITS_SQL, {"ids": list(trade_ids)}).rowcount


def recent_answers(conn: psycopg.Connection, *, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most recent predictions with their model, newest first, as the fields
    of a /predict answer (for the service's duplicate-trade_id memory)."""
    with translate(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(RECENT_ANSWERS_SQL, {"limit": limit}).fetchall()


def earliest_resolved_since(conn: psycopg.Connection, *, model_id: int,
                            since: datetime) -> datetime | None:
    """Creation time of the oldest prediction of ``model_id`` resolved at or after
    ``since`` (the tracker recomputes every day such a late outcome belongs to)."""
    with translate():
        return conn.execute(EARLIEST_RESOLVED_SINCE_SQL,
                            {"model_id": model_id, "since": since}).fetchone()[0]


def with_features(conn: psycopg.Connection, *, model_id: int,
                  since: datetime | None = None) -> list[tuple[PredictionRow, dict[str, Any]]]:
    """A model's predictions made at or after ``since`` with their trade's features jsonb.

    Predictions whose trade has no feature row are left out (drift needs the features).
    """
    query = WITH_FEATURES_SQL + (AND_P_SINCE_SQL if since is not None else "") + P_ORDER_SQL
    with translate():
        rows = conn.execute(query, {"model_id": model_id, "since": since}).fetchall()
    return [(PredictionRow(**dict(zip(INSERT_COLUMNS, r[:-1], strict=True))), r[-1])
            for r in rows]
