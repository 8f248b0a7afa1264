"""Live performance per model and UTC day: outcomes of served predictions, and drift.

Definitions (one row per model and UTC date of ``created_at``):

- ``n_predictions``: predictions served that day (those whose trade features were stored);
  ``n_taken``: how many of them were decided 'take'; ``n_resolved``: how many have an outcome.
- accuracy, precision, recall, roc_auc, brier, log_loss, base_rate, mean_probability: over
  the resolved predictions, with each prediction's own decision as the positive call (that
  is the threshold stored with it). None when nothing is resolved or a figure is undefined.
- ``return_taken`` / ``return_skipped``: mean realised return of resolved predictions that
  were taken / skipped (skipped ones only when the bot reports shadow outcomes).
- ``drift``: PSI per feature of that day's live values (every prediction, resolved or not;
  a missing value counts in a "missing" bin) against the model's training reference;
  ``drift_psi`` is the MAX over features, because one drifting input is enough to make the
  model unreliable and an average would hide it. Few predictions give noisy PSI: read it
  together with ``n_predictions``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg

from backend.db import models, performance, predictions
from backend.db.models import ModelRow
from backend.db.performance import PerformanceRow
from backend.db.predictions import PredictionRow
from backend.ml.metrics import classification_metrics, psi

Record = tuple[PredictionRow, dict[str, Any]]
CLASSIFICATION_FIELDS = ("accuracy", "precision", "recall", "roc_auc", "brier", "log_loss",
                         "base_rate", "mean_probability")


def _utc_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError(f"created_at: {moment} has no time zone")
    return moment.astimezone(UTC).date()


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def feature_drift(
    feature_rows: Sequence[dict[str, Any]], reference: dict[str, dict[str, Any]]
) -> dict[str, float]:
    """PSI per reference feature of the live ``feature_rows`` (absent key = missing)."""
    drift = {}
    for name, ref in reference.items():
        if ref.get("nan_share", 0.0) >= 1.0:
            continue  # never present in training: the model cannot use it, nothing drifts
        values = [_number(row.get(name)) for row in feature_rows]
        drift[name] = psi(ref["proportions"], values, ref["edges"],
                          expected_nan_share=ref["nan_share"])
    return drift


def _day(day: date, records: list[Record], model: ModelRow) -> PerformanceRow:
    resolved = [p for p, _ in records if p.outcome is not None]
    row = PerformanceRow(
        date=day, model_id=model.id, n_predictions=len(records), n_resolved=len(resolved),
        n_taken=sum(p.decision == "take" for p, _ in records),
    )
    if resolved:
        figures = classification_metrics(
            [p.outcome for p in resolved], [p.probability for p in resolved],
            taken=[p.decision == "take" for p in resolved],
        )
        for name in CLASSIFICATION_FIELDS:
            setattr(row, name, figures[name])
        returns = [(p.decision, p.realized_return) for p in resolved
                   if p.realized_return is not None]
        row.return_taken = _mean([r for d, r in returns if d == "take"])
        row.return_skipped = _mean([r for d, r in returns if d != "take"])
    row.drift = feature_drift([f for _, f in records], model.training_distribution or {})
    row.drift_psi = max(row.drift.values()) if row.drift else None
    return row


def compute_daily(records: Iterable[Record], *, model: ModelRow) -> list[PerformanceRow]:
    """Daily performance rows of ``model`` from its predictions and their trade features.

    Pure: no database. ``records`` are (prediction, features) pairs as returned by
    :func:`backend.db.predictions.with_features`; every prediction must belong to ``model``.
    Returns one row per UTC date that has predictions, oldest first (see the module
    docstring for each figure).
    """
    by_day: dict[date, list[Record]] = defaultdict(list)
    for prediction, features in records:
        if prediction.model_id != model.id:
            raise ValueError(f"records: prediction {prediction.id} belongs to model "
                             f"{prediction.model_id}, not {model.id}")
        by_day[_utc_date(prediction.created_at)].append((prediction, features or {}))
    return [_day(day, rows, model) for day, rows in sorted(by_day.items())]


def window_start(days: int, *, now: datetime | None = None) -> datetime:
    """Midnight UTC ``days - 1`` days before today: whole days only, so a day's row is never
    overwritten with figures from part of that day."""
    if days < 1:
        raise ValueError(f"days: must be >= 1, got {days}")
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days - 1), time(0), tzinfo=UTC)


def _all_model_ids(conn: psycopg.Connection) -> list[int]:
    ids: list[int] = []
    while True:
        page, total = models.list_models(conn, limit=500, offset=len(ids))
        ids.extend(m.id for m in page)
        if not page or len(ids) >= total:
            return ids


def track(
    conn: psycopg.Connection, *, model_ids: Sequence[int] | None = None, days: int = 30
) -> int:
    """Recompute and upsert the daily rows of the last ``days`` UTC days (today included),
    and of any older day with a prediction resolved within that window.

    ``model_ids`` None means every registered model (models without predictions in the
    window write nothing). Idempotent: a second run writes the same figures. Returns the
    number of rows upserted.
    """
    since = window_start(days)
    written = 0
    for model_id in (_all_model_ids(conn) if model_ids is None else model_ids):
        # A trade that closes after its prediction's day left the window (a daily timeframe
        # holds for weeks) still changes that day: recompute from the oldest such day.
        start = since
        late = predictions.earliest_resolved_since(conn, model_id=model_id, since=since)
        if late is not None and late < since:
            start = datetime.combine(late.astimezone(UTC).date(), time(0), tzinfo=UTC)
        records = predictions.with_features(conn, model_id=model_id, since=start)
        if not records:
            continue
        model = models.get(conn, model_id=model_id)
        written += performance.upsert_many(conn, compute_daily(records, model=model))
    return written
