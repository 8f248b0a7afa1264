"""Out-of-sample classification metrics and the population stability index (drift).

Every figure is returned as a plain ``float``/``int`` or ``None`` (undefined, e.g. precision
when nothing was taken), never NaN, so the dicts go straight into Postgres ``jsonb``.

Plain numpy, not scikit-learn: the serving path (performance tracker, registry) imports
this module and must not load scikit-learn; tests/ml/test_metrics.py checks every figure
against scikit-learn's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

# Probabilities are clipped before the log loss so one confident miss is a large, finite cost.
PROBABILITY_CLIP = 1e-15
# PSI floor for an empty bin: ln(0) would make one empty bin dominate (a common convention).
PSI_FLOOR = 1e-4


def _check_binary(y_true: ArrayLike) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true: expected a 1-D array, got shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true: labels must be 0 or 1")
    return y.astype(np.int64)


def _check_probabilities(prob: ArrayLike, n: int) -> np.ndarray:
    p = np.asarray(prob, dtype=np.float64)
    if p.shape != (n,):
        raise ValueError(f"prob: expected shape ({n},) like y_true, got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("prob: probabilities must be finite and within [0, 1]")
    return p


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve of 0/1 labels ``y`` (both classes present) scored by ``p``:
    the Mann-Whitney statistic, a tie counting one half (what scikit-learn computes)."""
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties averaged
    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = y.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 labels ``y`` under probabilities ``p`` (clip
    them first: a probability of exactly 0 or 1 on a miss is an infinite cost)."""
    return float(-np.mean(np.where(y == 1, np.log(p), np.log(1.0 - p))))


def classification_metrics(
    y_true: ArrayLike,
    prob: ArrayLike,
    *,
    threshold: float = 0.5,
    taken: ArrayLike | None = None,
) -> dict[str, float | int | None]:
    """Metrics of probabilistic predictions against binary outcomes.

    Parameters
    ----------
    y_true : array-like of {0, 1}, shape (n,)
        Realised outcomes (1 = the trade paid).
    prob : array-like of float, shape (n,)
        Predicted probability of outcome 1.
    threshold : float
        A signal is taken (predicted positive) when ``prob >= threshold``.
    taken : array-like of bool, shape (n,), optional
        Decisions actually made; overrides ``prob >= threshold`` (live predictions carry
        their own decision, the always-take baseline takes everything).

    Returns
    -------
    dict
        count, base_rate, accuracy, precision, recall, roc_auc, log_loss, brier,
        mean_probability, n_taken. precision is None when nothing was taken, recall when no
        positive exists, roc_auc when only one class is present.
    """
    y = _check_binary(y_true)
    if y.size == 0:
        raise ValueError("y_true: no outcomes to score")
    p = _check_probabilities(prob, y.size)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: must be within [0, 1], got {threshold}")
    if taken is None:
        decided = p >= threshold
    else:
        decided = np.asarray(taken, dtype=bool)
        if decided.shape != y.shape:
            raise ValueError(f"taken: expected shape {y.shape}, got {decided.shape}")
    pred = decided.astype(np.int64)
    both_classes = np.unique(y).size == 2
    clipped = np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    true_pos = int((decided & (y == 1)).sum())
    return {
        "count": int(y.size),
        "base_rate": float(y.mean()),
        "accuracy": float((pred == y).mean()),
        "precision": _ratio(true_pos, int(pred.sum())),
        "recall": _ratio(true_pos, int(y.sum())),
        "roc_auc": roc_auc(y, p) if both_classes else None,
        "log_loss": log_loss(y, clipped),
        "brier": float(np.mean((p - y) ** 2)),
        "mean_probability": float(p.mean()),
        "n_taken": int(pred.sum()),
    }


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bin i holds (edges[i-1], edges[i]]; the first and last bins are open-ended.
    index = np.searchsorted(edges, values, side="left")
    return np.bincount(index, minlength=edges.size + 1).astype(np.float64)


def psi(
    expected_proportions: ArrayLike,
    actual_values: ArrayLike,
    bin_edges: ArrayLike,
    *,
    expected_nan_share: float | None = None,
) -> float:
    """Population stability index of ``actual_values`` against a reference distribution.

    ``PSI = sum((a - e) * ln(a / e))`` over the bins, with empty bins floored at
    :data:`PSI_FLOOR`. Common reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large.

    Parameters
    ----------
    expected_proportions : array-like, shape (k + 1,)
        Reference share of the non-missing values in each bin (sums to 1).
    actual_values : array-like, shape (m,)
        Live values; NaN means missing.
    bin_edges : array-like, shape (k,)
        Increasing interior cut points; bin i is ``(edges[i-1], edges[i]]``.
    expected_nan_share : float, optional
        Reference share of missing values. When given, "missing" is one more bin, so a change
        in how often the feature is missing counts as drift; when None, NaNs are ignored.
    """
    edges = np.asarray(bin_edges, dtype=np.float64)
    expected = np.asarray(expected_proportions, dtype=np.float64)
    if edges.ndim != 1 or (edges.size > 1 and (np.diff(edges) <= 0).any()):
        raise ValueError("bin_edges: must be a 1-D strictly increasing array")
    if expected.shape != (edges.size + 1,):
        raise ValueError(
            f"expected_proportions: need {edges.size + 1} values for {edges.size} edges, "
            f"got shape {expected.shape}"
        )
    values = np.asarray(actual_values, dtype=np.float64).ravel()
    missing = np.isnan(values)
    counts = _bin_counts(values[~missing], edges)
    if expected_nan_share is not None:
        if not 0.0 <= expected_nan_share <= 1.0:
            raise ValueError(f"expected_nan_share: must be within [0, 1], got {expected_nan_share}")
        expected = np.append(expected * (1.0 - expected_nan_share), expected_nan_share)
        counts = np.append(counts, missing.sum())
    total = counts.sum()
    if total == 0:
        raise ValueError("actual_values: no values to compare (empty or all missing)")
    actual = np.maximum(counts / total, PSI_FLOOR)
    expected = np.maximum(expected, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def reference_distribution(X: pd.DataFrame, bins: int = 10) -> dict[str, dict[str, Any]]:
    """Per-feature quantile bins of the training data, stored with a model for drift checks.

    Parameters
    ----------
    X : DataFrame, shape (n_samples, n_features)
        Training features; NaN means missing.
    bins : int
        Number of quantile bins (fewer when a feature has ties, since edges are deduplicated).

    Returns
    -------
    dict
        ``{feature: {"edges": [k floats], "proportions": [k + 1 floats], "nan_share": float,
        "count": int}}`` - the arguments :func:`psi` takes.
    """
    if bins < 2:
        raise ValueError(f"bins: need at least 2, got {bins}")
    quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    reference: dict[str, dict[str, Any]] = {}
    for name in X.columns:
        column = X[name].to_numpy(dtype=np.float64)
        if np.isinf(column).any():
            raise ValueError(f"X[{name!r}]: infinite values; use NaN for missing")
        present = column[~np.isnan(column)]
        if present.size:
            edges = np.unique(np.quantile(present, quantiles))
            proportions = _bin_counts(present, edges) / present.size
        else:
            edges, proportions = np.empty(0), np.ones(1)
        reference[str(name)] = {
            "edges": [float(e) for e in edges],
            "proportions": [float(p) for p in proportions],
            "nan_share": float(1.0 - present.size / column.size) if column.size else 0.0,
            "count": int(column.size),
        }
    return reference


# --- standard errors, paired differences, reliability (numpy only) ------------------------


def row_log_loss(y_true: ArrayLike, prob: ArrayLike) -> np.ndarray:
    """Per-row log loss, shape (n,); probabilities clipped as in the pooled figure."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(prob, dtype=np.float64), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def row_brier(y_true: ArrayLike, prob: ArrayLike) -> np.ndarray:
    """Per-row squared error of the probability, shape (n,)."""
    return (np.asarray(prob, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) ** 2


def mean_se(values: ArrayLike) -> dict[str, float | int | None]:
    """``{"mean", "se", "n"}`` of per-row values (rows taken as independent).

    Overlapping label windows make neighbouring rows correlated, so this standard error
    understates the noise; it is the usual first-order figure.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return {"mean": None, "se": None, "n": 0}
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else None
    return {"mean": float(v.mean()), "se": se, "n": int(v.size)}


def proportion_se(share: float | None, n: int) -> float | None:
    """Binomial standard error sqrt(p (1 - p) / n) of a share over n rows."""
    if share is None or n == 0:
        return None
    return float(np.sqrt(share * (1.0 - share) / n))


def auc_se(auc: float | None, y_true: ArrayLike) -> float | None:
    """Hanley & McNeil (1982) standard error of a ROC AUC."""
    y = np.asarray(y_true)
    n1, n0 = int(y.sum()), int(y.size - y.sum())
    if auc is None or n1 == 0 or n0 == 0:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return float(np.sqrt(max(var, 0.0)))


def with_standard_errors(metrics: dict[str, Any], y_true: ArrayLike, prob: ArrayLike,
                         taken: ArrayLike) -> dict[str, Any]:
    """``metrics`` (from :func:`classification_metrics`) plus ``<name>_se`` for each figure.

    Per row: binomial SEs for base rate, accuracy, precision (over the taken rows), recall
    (over the positives) and the share taken; the SE of the row mean for log loss and
    Brier; Hanley & McNeil for ROC AUC. Also adds ``share_taken``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(prob, dtype=np.float64)
    decided = np.asarray(taken, dtype=bool)
    n = int(y.size)
    out = dict(metrics)
    out["share_taken"] = float(decided.mean()) if n else None
    out["base_rate_se"] = proportion_se(metrics["base_rate"], n)
    out["accuracy_se"] = proportion_se(metrics["accuracy"], n)
    out["precision_se"] = proportion_se(metrics["precision"], int(decided.sum()))
    out["recall_se"] = proportion_se(metrics["recall"], int(y.sum()))
    out["share_taken_se"] = proportion_se(out["share_taken"], n)
    out["roc_auc_se"] = auc_se(metrics["roc_auc"], y)
    out["log_loss_se"] = mean_se(row_log_loss(y, p))["se"]
    out["brier_se"] = mean_se(row_brier(y, p))["se"]
    return out


def paired_difference(y_true: ArrayLike, prob: ArrayLike, reference: ArrayLike
                      ) -> dict[str, dict[str, float | int | None]]:
    """Per-row log loss and Brier of ``prob`` minus those of ``reference`` on the same rows.

    Returns ``{"log_loss": {"mean", "se", "n"}, "brier": {...}}``; negative means ``prob``
    is better. Pairing removes the noise both share (the same hard rows), so the SE of the
    difference is far smaller than the SEs of the two figures apart.
    """
    return {
        "log_loss": mean_se(row_log_loss(y_true, prob) - row_log_loss(y_true, reference)),
        "brier": mean_se(row_brier(y_true, prob) - row_brier(y_true, reference)),
    }


def reliability_table(y_true: ArrayLike, prob: ArrayLike, *, bins: int = 10
                      ) -> list[dict[str, float | int | None]]:
    """Calibration bins over [0, 1] of equal width; empty bins are left out.

    Each bin: ``lower``, ``upper``, ``count``, ``mean_predicted``, ``observed_rate`` and
    ``observed_se`` (binomial, from the bin's mean prediction, so an empty-class bin still
    gets an honest spread; None for a single row). A calibrated model has observed rates
    within about two SEs of the mean predictions.
    """
    if bins < 1:
        raise ValueError(f"bins: need at least 1, got {bins}")
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds [edges[i], edges[i+1]); 1.0 joins the last bin
    index = np.minimum(np.searchsorted(edges, p, side="right") - 1, bins - 1)
    table = []
    for i in range(bins):
        rows = index == i
        count = int(rows.sum())
        if count == 0:
            continue
        predicted = float(p[rows].mean())
        table.append({
            "lower": float(edges[i]), "upper": float(edges[i + 1]), "count": count,
            "mean_predicted": predicted, "observed_rate": float(y[rows].mean()),
            "observed_se": (float(np.sqrt(predicted * (1 - predicted) / count))
                            if count > 1 else None),
        })
    return table
