"""Booster helpers shared by training and serving: fit, predict, serialise, importance.

Serving imports this module, so it must never import Optuna, scikit-learn or tqdm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.ml.native_libs import lightgbm as lgb
from backend.ml.native_libs import xgboost as xgb

ALGORITHMS = ("xgboost", "lightgbm")
ARTIFACT_FORMATS = {"xgboost": "xgboost-ubj", "lightgbm": "lightgbm-text"}
Booster = xgb.Booster | lgb.Booster
# A distributed.Client while backend.ml.dask_training.on_cluster is active, else None.
# Process-wide (not a ContextVar): Optuna's n_jobs threads must see it too.
_cluster: Any = None


def set_cluster(client: Any) -> Any:
    """Fit boosters on this Dask client from now on (None: in process); returns the old."""
    global _cluster
    previous, _cluster = _cluster, client
    return previous


def fixed_params(algorithm: str, seed: int) -> dict[str, Any]:
    """Parameters never tuned: objective, one thread and fixed seeds (reproducible fits)."""
    if algorithm == "xgboost":
        return {"objective": "binary:logistic", "tree_method": "hist", "nthread": 1,
                "seed": seed, "verbosity": 0}
    return {"objective": "binary", "num_threads": 1, "seed": seed, "deterministic": True,
            "force_row_wise": True, "bagging_freq": 1, "verbosity": -1}


def train_booster(
    algorithm: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, feature_names: list[str],
    weight: np.ndarray | None = None,
) -> Booster:
    """Fit one booster; ``params`` holds ``n_estimators`` plus native parameters; ``weight``
    (shape (n,), optional) weights the rows.

    Inside ``backend.ml.dask_training.on_cluster`` the fit runs on that Dask cluster."""
    if _cluster is not None:
        from backend.ml.dask_training import train_on_cluster

        return train_on_cluster(_cluster, algorithm, params, X, y, feature_names, weight)
    native = {k: v for k, v in params.items() if k != "n_estimators"}
    rounds = int(params["n_estimators"])
    if algorithm == "xgboost":
        data = xgb.DMatrix(X, label=y, weight=weight, feature_names=feature_names, nthread=1)
        return xgb.train(native, data, num_boost_round=rounds)
    data = lgb.Dataset(X, label=y, weight=weight, feature_name=feature_names,
                       params={"verbosity": -1})
    return lgb.train(native, data, num_boost_round=rounds)


def predict_booster(booster: Booster, X: np.ndarray) -> np.ndarray:
    """Probabilities of class 1, shape (n,), with the native library (one thread)."""
    if isinstance(booster, xgb.Booster):
        return np.asarray(booster.inplace_predict(X), dtype=np.float64).ravel()
    return np.asarray(booster.predict(X, num_threads=1), dtype=np.float64).ravel()


def gain_importance(booster: Booster, feature_names: list[str]) -> dict[str, float]:
    """Total split gain per feature, normalised to sum to 1 (all zero when no split)."""
    if isinstance(booster, xgb.Booster):
        scores = booster.get_score(importance_type="total_gain")
        gains = np.array([scores.get(name, 0.0) for name in feature_names], dtype=np.float64)
    else:
        gains = booster.feature_importance(importance_type="gain").astype(np.float64)
    total = gains.sum()
    share = gains / total if total > 0 else np.zeros_like(gains)
    return {name: float(v) for name, v in zip(feature_names, share, strict=True)}


def booster_to_bytes(booster: Booster) -> bytes:
    if isinstance(booster, xgb.Booster):
        return bytes(booster.save_raw(raw_format="ubj"))
    return booster.model_to_string().encode("utf-8")
