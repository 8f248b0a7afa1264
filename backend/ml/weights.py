"""Sample weights: average label uniqueness (López de Prado) and class balancing.

Overlapping label windows share outcomes: ten signals whose windows cover the same bars
carry less than ten independent labels. The average uniqueness of a label is the mean,
over the time its window spans, of 1 / (number of labels whose windows are open then);
weighting by it keeps clustered signals from dominating the fit. Which weighting a model
uses is chosen by the cross-validation (``backend.ml.model_trainer``), never fixed here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SAMPLE_WEIGHTS = ("none", "uniqueness")
CLASS_WEIGHTS = ("none", "balanced")


def average_uniqueness(t0: ArrayLike, t1: ArrayLike) -> np.ndarray:
    """Average uniqueness of each label window [t0, t1], shape (n,), each in (0, 1].

    Time is cut at every window start and end; on each elementary interval the
    concurrency c is the number of windows covering it, and a window's uniqueness is the
    length-weighted mean of 1 / c over its intervals. A zero-length window (t0 == t1)
    gets 1 / (number of windows containing that instant).
    """
    a = np.asarray(t0, dtype="datetime64[ns]").astype(np.int64)
    b = np.asarray(t1, dtype="datetime64[ns]").astype(np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"t1: expected shape {a.shape} like t0, got {b.shape}")
    if a.size == 0:
        return np.empty(0)
    if (b < a).any():
        raise ValueError("t1: a label window ends before it starts")
    cuts = np.unique(np.concatenate([a, b]))
    # concurrency on [cuts[k], cuts[k+1]): windows with a <= cuts[k] and b > cuts[k]
    starts = np.searchsorted(np.sort(a), cuts, side="right")
    ends = np.searchsorted(np.sort(b), cuts, side="right")
    concurrency = (starts - ends).astype(np.float64)
    lengths = np.diff(cuts).astype(np.float64)
    inverse = np.where(concurrency[:-1] > 0, 1.0 / np.maximum(concurrency[:-1], 1), 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(inverse * lengths)])
    i, j = np.searchsorted(cuts, a), np.searchsorted(cuts, b)
    span = (b - a).astype(np.float64)
    out = np.empty(a.size)
    long = span > 0
    out[long] = (cumulative[j[long]] - cumulative[i[long]]) / span[long]
    # instants: windows open at that instant, counting the zero-length ones there too
    instant = ~long
    if instant.any():
        at = a[instant]
        open_ = (np.searchsorted(np.sort(a), at, side="right")
                 - np.searchsorted(np.sort(b), at, side="left"))
        out[instant] = 1.0 / np.maximum(open_, 1)
    return out


def class_balance(y: ArrayLike) -> np.ndarray:
    """Weights n / (2 n_class) per row: both classes carry half the total weight."""
    labels = np.asarray(y, dtype=np.int64)
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return (labels.size / (2.0 * np.maximum(counts, 1.0)))[labels]


def sample_weights(y: ArrayLike, t0: ArrayLike, t1: ArrayLike, *, sample_weight: str,
                   class_weight: str) -> np.ndarray | None:
    """Row weights for one training set (mean 1), or None when both options are "none".

    Computed from the training rows alone: uniqueness counts only the windows of the rows
    given, and the class balance their labels.
    """
    if sample_weight not in SAMPLE_WEIGHTS:
        raise ValueError(f"sample_weight: must be one of {SAMPLE_WEIGHTS}, got {sample_weight!r}")
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight: must be one of {CLASS_WEIGHTS}, got {class_weight!r}")
    if sample_weight == "none" and class_weight == "none":
        return None
    labels = np.asarray(y, dtype=np.int64)
    w = np.ones(labels.size)
    if sample_weight == "uniqueness":
        w = w * average_uniqueness(t0, t1)
    if class_weight == "balanced":
        w = w * class_balance(labels)
    return w / w.mean()
