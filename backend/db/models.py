"""ml_models: the model registry (artifacts in native formats, one active model per name)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from backend.db.bulk import jsonb_param
from backend.db.errors import InvalidData, NotFound, translate

SUMMARY_COLUMNS = ("id, name, version, algorithm, status, feature_names, feature_set_version, "
                   "hyperparameters, metrics, train_start, train_end, n_samples, "
                   "artifact_format, artifact_sha256, notes, created_at, activated_at, "
                   "activated_by")

# Versions of one name are numbered under a per-name advisory lock: two trainers finishing
# at once get versions n and n+1 instead of one of them failing on UNIQUE (name, version).
# The lock is taken in its own statement so the next statement's snapshot sees the winner.
NAME_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('ml_models:' || %(name)s, 0))"
INSERT_SQL = """
INSERT INTO public.ml_models (
    name, version, algorithm, feature_names, feature_set_version, hyperparameters, metrics,
    training_distribution, train_start, train_end, n_samples, artifact, artifact_format,
    artifact_sha256, notes)
VALUES (
    %(name)s,
    (SELECT coalesce(max(version), 0) + 1 FROM public.ml_models WHERE name = %(name)s),
    %(algorithm)s, %(feature_names)s, %(feature_set_version)s, %(hyperparameters)s,
    %(metrics)s, %(training_distribution)s, %(train_start)s, %(train_end)s, %(n_samples)s,
    %(artifact)s, %(artifact_format)s, %(artifact_sha256)s, %(notes)s)
RETURNING *
"""
GET_SQL = "SELECT * FROM public.ml_models WHERE id = %(model_id)s"
GET_NAME_SQL = "SELECT name FROM public.ml_models WHERE id = %(model_id)s"
GET_ACTIVE_SQL = "SELECT * FROM public.ml_models WHERE name = %(name)s AND status = 'active'"
LIST_SQL = f"SELECT {SUMMARY_COLUMNS} FROM public.ml_models WHERE true"
COUNT_SQL = "SELECT count(*) FROM public.ml_models WHERE true"
AND_NAME_SQL = " AND name = %(name)s"
AND_STATUS_SQL = " AND status = %(status)s"
PAGE_SQL = " ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s"
RETIRE_ACTIVE_SQL = """
UPDATE public.ml_models SET status = 'retired'
WHERE name = %(name)s AND status = 'active' AND id <> %(model_id)s
"""
ACTIVATE_SQL = """
UPDATE public.ml_models
SET status = 'active', activated_at = now(), activated_by = %(activated_by)s
WHERE id = %(model_id)s
RETURNING *
"""
MERGE_METRICS_SQL = "UPDATE public.ml_models SET metrics = metrics || %s::jsonb WHERE id = %s"
# The trigger on ml_models sends this NOTIFY when a model becomes active (see activate).
ACTIVATION_CHANNEL = "ml_model_activated"
LISTEN_ACTIVATIONS_SQL = f"LISTEN {ACTIVATION_CHANNEL}"


@dataclass
class ModelSummary:
    """A registry listing entry: a model without its artifact and training distribution."""

    id: int
    name: str
    version: int
    algorithm: str
    status: str
    feature_names: list[str]
    feature_set_version: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    train_start: datetime | None
    train_end: datetime | None
    n_samples: int
    artifact_format: str
    artifact_sha256: str
    notes: str | None
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None


@dataclass
class ModelRow(ModelSummary):
    """A whole ml_models row (rows are built by keyword, so field order does not matter)."""

    training_distribution: dict[str, Any]
    artifact: bytes


def insert(conn: psycopg.Connection, *, name: str, algorithm: str, feature_names: list[str],
           feature_set_version: str, hyperparameters: dict[str, Any], metrics: dict[str, Any],
           training_distribution: dict[str, Any], train_start: datetime | None,
           train_end: datetime | None, n_samples: int, artifact: bytes, artifact_format: str,
           artifact_sha256: str, notes: str | None = None) -> ModelRow:
    """Register a model as a 'candidate' with the next version number of its name."""
    if hashlib.sha256(artifact).hexdigest() != artifact_sha256:
        raise InvalidData("artifact_sha256: does not match the sha256 of artifact")
    params = {
        "name": name, "algorithm": algorithm, "feature_names": jsonb_param(list(feature_names)),
        "feature_set_version": feature_set_version,
        "hyperparameters": jsonb_param(hyperparameters), "metrics": jsonb_param(metrics),
        "training_distribution": jsonb_param(training_distribution),
        "train_start": train_start, "train_end": train_end, "n_samples": n_samples,
        "artifact": artifact, "artifact_format": artifact_format,
        "artifact_sha256": artifact_sha256, "notes": notes,
    }
    with translate(), conn.transaction(), conn.cursor(row_factory=class_row(ModelRow)) as cur:
        cur.execute(NAME_LOCK_SQL, {"name": name})
        return cur.execute(INSERT_SQL, params).fetchone()


def lock_name(conn: psycopg.Connection, *, name: str) -> None:
    """Take the per-name lock that insert and activate take, until the caller's transaction
    ends (e.g. to compare with the active model and activate without a race)."""
    with translate():
        conn.execute(NAME_LOCK_SQL, {"name": name})


def get(conn: psycopg.Connection, *, model_id: int) -> ModelRow:
    with translate(), conn.cursor(row_factory=class_row(ModelRow)) as cur:
        row = cur.execute(GET_SQL, {"model_id": model_id}).fetchone()
    if row is None:
        raise NotFound(f"model_id: no model with id {model_id}")
    return row


def get_active(conn: psycopg.Connection, *, name: str) -> ModelRow | None:
    with translate(), conn.cursor(row_factory=class_row(ModelRow)) as cur:
        return cur.execute(GET_ACTIVE_SQL, {"name": name}).fetchone()


def list_models(conn: psycopg.Connection, *, name: str | None = None, status: str | None = None,
                limit: int = 100, offset: int = 0) -> tuple[list[ModelSummary], int]:
    """One page of models, newest first, and the total number matching the filters."""
    filters = (AND_NAME_SQL if name is not None else "") + (
        AND_STATUS_SQL if status is not None else "")
    params = {"name": name, "status": status, "limit": limit, "offset": offset}
    with translate(), conn.cursor(row_factory=class_row(ModelSummary)) as cur:
        rows = cur.execute(LIST_SQL + filters + PAGE_SQL, params).fetchall()
        total = conn.execute(COUNT_SQL + filters, params).fetchone()[0]
    return rows, total


def activate(conn: psycopg.Connection, *, model_id: int, activated_by: str) -> ModelRow:
    """Make ``model_id`` the active model of its name; the previous active one is retired.

    One transaction (a savepoint inside a caller's transaction); the trigger on ml_models
    sends NOTIFY ml_model_activated at commit. Activating the active model changes nothing.
    """
    with translate(), conn.transaction(), conn.cursor(row_factory=class_row(ModelRow)) as cur:
        found = conn.execute(GET_NAME_SQL, {"model_id": model_id}).fetchone()
        if found is None:
            raise NotFound(f"model_id: no model with id {model_id}")
        # the same per-name lock as insert: concurrent activations of one name queue up
        # instead of failing on the one-active-per-name index
        cur.execute(NAME_LOCK_SQL, {"name": found[0]})
        current = cur.execute(GET_SQL, {"model_id": model_id}).fetchone()
        if current.status == "active":
            return current
        params = {"name": found[0], "model_id": model_id, "activated_by": activated_by}
        cur.execute(RETIRE_ACTIVE_SQL, params)
        return cur.execute(ACTIVATE_SQL, params).fetchone()


def merge_metrics(conn: psycopg.Connection, *, model_id: int, metrics: dict[str, Any]) -> None:
    """Add ``metrics``' keys to the model's metrics (existing keys are overwritten)."""
    with translate(), conn.transaction():
        conn.execute(MERGE_METRICS_SQL, (jsonb_param(metrics), model_id))


def listen_activations(conn: psycopg.Connection) -> None:
    """Subscribe ``conn`` (autocommit) to the NOTIFY sent when a model is activated."""
    conn.execute(LISTEN_ACTIVATIONS_SQL)
