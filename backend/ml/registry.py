"""Model registry: store fitted trainers, verify artifacts, promote only on evidence.

Artifacts are native booster formats (never pickle), and their sha256 is checked before a
single byte is parsed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from backend.db import models
from backend.db.errors import translate
from backend.ml.boosters import Booster, predict_booster
from backend.ml.calibration import Calibration
from backend.ml.metrics import classification_metrics
from backend.ml.native_libs import lightgbm as lgb
from backend.ml.native_libs import xgboost as xgb

if TYPE_CHECKING:
    import psycopg

    from backend.db.models import ModelRow
    from backend.ml.model_trainer import ModelTrainer

# metric name -> True when higher is better
PROMOTION_METRICS = {"log_loss": False, "brier": False, "roc_auc": True}


class ModelIntegrityError(Exception):
    """A stored artifact does not match its recorded digest, format or feature list."""


def _label(row: ModelRow) -> str:
    return f"model id={row.id} ({row.name} v{row.version})"


def verify_artifact(row: ModelRow) -> bytes:
    """The artifact bytes, after checking their sha256 against ``row.artifact_sha256``."""
    data = bytes(row.artifact)
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.artifact_sha256:
        raise ModelIntegrityError(
            f"{_label(row)}: artifact sha256 is {digest} but the registry recorded "
            f"{row.artifact_sha256}; refusing to load a modified or corrupted artifact"
        )
    return data


def load_booster(row: ModelRow) -> Booster:
    """The native booster of ``row`` (one thread), sha256-verified before parsing.

    Raises
    ------
    ModelIntegrityError
        Digest mismatch, unknown format, unparsable bytes or a feature list that differs
        from ``row.feature_names``.
    """
    data = verify_artifact(row)
    try:
        if row.artifact_format in ("xgboost-ubj", "xgboost-json"):
            booster: Booster = xgb.Booster()
            booster.load_model(bytearray(data))
            booster.set_param({"nthread": 1})
            names = booster.feature_names
        elif row.artifact_format == "lightgbm-text":
            booster = lgb.Booster(model_str=data.decode("utf-8"))
            names = booster.feature_name()
        else:
            raise ModelIntegrityError(
                f"{_label(row)}: unknown artifact_format {row.artifact_format!r}"
            )
    except (xgb.core.XGBoostError, lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"{_label(row)}: artifact does not parse: {exc}") from exc
    if list(names or []) != list(row.feature_names):
        raise ModelIntegrityError(
            f"{_label(row)}: booster features {names} differ from the registry's "
            f"{row.feature_names}"
        )
    return booster


def register(
    conn: psycopg.Connection,
    trainer: ModelTrainer,
    *,
    name: str,
    feature_set_version: str,
    notes: str | None = None,
) -> ModelRow:
    """Store a fitted trainer as a new candidate version of ``name``.

    The stored metrics are the trainer's ``cv_report_`` (out-of-sample only, with baselines);
    hyperparameters are every booster parameter; ``training_distribution`` is the drift
    reference.
    """
    # to_artifact raises NotFittedError for an unfitted trainer (before anything is stored)
    artifact, artifact_format, sha256 = trainer.to_artifact()
    return models.insert(
        conn,
        name=name,
        algorithm=trainer.algorithm,
        feature_names=list(trainer.feature_names_),
        feature_set_version=feature_set_version,
        hyperparameters=dict(trainer.booster_params_),
        metrics=trainer.cv_report_,
        training_distribution=trainer.reference_distribution_,
        train_start=trainer.train_start_,
        train_end=trainer.train_end_,
        n_samples=trainer.n_samples_,
        artifact=artifact,
        artifact_format=artifact_format,
        artifact_sha256=sha256,
        notes=notes,
    )


@dataclass(frozen=True, slots=True)
class PromotionResult:
    promoted: bool
    candidate_score: float
    active_score: float | None
    reason: str


def _score(row: ModelRow, X: pd.DataFrame, y: np.ndarray, metric: str) -> float:
    missing = [f for f in row.feature_names if f not in X.columns]
    if missing:
        raise ValueError(f"X_holdout: lacks features of {_label(row)}: {missing}")
    raw = predict_booster(load_booster(row), X[list(row.feature_names)].to_numpy(np.float64))
    # the probabilities the model serves: its out-of-fold calibration applied
    prob = Calibration.from_json((row.metrics or {}).get("calibration")).apply(raw)
    value = classification_metrics(y, prob)[metric]
    if value is None:
        raise ValueError(f"y_holdout: {metric} is undefined here (a single class?)")
    return float(value)


def promote_if_better(
    conn: psycopg.Connection,
    *,
    candidate: ModelRow,
    X_holdout: pd.DataFrame,
    y_holdout: ArrayLike,
    metric: str = "log_loss",
    activated_by: str = "trainer",
    holdout_start: datetime | None = None,
) -> PromotionResult:
    """Activate ``candidate`` only if it beats the active model of its name on the same rows.

    Contract: ``X_holdout``/``y_holdout`` are the most recent rows, which the caller removed
    from the candidate's training set with :func:`backend.ml.validation.holdout_split`
    (purged, so no training label window reaches into them). Passing ``holdout_start`` (the
    first held-out signal time) lets this function check that the candidate's training data
    ended before it. The active model may have seen those rows in its own training; that
    favours the incumbent, so a candidate that still wins is genuinely better.

    Both models are scored on the same rows with ``metric`` ("log_loss" and "brier": lower is
    better; "roc_auc": higher). Promotion needs a strict improvement: a tie keeps the active
    model. With no active model the candidate is promoted.
    """
    if metric not in PROMOTION_METRICS:
        raise ValueError(f"metric: must be one of {sorted(PROMOTION_METRICS)}, got {metric!r}")
    y = np.asarray(y_holdout).ravel()
    if len(X_holdout) != y.size or y.size == 0:
        raise ValueError(f"y_holdout: expected {len(X_holdout)} labels (>0), got {y.size}")
    if (holdout_start is not None and candidate.train_end is not None
            and candidate.train_end > holdout_start):
        raise ValueError(
            f"holdout_start: {_label(candidate)} trained on data up to {candidate.train_end}, "
            f"after the held-out window starts ({holdout_start})"
        )
    candidate_score = _score(candidate, X_holdout, y, metric)
    # Compare and activate under the name's lock, in one transaction: two trainers finishing
    # together cannot each beat the old model and skip comparing with each other.
    with translate(), conn.transaction():
        models.lock_name(conn, name=candidate.name)
        active = models.get_active(conn, name=candidate.name)
        if active is not None and active.id == candidate.id:
            return PromotionResult(False, candidate_score, candidate_score, "already active")
        if active is None:
            models.activate(conn, model_id=candidate.id, activated_by=activated_by)
            return PromotionResult(True, candidate_score, None, "no active model")
        active_score = _score(active, X_holdout, y, metric)
        higher_better = PROMOTION_METRICS[metric]
        better = (candidate_score > active_score if higher_better
                  else candidate_score < active_score)
        comparison = (f"{metric} {candidate_score:.6g} vs active v{active.version} "
                      f"{active_score:.6g}")
        if better:
            models.activate(conn, model_id=candidate.id, activated_by=activated_by)
            return PromotionResult(True, candidate_score, active_score, f"better: {comparison}")
        return PromotionResult(False, candidate_score, active_score, f"not better: {comparison}")
