"""Row factories for database tests: valid rows by default, any field overridable."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from backend.db import models
from backend.db.models import ModelRow
from backend.db.performance import PerformanceRow
from backend.db.position_exits import PositionExitRow
from backend.db.predictions import PredictionRow
from backend.db.trade_features import TradeFeatureRow

TABLES = {"ml_trade_features", "ml_models", "ml_predictions", "ml_performance",
          "position_exits", "ml_schema_migrations"}
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
