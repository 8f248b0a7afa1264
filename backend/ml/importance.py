"""Feature importance for the report: split gain and mean |SHAP| from the booster itself.

SHAP values are the boosters' own exact TreeSHAP (``pred_contribs`` in XGBoost,
``pred_contrib`` in LightGBM), in log-odds; the bias column is dropped.
"""

from __future__ import annotations

import numpy as np

from backend.ml.boosters import Booster, gain_importance
from backend.ml.native_libs import xgboost as xgb


def shap_values(booster: Booster, X: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Per-row, per-feature contributions, shape (n, n_features) (bias column dropped)."""
    if isinstance(booster, xgb.Booster):
        data = xgb.DMatrix(X, feature_names=feature_names, nthread=1)
        contrib = booster.predict(data, pred_contribs=True)
    else:
        contrib = booster.predict(X, pred_contrib=True, num_threads=1)
    return np.asarray(contrib, dtype=np.float64)[:, :-1]


def mean_abs_shap(booster: Booster, X: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Mean |SHAP| per feature over the rows of ``X``, shape (n_features,)."""
    if len(X) == 0:
        return np.zeros(len(feature_names))
    return np.abs(shap_values(booster, X, feature_names)).mean(axis=0)


def importance_table(gain: np.ndarray, shap: np.ndarray, feature_names: list[str]
                     ) -> list[dict[str, float | str]]:
    """Rows ``{"feature", "gain", "mean_abs_shap"}`` sorted by mean |SHAP|, then gain."""
    order = sorted(range(len(feature_names)), key=lambda i: (-shap[i], -gain[i],
                                                             feature_names[i]))
    return [{"feature": feature_names[i], "gain": float(gain[i]),
             "mean_abs_shap": float(shap[i])} for i in order]


def feature_importance(booster: Booster, X: np.ndarray, feature_names: list[str]
                       ) -> list[dict[str, float | str]]:
    """Normalised total gain and mean |SHAP| (on ``X``) of one booster, as table rows."""
    gains = gain_importance(booster, feature_names)
    return importance_table(np.array([gains[n] for n in feature_names]),
                            mean_abs_shap(booster, X, feature_names), feature_names)
