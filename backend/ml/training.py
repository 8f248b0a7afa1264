"""Training orchestration: datasets, tuning and fitting on all but the most recent window,
the held-out comparison with always-take, registration, and promotion.

The trainer (Optuna, scikit-learn, tqdm) is imported inside :func:`train`, so the serving
path, which imports this module through ``ml_system``, never loads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import psycopg

from backend.config import Settings
from backend.db import models as models_db
from backend.db import trade_features
from backend.ml import registry
from backend.ml.barrier_spec import Barrier
from backend.ml.boosters import predict_booster
from backend.ml.candles import Candles
from backend.ml.dask_training import on_cluster
from backend.ml.dataset import Dataset, build_dataset, dataset_from_outcomes
from backend.ml.feature_extractor import FEATURE_SET_VERSION, FeatureExtractor
from backend.ml.metrics import classification_metrics
from backend.ml.validation import holdout_split
from backend.timeutil import utc_datetime

if TYPE_CHECKING:
    from backend.ml.model_trainer import ModelTrainer

Progress = Callable[[float, str], None]
Connect = Callable[[], AbstractContextManager[psycopg.Connection]]
HOLDOUT_FRACTION = 0.2


@dataclass
class TrainOutcome:
    model_id: int
    name: str
    version: int
    promoted: bool
    reason: str
    metrics: dict[str, Any]
    holdout: dict[str, Any]
    n_samples: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """What a training job reports as its result."""
        return {"model_id": self.model_id, "name": self.name, "version": self.version,
                "promoted": self.promoted, "reason": self.reason,
                "n_samples": self.n_samples, "seconds": round(self.seconds, 2),
                "metrics": {k: self.metrics.get(k) for k in ("model", "always_take",
                                                             "logistic")},
                "holdout": self.holdout}


def concat_datasets(parts: Sequence[Dataset | None]) -> Dataset:
    present = [p for p in parts if p is not None and len(p.y)]
    if not present:
        raise ValueError("no labelled data: give candles or record exits first")
    return present[0] if len(present) == 1 else Dataset.concat(present)


def dataset_from_candles(candles: Candles, *, extractor: FeatureExtractor, barrier: Barrier,
                         strategies: Sequence[str] | None = None, symbol: str = "",
                         timeframe: str = "") -> Dataset:
    """Bootstrap labels from candles with ``barrier`` (its horizon in bars of
    ``timeframe``)."""
    kwargs: dict[str, Any] = {"extractor": extractor, "symbol": symbol,
                              "timeframe": timeframe, "barrier": barrier}
    if strategies:
        kwargs["strategies"] = list(strategies)
    return build_dataset(candles, **kwargs)


def dataset_from_database(connect: Connect, *, extractor: FeatureExtractor,
                          symbol: str | None = None,
                          timeframe: str | None = None) -> Dataset | None:
    """The labelled real trades of this feature set (the connection is released before
    the dataset is built)."""
    with connect() as conn:
        rows = trade_features.labeled(conn, feature_set_version=FEATURE_SET_VERSION,
                                      symbol=symbol, timeframe=timeframe)
    if not rows:
        return None
    return dataset_from_outcomes(rows, extractor=extractor)


def train(data: Dataset, *, settings: Settings, connect: Connect, name: str,
          algorithm: str = "xgboost", trials: int | None = None, seed: int | None = None,
          promote: bool = True, show_progress: bool = False, notes: str | None = None,
          progress: Progress | None = None,
          on_promoted: Callable[[], Any] = lambda: None) -> TrainOutcome:
    """Tune and fit on all but the most recent window, register as candidate, and promote
    only if it beats the active model on that held-out window. ``on_promoted`` runs when
    the model became the active one of ``settings.model_name`` (the name served here)."""
    from backend.ml.model_trainer import ModelTrainer  # Optuna, scikit-learn: training only

    report = progress or (lambda _f, _m: None)
    started = time.perf_counter()
    train_idx, hold_idx = holdout_split(data.t0, data.t1, fraction=HOLDOUT_FRACTION)
    X_train, X_hold = data.X.iloc[train_idx], data.X.iloc[hold_idx]
    y_train, y_hold = data.y[train_idx], data.y[hold_idx]
    report(0.05, f"tuning {algorithm} on {len(train_idx)} rows")
    trainer = ModelTrainer(
        algorithm=algorithm,
        n_trials=trials if trials is not None else settings.train_trials,
        timeout=settings.train_timeout_seconds,
        seed=seed if seed is not None else settings.train_seed,
        threshold=settings.metrics_threshold,
        storage=(settings.optuna_storage.get_secret_value()
                 if settings.optuna_storage else None),
        study_name=settings.optuna_study,
        show_progress=show_progress,
    )
    with on_cluster(settings.dask_scheduler):  # unset: boosters fit in process
        trainer.fit(X_train, y_train, data.t0[train_idx], data.t1[train_idx])
    report(0.85, "evaluating on the held-out window")
    holdout = holdout_report(trainer, X_hold, y_hold, y_train,
                             threshold=settings.metrics_threshold)
    with connect() as conn:
        row = registry.register(conn, trainer, name=name,
                                feature_set_version=FEATURE_SET_VERSION, notes=notes)
        models_db.merge_metrics(conn, model_id=row.id, metrics={"holdout": holdout,
                                                              "barrier": data.barrier})
        reason = "registered as candidate"
        promoted = False
        if promote:
            result = registry.promote_if_better(
                conn, candidate=row, X_holdout=X_hold, y_holdout=y_hold,
                holdout_start=utc_datetime(data.t0[hold_idx].min()) if len(hold_idx) else None)
            promoted, reason = result.promoted, result.reason
    if promoted and name == settings.model_name:
        on_promoted()
    report(1.0, "done")
    return TrainOutcome(model_id=row.id, name=row.name, version=row.version,
                        promoted=promoted, reason=reason, metrics=trainer.cv_report_,
                        holdout=holdout, n_samples=len(train_idx),
                        seconds=time.perf_counter() - started)


def holdout_report(trainer: ModelTrainer, X_hold: Any, y_hold: np.ndarray,
                   y_train: np.ndarray, *, threshold: float) -> dict[str, Any]:
    """Out-of-sample figures on the held-out window (calibrated probabilities, as served),
    beside always-take."""
    if len(y_hold) == 0:
        return {}
    prob = trainer.calibration_.apply(
        predict_booster(trainer.booster_, X_hold.to_numpy(dtype=np.float64)))
    base = float(np.mean(y_train))
    return {
        "model": classification_metrics(y_hold, np.asarray(prob), threshold=threshold),
        "always_take": classification_metrics(y_hold, np.full(len(y_hold), base),
                                              threshold=threshold,
                                              taken=np.ones(len(y_hold), dtype=bool)),
    }


class TrainingSystem(Protocol):
    """What a training job needs of the system (``MLSystem`` is one)."""

    def dataset_from_candles(self, candles: Candles, *, strategies: Sequence[str] | None,
                             symbol: str, timeframe: str,
                             barrier: Barrier | None) -> Dataset: ...

    def dataset_from_database(self, *, symbol: str | None,
                              timeframe: str | None) -> Dataset | None: ...

    def train(self, data: Dataset, **kwargs: Any) -> TrainOutcome: ...


def run_job(system: TrainingSystem, progress: Progress, *, candles: Candles | None,
            strategies: Sequence[str] | None, use_database: bool, symbol: str | None,
            timeframe: str | None, algorithm: str, trials: int | None, seed: int | None,
            promote: bool, notes: str, barrier: Barrier | None = None) -> dict[str, Any]:
    """The body of a training job (POST /models/train): datasets, training, its summary."""
    progress(0.01, "building the dataset")
    parts = []
    if candles is not None:
        parts.append(system.dataset_from_candles(candles, strategies=strategies,
                                                 symbol=symbol or "", timeframe=timeframe or "",
                                                 barrier=barrier))
    if use_database:
        parts.append(system.dataset_from_database(symbol=symbol, timeframe=timeframe))
    outcome = system.train(concat_datasets(parts), algorithm=algorithm, trials=trials,
                           seed=seed, promote=promote, progress=progress, notes=notes)
    return outcome.summary()
