"""Serving-side models: verified load, compiled trees for the hot path, atomic hot swap.

:func:`load_model` turns a registry row into a :class:`LoadedModel`. With ``compile=True`` the
trees are compiled to a shared library (treelite + tl2cgen): one row costs ~4-10 us there
against ~75-120 us for XGBoost's own single-row call (bench/bench_predictor.py). The compiled
library is used only after it reproduced the native booster within 1e-6 on rows that hit
every split threshold, its float neighbours and NaN; otherwise the native booster serves and
a warning is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from backend.ml.boosters import Booster, predict_booster
from backend.ml.calibration import Calibration
from backend.ml.compiled_trees import DEFAULT_CACHE_DIR, CompiledTrees, compile_model
from backend.ml.decision import Decision, decide, reward_risk
from backend.ml.native_libs import xgboost as xgb
from backend.ml.registry import load_booster
from backend.positions.barriers import DEFAULT_MAX_BARS, DEFAULT_SL_ATR, DEFAULT_TP_ATR

if TYPE_CHECKING:
    from backend.db.models import ModelRow

log = logging.getLogger(__name__)

# Models stored before barriers were recorded were labelled with these.
DEFAULT_BARRIER: dict[str, Any] = {"tp_atr": DEFAULT_TP_ATR, "sl_atr": DEFAULT_SL_ATR,
                                   "horizon_bars": DEFAULT_MAX_BARS}


class LoadedModel:
    """A registry model ready to serve.

    Attributes
    ----------
    id, name, version, algorithm, feature_set_version : registry identity
    feature_names : list of str, length n_features (column order of every input)
    sha256 : str, the verified artifact digest
    compiled : bool, True when the compiled library serves predictions
    booster : xgboost.Booster or lightgbm.Booster (native, one thread)
    calibration : Calibration, fitted out-of-fold at training (identity for models stored
        without one); applied after either path, so compiled and native answers agree
    barrier : dict, the triple barrier the labels were made with (``tp_atr``, ``sl_atr``,
        ``horizon_bars``...; the defaults for models stored without one)
    """

    def __init__(self, row: ModelRow, booster: Booster, compiled: CompiledTrees | None) -> None:
        self.id: int = row.id
        self.name: str = row.name
        self.version: int = row.version
        self.algorithm: str = row.algorithm
        self.feature_names: list[str] = list(row.feature_names)
        self.feature_set_version: str = row.feature_set_version
        self.sha256: str = row.artifact_sha256
        self.booster = booster
        self._compiled = compiled
        metrics = row.metrics or {}
        self.calibration = Calibration.from_json(metrics.get("calibration"))
        self.barrier: dict[str, Any] = dict(metrics.get("barrier") or DEFAULT_BARRIER)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def ref(self) -> dict[str, Any]:
        """``{"id", "name", "version"}``: how answers name the model."""
        return {"id": self.id, "name": self.name, "version": self.version}

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _matrix(self, X: ArrayLike) -> np.ndarray:
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(
                f"X: expected shape (n, {self.n_features}), got {matrix.shape}"
            )
        return matrix

    def raw_proba(self, X: ArrayLike) -> np.ndarray:
        """The trees' probabilities before calibration, shape (n,)."""
        matrix = self._matrix(X)
        if self._compiled is not None:
            return self._compiled.predict(matrix)
        return predict_booster(self.booster, matrix)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Calibrated probabilities that the trade pays, shape (n,), for X of shape
        (n, n_features)."""
        return self.calibration.apply(self.raw_proba(X))

    def predict_one(self, x: ArrayLike) -> float:
        """Calibrated probability for one feature vector of shape (n_features,)."""
        row = np.asarray(x, dtype=np.float64)
        if row.shape != (self.n_features,):
            raise ValueError(f"x: expected shape ({self.n_features},), got {row.shape}")
        if self._compiled is not None:
            raw = self._compiled.predict_one(row)
        else:
            raw = float(predict_booster(self.booster, row.reshape(1, -1))[0])
        return self.calibration.apply_one(raw)

    def raw_margin(self, X: ArrayLike) -> np.ndarray:
        """Log-odds before the sigmoid, shape (n,) (native booster)."""
        matrix = self._matrix(X)
        if isinstance(self.booster, xgb.Booster):
            return np.asarray(self.booster.inplace_predict(matrix, predict_type="margin")).ravel()
        return np.asarray(self.booster.predict(matrix, raw_score=True, num_threads=1)).ravel()

    def contributions(self, X: ArrayLike) -> np.ndarray:
        """SHAP contributions in log-odds, shape (n, n_features + 1); the last column is the
        bias, and each row sums to :meth:`raw_margin`."""
        matrix = self._matrix(X)
        if isinstance(self.booster, xgb.Booster):
            data = xgb.DMatrix(matrix, feature_names=self.feature_names, nthread=1)
            return np.asarray(self.booster.predict(data, pred_contribs=True), dtype=np.float64)
        return np.asarray(
            self.booster.predict(matrix, pred_contrib=True, num_threads=1), dtype=np.float64
        )

    def top_contributions(self, x: ArrayLike, k: int) -> dict[str, float]:
        """The ``k`` largest contributions by magnitude for one row of shape (n_features,),
        bias excluded, largest first; features that contributed nothing are left out."""
        row = np.asarray(x, dtype=np.float64)
        if row.shape != (self.n_features,):
            raise ValueError(f"x: expected shape ({self.n_features},), got {row.shape}")
        return self.top_contributions_many(row.reshape(1, -1), k)[0]

    def top_contributions_many(self, X: ArrayLike, k: int) -> list[dict[str, float]]:
        """:meth:`top_contributions` for each row of ``X`` (n, n_features), in one call."""
        if k < 1:
            raise ValueError(f"k: must be >= 1, got {k}")
        values = self.contributions(X)[:, :-1]
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
        names = self.feature_names
        return [{names[i]: row[i] for i in idx if row[i] != 0.0}
                for row, idx in zip(values.tolist(), order.tolist(), strict=True)]


def load_model(
    row: ModelRow, *, cache_dir: Path | None = None, compile: bool = True
) -> LoadedModel:
    """Verify and load a registry row; compile it when asked and when that proves exact.

    Raises :class:`backend.ml.registry.ModelIntegrityError` when the artifact's sha256 does
    not match the recorded one (checked before parsing). Compiled libraries are cached in
    ``cache_dir`` (default: a directory under the system temp dir) by artifact sha256.
    """
    booster = load_booster(row)
    compiled = None
    if compile:
        try:
            compiled = compile_model(row, booster, Path(cache_dir or DEFAULT_CACHE_DIR))
        except Exception as exc:  # no compiler, treelite limits, mismatch: serve natively
            log.warning("model %s v%s (id %s): compiled path unavailable, serving with the "
                        "native booster: %s", row.name, row.version, row.id, exc)
    return LoadedModel(row, booster, compiled)


class Predictor:
    """Holds the model currently serving, and the decision rule; swapping the model is one
    atomic reference assignment.

    A request reads :attr:`current` once and keeps using that object, so a swap during the
    request never mixes two models. Decisions (:meth:`decide`) are by expected value in R
    (``backend.ml.decision``) unless ``threshold`` is set, which overrides the rule.
    """

    def __init__(self, threshold: float | None = None, *, costs_r: float = 0.0,
                 margin_r: float = 0.0) -> None:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold: must be within [0, 1], got {threshold}")
        self.threshold = threshold
        self.costs_r = costs_r
        self.margin_r = margin_r
        self._current: LoadedModel | None = None
        self._swap_lock = threading.Lock()

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def swap(self, model: LoadedModel | None) -> LoadedModel | None:
        """Serve ``model`` from now on; returns the model it replaced."""
        with self._swap_lock:
            previous, self._current = self._current, model
        return previous

    def decide(self, probability: float, *, barrier: Mapping[str, Any], entry: float,
               side: str, stop_price: float | None = None,
               target_price: float | None = None) -> Decision:
        """Take or skip: reward and risk in R from the signal's own stop and target when
        both are given, else from ``barrier``, the one the model was trained with
        (:attr:`LoadedModel.barrier`).

        Raises
        ------
        ValueError
            A stop or target on the wrong side of ``entry`` for ``side``.
        """
        reward, risk = reward_risk(entry, side=side, stop_price=stop_price,
                                   target_price=target_price,
                                   tp_atr=float(barrier["tp_atr"]),
                                   sl_atr=float(barrier["sl_atr"]))
        return decide(min(max(probability, 0.0), 1.0), reward_r=reward, risk_r=risk,
                      costs_r=self.costs_r, margin_r=self.margin_r, threshold=self.threshold)

    def break_even(self, decision: Decision) -> float:
        """The probability at or above which this signal would be taken: the threshold
        override, or the expected-value rule's break-even probability."""
        if self.threshold is not None:
            return self.threshold
        return min(1.0, max(0.0, (decision.risk_r + self.costs_r + self.margin_r)
                            / (decision.reward_r + decision.risk_r)))
