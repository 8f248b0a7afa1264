"""Probability calibration stored as plain JSON data and applied with numpy alone.

``fit_calibration`` (training side; scikit-learn is imported inside it) chooses isotonic
or sigmoid by cross-validation on out-of-fold predictions and returns a
:class:`Calibration`; ``Calibration.from_json(d).apply(p)`` is what serving runs. The
applier reproduces the fitted scikit-learn calibrator's numbers (tests/ml/test_calibration.py).

Stored forms::

    {"method": "isotonic", "x": [...], "y": [...]}   # IsotonicRegression thresholds
    {"method": "sigmoid", "a": a, "b": b}            # p' = 1 / (1 + exp(-(a logit(p) + b)))
    {"method": "identity"}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

METHODS = ("isotonic", "sigmoid")
# logit(p) is taken of p clipped to [EPS, 1 - EPS]: boosters can return exact 0 or 1.
EPS = 1e-12
# A step function fitted on a few hundred rows overfits (scikit-learn's guide asks for
# well over 1,000); below this many out-of-fold rows only the sigmoid is tried.
ISOTONIC_MIN_ROWS = 1000


def logit(prob: ArrayLike) -> np.ndarray:
    p = np.clip(np.asarray(prob, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration map from raw to calibrated probabilities.

    Attributes
    ----------
    method : {"identity", "isotonic", "sigmoid"}
    x, y : tuple of float
        Isotonic thresholds (increasing ``x``); the map is linear between them and flat
        outside, like ``IsotonicRegression(out_of_bounds="clip")``.
    a, b : float
        Sigmoid slope and intercept on the logit of the raw probability.
    """

    method: str = "identity"
    x: tuple[float, ...] = field(default=())
    y: tuple[float, ...] = field(default=())
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Calibration:
        """From the stored dict; None or ``{}`` is the identity. Bad data raises ValueError."""
        if not data:
            return cls()
        method = data.get("method")
        if method == "identity":
            return cls()
        if method == "sigmoid":
            a, b = float(data["a"]), float(data["b"])
            if not (np.isfinite(a) and np.isfinite(b)):
                raise ValueError("calibration: sigmoid a and b must be finite")
            return cls("sigmoid", a=a, b=b)
        if method == "isotonic":
            x = np.asarray(data["x"], dtype=np.float64)
            y = np.asarray(data["y"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or x.size == 0:
                raise ValueError("calibration: isotonic x and y must be equal, non-empty lists")
            if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
                raise ValueError("calibration: isotonic x must increase and y must not fall")
            if (y < 0).any() or (y > 1).any():
                raise ValueError("calibration: isotonic y must lie within [0, 1]")
            return cls("isotonic", x=tuple(x.tolist()), y=tuple(y.tolist()))
        raise ValueError(f"calibration: unknown method {method!r}")

    def to_json(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}
        if self.method == "sigmoid":
            return {"method": "sigmoid", "a": self.a, "b": self.b}
        return {"method": "identity"}

    def apply(self, prob: ArrayLike) -> np.ndarray:
        """Calibrated probabilities, same shape as ``prob`` (a float gives a 0-d array)."""
        p = np.asarray(prob, dtype=np.float64)
        if self.method == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.a * logit(p) + self.b)))
        if self.method == "isotonic":
            return _interp_clip(p, np.asarray(self.x), np.asarray(self.y))
        return p.copy()


    def apply_one(self, prob: float) -> float:
        """:meth:`apply` for one probability (the single-signal hot path: no arrays for the
        identity and the sigmoid)."""
        if self.method == "identity":
            return prob
        if self.method == "sigmoid":
            p = min(max(prob, EPS), 1.0 - EPS)
            z = self.a * (math.log(p) - math.log1p(-p)) + self.b
            return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        return float(self.apply(prob))


def _interp_clip(p: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy's ``interp1d(x, y, kind="linear")`` on ``clip(p, x[0], x[-1])``, in numpy."""
    if x.size == 1:
        return np.full(p.shape, y[0])
    q = np.clip(p, x[0], x[-1])
    hi = np.clip(np.searchsorted(x, q, side="left"), 1, x.size - 1)
    lo = hi - 1
    slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
    return slope * (q - x[lo]) + y[lo]


# --- fitting (training side) --------------------------------------------------------------


def fit_method(method: str, y: ArrayLike, prob: ArrayLike) -> Calibration:
    """Fit one method with scikit-learn on (raw probability, outcome) pairs.

    Isotonic output is bounded to [0.5 / n, 1 - 0.5 / n]: a bin of pure wins would
    otherwise answer exactly 1, an infinite log loss on the first loss that follows.
    """
    labels = np.asarray(y, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        bound = 0.5 / max(labels.size, 1)
        iso = IsotonicRegression(y_min=bound, y_max=1.0 - bound, out_of_bounds="clip")
        iso.fit(p, labels)
        return Calibration("isotonic", x=tuple(iso.X_thresholds_.tolist()),
                           y=tuple(iso.y_thresholds_.tolist()))
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        # Platt scaling on the logit. The default L2 (C = 1) shrinks the slope toward 0, the
        # base rate, when the raw scores barely move; a negative slope (a model that ranks
        # backwards in-sample) is refused: the calibration stays monotone, like isotonic.
        z = logit(p)[:, None]
        lr = LogisticRegression(max_iter=1000).fit(z, labels)
        if lr.coef_[0, 0] < 0:
            lr = LogisticRegression(max_iter=1000).fit(np.zeros_like(z), labels)
        return Calibration("sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"method: must be one of {METHODS}, got {method!r}")


def fit_calibration(y: ArrayLike, prob: ArrayLike, *, n_folds: int = 5
                    ) -> tuple[Calibration, dict[str, Any]]:
    """Choose isotonic or sigmoid by a time-ordered k-fold over out-of-fold predictions,
    then fit the winner on all of them. Isotonic competes only from
    :data:`ISOTONIC_MIN_ROWS` rows on.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
    prob : array-like of float, shape (n,)
        Out-of-fold probabilities (each row predicted by a model that never saw it), in
        time order: the folds here are contiguous blocks, not shuffled rows.

    Returns
    -------
    (calibration, summary) : summary is ``{"method", "cv_log_loss": {method: float},
        "n_folds", "n_rows"}`` for the report.
    """
    from backend.ml.metrics import row_log_loss

    labels = np.asarray(y, dtype=np.int64)
    p = np.asarray(prob, dtype=np.float64)
    n = labels.size
    folds = max(2, min(n_folds, n // 20))
    bounds = np.linspace(0, n, folds + 1).astype(np.int64)
    methods = METHODS if n >= ISOTONIC_MIN_ROWS else ("sigmoid",)
    scores: dict[str, list[float]] = {m: [] for m in methods}
    for k in range(folds):
        test = np.zeros(n, dtype=bool)
        test[bounds[k]:bounds[k + 1]] = True
        if np.unique(labels[~test]).size < 2 or not test.any():
            continue
        for method in methods:
            fitted = fit_method(method, labels[~test], p[~test])
            scores[method].append(float(row_log_loss(labels[test], fitted.apply(p[test])).sum()))
    cv = {m: (sum(v) / n if v else None) for m, v in scores.items()}
    usable = {m: v for m, v in cv.items() if v is not None}
    # ties and unusable folds go to sigmoid: two parameters overfit less than a step map
    method = min(usable, key=lambda m: (usable[m], m != "sigmoid")) if usable else "sigmoid"
    summary = {"method": method, "cv_log_loss": cv, "n_folds": folds, "n_rows": int(n)}
    return fit_method(method, labels, p), summary
