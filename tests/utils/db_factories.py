"""Row factories for database tests: valid rows by default, any field overridable.

Rows reach the database the way production writes them: feature rows and predictions as
the write-behind's journal records, through the ``insert_json`` statements its batches run
(backend.db.batch_writer); outcomes only through an exit report (the /exits transaction,
backend.api.routes.exits.store_exit), which labels the feature row and resolves the
predictions.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row

from backend.api.routes.exits import store_exit
from backend.db import models, predictions, trade_features
from backend.db.batch_writer import json_array
from backend.db.models import ModelRow
from backend.db.performance import PerformanceRow
from backend.db.position_exits import PositionExitRow
from backend.db.predictions import PredictionRow
from backend.db.trade_features import TradeFeatureRow

TABLES = {"ml_trade_features", "ml_models", "ml_predictions", "ml_performance",
          "position_exits", "ml_schema_migrations", "ml_retrains"}
VIEWS = {"ml_model_performance_summary", "daily_exit_performance", "ml_feature_statistics"}

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_seq = itertools.count(1)

# Bytes of a (tiny) XGBoost JSON model header: the registry tests load real models; here the
# database only has to keep the bytes and their sha256.
TINY_ARTIFACT = b'{"learner": {"attributes": {}, "feature_names": ["rsi_14", "atr_pct"]}}'


def make_model(conn: psycopg.Connection, *, name: str = "default", algorithm: str = "xgboost",
               metrics: dict[str, Any] | None = None, artifact: bytes = TINY_ARTIFACT,
               feature_names: list[str] | None = None, feature_set_version: str = "v1",
               n_samples: int = 100, activate: bool = False, **overrides: Any) -> ModelRow:
    """Register a model row (version assigned by the database); optionally activate it."""
    row = models.insert(
        conn, name=name, algorithm=algorithm,
        feature_names=feature_names or ["rsi_14", "atr_pct"],
        feature_set_version=feature_set_version,
        hyperparameters=overrides.pop("hyperparameters", {"max_depth": 3}),
        metrics=metrics if metrics is not None else {"model": {"roc_auc": 0.6}},
        training_distribution=overrides.pop("training_distribution", {}),
        train_start=overrides.pop("train_start", T0 - timedelta(days=30)),
        train_end=overrides.pop("train_end", T0),
        n_samples=n_samples, artifact=artifact,
        artifact_format=overrides.pop("artifact_format", "xgboost-json"),
        artifact_sha256=overrides.pop("artifact_sha256", hashlib.sha256(artifact).hexdigest()),
        **overrides,
    )
    return models.activate(conn, model_id=row.id, activated_by="test") if activate else row


def feature_row(**overrides: Any) -> TradeFeatureRow:
    n = next(_seq)
    values: dict[str, Any] = {
        "trade_id": f"trade-{n}", "symbol": "EURUSD", "timeframe": "1h", "side": "long",
        "strategy": "ma_cross", "signal_time": T0 + timedelta(hours=n),
        "feature_set_version": "v1", "features": {"rsi_14": 55.0, "atr_pct": 0.002},
    }
    values.update(overrides)
    return TradeFeatureRow(**values)


def prediction_row(model_id: int, **overrides: Any) -> PredictionRow:
    n = next(_seq)
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "model_id": model_id, "trade_id": f"trade-{n}",
        "probability": 0.7, "threshold": 0.5, "decision": "take",
        "contributions": {"rsi_14": 0.12, "atr_pct": -0.03}, "latency_ms": 0.4,
        "created_at": T0 + timedelta(minutes=n),
    }
    values.update(overrides)
    return PredictionRow(**values)


def exit_row(**overrides: Any) -> PositionExitRow:
    n = next(_seq)
    values: dict[str, Any] = {
        "trade_id": f"trade-{n}", "symbol": "EURUSD", "side": "long",
        "entry_time": T0, "exit_time": T0 + timedelta(hours=3), "entry_price": 1.1000,
        "exit_price": 1.1050, "quantity": 1000.0, "exit_reason": "take_profit", "pnl": 5.0,
        "return_pct": 0.4545, "holding_seconds": 3 * 3600.0, "r_multiple": 2.0, "mfe": 2.1,
        "mae": 0.3, "policy_name": "atr_trailing", "policy_params": {"atr_mult": 2.0},
    }
    values.update(overrides)
    return PositionExitRow(**values)


def performance_row(model_id: int, **overrides: Any) -> PerformanceRow:
    values: dict[str, Any] = {
        "date": T0.date(), "model_id": model_id, "n_predictions": 10, "n_resolved": 8,
        "n_taken": 5, "accuracy": 0.625, "precision": 0.6, "base_rate": 0.5,
        "drift_psi": 0.05, "drift": {"rsi_14": 0.05},
    }
    values.update(overrides)
    return PerformanceRow(**values)


def feature_entry(row: TradeFeatureRow) -> dict[str, Any]:
    """The journal's feature record of a served signal (as MLSystem journals it). Serving's
    features come from ``named_features`` (floats, NaN as None); JSON encoding turns an
    infinite value into null."""
    if any(v is not None for v in (row.label, row.realized_return, row.realized_pnl,
                                   row.closed_at)):
        raise ValueError("a served signal has no outcome yet: label it with report_exit")
    return {"trade_id": row.trade_id, "symbol": row.symbol, "timeframe": row.timeframe,
            "side": row.side, "strategy": row.strategy, "signal_time": row.signal_time,
            "feature_set_version": row.feature_set_version,
            "features": row.features}


def prediction_entry(row: PredictionRow) -> dict[str, Any]:
    """The journal's prediction record of a served prediction (as MLSystem journals it)."""
    if any(v is not None for v in (row.outcome, row.realized_return, row.resolved_at)):
        raise ValueError("a served prediction has no outcome yet: resolve it with report_exit")
    return {"id": row.id, "model_id": row.model_id, "trade_id": row.trade_id,
            "probability": row.probability, "threshold": row.threshold,
            "decision": row.decision, "contributions": row.contributions,
            "latency_ms": row.latency_ms, "created_at": row.created_at}


def store_features(conn: psycopg.Connection, rows: list[TradeFeatureRow]) -> int:
    """Insert feature rows as a write-behind batch does; returns how many were new."""
    return trade_features.insert_json(conn, rows_json=json_array([feature_entry(r)
                                                                  for r in rows]))


def store_predictions(conn: psycopg.Connection, rows: list[PredictionRow]) -> int:
    """Insert predictions as a write-behind batch does; returns how many were new."""
    return predictions.insert_json(conn, rows_json=json_array([prediction_entry(r)
                                                               for r in rows]))


def report_exit(conn: psycopg.Connection, trade_id: str, *, pnl: float, return_pct: float,
                exit_time: datetime, **overrides: Any) -> PositionExitRow:
    """Record the trade's exit as POST /exits does: its feature row gets label = (pnl > 0),
    realized_return = return_pct / 100, realized_pnl = pnl and closed_at = exit_time, and its
    predictions the same outcome, return and resolved_at."""
    row = exit_row(trade_id=trade_id, pnl=pnl, return_pct=return_pct, exit_time=exit_time,
                   entry_time=overrides.pop("entry_time", exit_time - timedelta(hours=3)),
                   **overrides)
    return store_exit(conn, row)[0]


def store_closed(conn: psycopg.Connection, *, features: Sequence[TradeFeatureRow] = (),
                 predictions: Sequence[PredictionRow] = ()) -> None:
    """Store rows that may carry an outcome the way production gets them there: the rows
    without it as one write-behind batch, then for each trade with an outcome the exit
    report that gives it (pnl > 0 for a label/outcome of 1, return_pct = 100 x
    realized_return, at closed_at/resolved_at, default one hour after the signal). One
    transaction, so thousands of trades take one commit."""
    outcomes: dict[str, tuple[int, float | None, datetime]] = {}
    for f in features:
        if f.label is not None:
            outcomes[f.trade_id] = (f.label, f.realized_return,
                                    f.closed_at or f.signal_time + timedelta(hours=1))
    for p in predictions:
        if p.outcome is not None:
            found = outcomes.setdefault(p.trade_id, (p.outcome, p.realized_return,
                                                     p.resolved_at or p.created_at
                                                     + timedelta(hours=1)))
            if found[0] != p.outcome:
                raise ValueError(f"{p.trade_id}: one exit gives every row one outcome")
    open_features = [replace(f, label=None, realized_return=None, realized_pnl=None,
                             closed_at=None) for f in features]
    open_predictions = [replace(p, outcome=None, realized_return=None, resolved_at=None)
                        for p in predictions]
    with conn.transaction():
        if open_features:
            store_features(conn, open_features)
        if open_predictions:
            store_predictions(conn, open_predictions)
        for trade_id, (won, realized, closed) in outcomes.items():
            return_pct = 100.0 * realized if realized is not None else (1.0 if won else -1.0)
            report_exit(conn, trade_id, pnl=1.0 if won else -1.0, return_pct=return_pct,
                        exit_time=closed)


def by_trade(conn: psycopg.Connection, trade_id: str) -> list[PredictionRow]:
    """The predictions of a trade, oldest first (a test's read-back)."""
    with conn.cursor(row_factory=class_row(PredictionRow)) as cur:
        return cur.execute("SELECT * FROM public.ml_predictions WHERE trade_id = %s "
                           "ORDER BY created_at, id", (trade_id,)).fetchall()
