"""ml_retrains: one row per retrain of the continual-learning policy (or a forced one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from backend.db.bulk import jsonb_param
from backend.db.errors import translate

INSERT_SQL = """
INSERT INTO public.ml_retrains (model_name, reason, details, active_model_id, n_outcomes,
                                outcomes_until, requested_by)
VALUES (%(model_name)s, %(reason)s, %(details)s, %(active_model_id)s, %(n_outcomes)s,
        %(outcomes_until)s, %(requested_by)s)
RETURNING *
"""
FINISH_SQL = """
UPDATE public.ml_retrains
SET status = %(status)s, candidate_model_id = %(candidate_model_id)s, promoted = %(promoted)s,
    result = %(result)s, error = %(error)s, finished_at = now()
WHERE id = %(id)s
RETURNING *
"""
LIST_SQL = """
SELECT * FROM public.ml_retrains WHERE model_name = %(model_name)s
ORDER BY started_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
COUNT_SQL = "SELECT count(*) FROM public.ml_retrains WHERE model_name = %(model_name)s"
GET_SQL = "SELECT * FROM public.ml_retrains WHERE id = %(id)s"
LAST_SQL = """
SELECT * FROM public.ml_retrains WHERE model_name = %(model_name)s
ORDER BY started_at DESC, id DESC LIMIT 1
"""


@dataclass
class RetrainRow:
    id: int
    model_name: str
    reason: str
    active_model_id: int | None
    n_outcomes: int
    outcomes_until: datetime | None
    status: str
    requested_by: str
    started_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    candidate_model_id: int | None = None
    promoted: bool | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    finished_at: datetime | None = None


def insert(conn: psycopg.Connection, *, model_name: str, reason: str,
           details: dict[str, Any], active_model_id: int | None, n_outcomes: int,
           outcomes_until: datetime | None, requested_by: str) -> RetrainRow:
    """Record a retrain as it starts (status ``running``)."""
    params = {"model_name": model_name, "reason": reason, "details": jsonb_param(details),
              "active_model_id": active_model_id, "n_outcomes": n_outcomes,
              "outcomes_until": outcomes_until, "requested_by": requested_by}
    with translate(), conn.cursor(row_factory=class_row(RetrainRow)) as cur:
        row = cur.execute(INSERT_SQL, params).fetchone()
    assert row is not None  # RETURNING of an INSERT
    return row


def finish(conn: psycopg.Connection, *, retrain_id: int, status: str,
           candidate_model_id: int | None = None, promoted: bool | None = None,
           result: dict[str, Any] | None = None, error: str | None = None) -> RetrainRow | None:
    params = {"id": retrain_id, "status": status, "candidate_model_id": candidate_model_id,
              "promoted": promoted, "result": jsonb_param(result or {}), "error": error}
    with translate(), conn.cursor(row_factory=class_row(RetrainRow)) as cur:
        return cur.execute(FINISH_SQL, params).fetchone()


def get(conn: psycopg.Connection, *, retrain_id: int) -> RetrainRow | None:
    with translate(), conn.cursor(row_factory=class_row(RetrainRow)) as cur:
        return cur.execute(GET_SQL, {"id": retrain_id}).fetchone()


def last(conn: psycopg.Connection, *, model_name: str) -> RetrainRow | None:
    """The newest retrain of ``model_name`` (whatever its status)."""
    with translate(), conn.cursor(row_factory=class_row(RetrainRow)) as cur:
        return cur.execute(LAST_SQL, {"model_name": model_name}).fetchone()


def list_retrains(conn: psycopg.Connection, *, model_name: str, limit: int = 100,
                  offset: int = 0) -> tuple[list[RetrainRow], int]:
    """Retrains of ``model_name``, newest first, and their total count."""
    params = {"model_name": model_name, "limit": limit, "offset": offset}
    with translate(), conn.cursor(row_factory=class_row(RetrainRow)) as cur:
        rows = cur.execute(LIST_SQL, params).fetchall()
    with translate():
        count = conn.execute(COUNT_SQL, params).fetchone()
    return rows, int(count[0]) if count else 0
