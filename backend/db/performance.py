"""ml_performance: daily live metrics per model, written (upserted) by the tracker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from backend.db.bulk import jsonb_param
from backend.db.errors import translate

VALUE_COLUMNS = ("n_predictions", "n_resolved", "n_taken", "accuracy", "precision", "recall",
                 "roc_auc", "brier", "log_loss", "base_rate", "mean_probability",
                 "return_taken", "return_skipped", "drift_psi", "drift")
_KEY_AND_VALUES = ("date", "model_id", *VALUE_COLUMNS)

# Re-running the tracker for a day overwrites that day's figures: idempotent.
UPSERT_SQL = f"""
INSERT INTO public.ml_performance ({", ".join(_KEY_AND_VALUES)})
VALUES ({", ".join(f"%({c})s" for c in _KEY_AND_VALUES)})
ON CONFLICT (date, model_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in VALUE_COLUMNS)}, updated_at = now()
"""
LIST_SQL = "SELECT * FROM public.ml_performance WHERE true"
AND_MODEL_SQL = " AND model_id = %(model_id)s"
AND_SINCE_SQL = " AND date >= %(since)s"
ORDER_SQL = " ORDER BY date, model_id"


@dataclass
class PerformanceRow:
    date: date
    model_id: int
    n_predictions: int
    n_resolved: int
    n_taken: int
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    roc_auc: float | None = None
    brier: float | None = None
    log_loss: float | None = None
    base_rate: float | None = None
    mean_probability: float | None = None
    return_taken: float | None = None
    return_skipped: float | None = None
    drift_psi: float | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    updated_at: datetime | None = None


def upsert_many(conn: psycopg.Connection, rows: Sequence[PerformanceRow]) -> int:
    """Insert or overwrite one row per (date, model_id); returns the number of rows written."""
    if not rows:
        return 0
    params = [{c: getattr(r, c) for c in _KEY_AND_VALUES}
              | {"drift": jsonb_param(r.drift or {})} for r in rows]
    with translate(), conn.transaction(), conn.cursor() as cur:
        cur.executemany(UPSERT_SQL, params)
        return cur.rowcount


def list_performance(conn: psycopg.Connection, *, model_id: int | None = None,
                     since: date | None = None) -> list[PerformanceRow]:
    """Daily rows (optionally of one model, from ``since`` on), oldest first."""
    query = (LIST_SQL + (AND_MODEL_SQL if model_id is not None else "")
             + (AND_SINCE_SQL if since is not None else "") + ORDER_SQL)
    with translate(), conn.cursor(row_factory=class_row(PerformanceRow)) as cur:
        return cur.execute(query, {"model_id": model_id, "since": since}).fetchall()
