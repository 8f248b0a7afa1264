"""Gradient-boosted meta-label model: Optuna search over purged walk-forward folds.

Only out-of-sample figures are ever produced: every metric in ``cv_report_`` comes from
predictions on a walk-forward test fold the model (and both baselines) never trained on.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

import numpy as np
import optuna
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from backend.ml import validation
from backend.ml.baselines import always_take, logistic_baseline
from backend.ml.boosters import (
    ALGORITHMS,
    ARTIFACT_FORMATS,
    booster_to_bytes,
    fixed_params,
    gain_importance,
    predict_booster,
    train_booster,
)
from backend.ml.calibration import fit_calibration
from backend.ml.importance import feature_importance
from backend.ml.metrics import (
    classification_metrics,
    reference_distribution,
    reliability_table,
    row_log_loss,
)
from backend.ml.search import (
    SEARCH_SPACE_VERSION,
    WEIGHTING_KEYS,
    resolve_storage,
    suggest_params,
    suggest_weighting,
)
from backend.ml.weights import sample_weights
from backend.timeutil import utc_datetime


def _as_utc_datetime64(values: ArrayLike, field: str, n: int) -> np.ndarray:
    raw = np.asarray(values).ravel()
    if raw.dtype.kind in "biuf":  # epoch numbers are ambiguous (s? ns?): refuse them
        raise ValueError(f"{field}: expected datetimes, got numbers ({raw.dtype})")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(raw, utc=True))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: not datetimes ({exc})") from exc
    if len(index) != n:
        raise ValueError(f"{field}: expected {n} values like X, got {len(index)}")
    if index.hasnans:
        raise ValueError(f"{field}: contains missing times")
    return index.tz_convert(None).to_numpy(dtype="datetime64[ns]")


# --- the estimator --------------------------------------------------------------------------


class ModelTrainer(BaseEstimator):
    """Tune, evaluate (out-of-sample, beside baselines) and fit a meta-label classifier.

    Parameters
    ----------
    algorithm : {"xgboost", "lightgbm"}
    n_trials : int or None
        Optuna trials to run in this call (None: until ``timeout``).
    timeout : float or None
        Seconds for the search.
    seed : int
        Seeds the TPE sampler and the boosters: same seed and data give identical results
        (with ``n_jobs=1``).
    n_splits : int
        Purged walk-forward folds (:class:`backend.ml.validation.PurgedWalkForward`).
    embargo : datetime.timedelta or None
        Embargo after each test fold; None means the longest label horizon.
    threshold : float
        Decision threshold (take when probability >= threshold) used in every metric.
    storage : str, optuna storage or None
        None keeps the study in memory. A database URL (e.g. the service's Postgres) or an
        Optuna storage object lets several workers share one study (``study_name``,
        loaded if it exists). There the sampler seed also mixes in the number of trials
        already stored and the process id, so workers explore different points (a shared
        study is not reproducible anyway: its history depends on timing).
    study_name : str or None
    n_jobs : int
        Trials evaluated in parallel threads; each booster always uses one thread. More than
        one makes the trial order, hence the result, non-reproducible.
    show_progress : bool
        A tqdm bar over trials on stderr.

    Attributes
    ----------
    booster_ : xgboost.Booster or lightgbm.Booster
        Fitted on all rows with ``booster_params_``.
    best_params_ : dict
        Tuned values of the best trial.
    booster_params_ : dict
        Every parameter of ``booster_`` (tuned and fixed, plus ``n_estimators``).
    cv_report_ : dict
        Out-of-sample metrics (:func:`backend.ml.metrics.classification_metrics`) of the best
        parameters and of two baselines on the same folds: ``always_take`` (takes every
        signal, probability = the training fold's base rate) and ``logistic`` (median
        imputation, scaling, logistic regression). Keys: "model", "always_take", "logistic"
        (pooled over all test folds), "folds" (list of {"fold", "train_size", "test_size",
        "test_start", "test_end" (first/last test signal, ISO UTC), "model", "always_take",
        "logistic"}), "objective", "threshold", "n_splits", "embargo_seconds", "search",
        "weighting", "calibration" (``calibration_`` as JSON), "calibration_choice",
        "reliability" (bins of the out-of-fold probabilities, raw and calibrated) and
        "feature_importance" (gain and mean |SHAP| on the training rows). The search chose
        its parameters on these folds ("tuned_on_these_folds"): for an unbiased figure use
        :func:`backend.ml.evaluation.nested_evaluate`. Pooled always-take AUC is not
        exactly 0.5: its constant differs between folds.
    weighting_ : dict
        The row weighting the search chose: "sample_weight" ("none"/"uniqueness") and
        "class_weight" ("none"/"balanced").
    calibration_ : backend.ml.calibration.Calibration
        Isotonic or sigmoid (chosen by CV), fitted on the out-of-fold probabilities of the
        chosen parameters; serving applies it to the booster's output.
    feature_names_ : list of str, length n_features
    feature_importance_ : dict of str to float
        Normalised total gain per feature.
    reference_distribution_ : dict
        :func:`backend.ml.metrics.reference_distribution` of X (drift reference).
    train_start_, train_end_ : datetime
        First signal time and last label end of the training rows (UTC).
    n_samples_ : int
    study_ : optuna.Study
    """

    def __init__(
        self,
        algorithm: str = "xgboost",
        n_trials: int | None = 20,
        timeout: float | None = None,
        seed: int = 42,
        n_splits: int = 5,
        embargo: Any = None,
        threshold: float = 0.5,
        storage: Any = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        show_progress: bool = False,
    ) -> None:
        self.algorithm = algorithm
        self.n_trials = n_trials
        self.timeout = timeout
        self.seed = seed
        self.n_splits = n_splits
        self.embargo = embargo
        self.threshold = threshold
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.show_progress = show_progress

    # -- fit ----------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: ArrayLike, t0: ArrayLike, t1: ArrayLike) -> ModelTrainer:
        """Search, evaluate out-of-sample and fit the final booster.

        Parameters
        ----------
        X : DataFrame, shape (n_samples, n_features)
            Features at signal time; NaN means missing. Rows sorted by ``t0``.
        y : array-like of {0, 1}, shape (n_samples,)
        t0 : array-like of datetime, shape (n_samples,)
            Signal times.
        t1 : array-like of datetime, shape (n_samples,)
            End of each label window (the outcome is known then); ``t1 >= t0``.
        """
        self._check_params()
        values, labels, start, end = self._check_data(X, y, t0, t1)
        names = [str(c) for c in X.columns]
        splitter = validation.PurgedWalkForward(n_splits=self.n_splits, embargo=self.embargo)
        folds = [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(start, end)]
        if not folds:
            raise ValueError("X: too few rows for one walk-forward fold")
        for i, (train_idx, _) in enumerate(folds):
            if np.unique(labels[train_idx]).size < 2:
                raise ValueError(f"y: training rows of fold {i} hold a single class")

        study = self._optimize(values, labels, names, folds, start, end)
        best = dict(study.best_trial.params)
        weighting = {k: str(best.pop(k)) for k in WEIGHTING_KEYS}
        params = fixed_params(self.algorithm, self.seed) | best

        self.study_ = study
        self.best_params_ = best
        self.weighting_ = weighting
        self.booster_params_ = params
        self.feature_names_ = names
        self.n_samples_ = int(labels.size)
        self.cv_report_, y_oof, p_oof = self._cross_validate(values, labels, names, folds,
                                                             params, start, end)
        # Calibration sees out-of-fold predictions of the chosen parameters only.
        self.calibration_, choice = fit_calibration(y_oof, p_oof)
        self.cv_report_["search"] = {
            "best_trial": study.best_trial.number,
            "best_value": float(study.best_value),
            "n_complete": sum(t.state.name == "COMPLETE" for t in study.trials),
            "n_pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        }
        self.booster_ = train_booster(self.algorithm, params, values, labels, names,
                                      self._weights(labels, start, end))
        self.feature_importance_ = gain_importance(self.booster_, names)
        self.cv_report_ |= {
            "weighting": weighting,
            "calibration": self.calibration_.to_json(),
            "calibration_choice": choice,
            "reliability": {"model": reliability_table(y_oof, p_oof),
                            "model_calibrated": reliability_table(
                                y_oof, self.calibration_.apply(p_oof))},
            "feature_importance": feature_importance(self.booster_, values, names),
        }
        self.reference_distribution_ = reference_distribution(X)
        self.train_start_ = utc_datetime(start.min())
        self.train_end_ = utc_datetime(end.max())
        return self

    def _weights(self, y: np.ndarray, start: np.ndarray, end: np.ndarray,
                 weighting: dict[str, str] | None = None) -> np.ndarray | None:
        w = weighting if weighting is not None else self.weighting_
        return sample_weights(y, start, end, sample_weight=w["sample_weight"],
                              class_weight=w["class_weight"])

    def _check_params(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.n_trials is None and self.timeout is None:
            raise ValueError("n_trials: give n_trials or timeout, or the search never stops")
        if self.n_trials is not None and self.n_trials < 1:
            raise ValueError(f"n_trials: must be >= 1, got {self.n_trials}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold: must be within [0, 1], got {self.threshold}")

    def _check_data(
        self, X: pd.DataFrame, y: ArrayLike, t0: ArrayLike, t1: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(X, pd.DataFrame) or X.shape[1] == 0:
            raise ValueError("X: expected a DataFrame with one column per feature")
        if not X.columns.is_unique:
            raise ValueError("X: column names must be unique")
        try:
            values = X.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X: every column must be numeric ({exc})") from exc
        infinite = X.columns[np.isinf(values).any(axis=0)].tolist()
        if infinite:
            raise ValueError(f"X: infinite values in {infinite}; use NaN for missing")
        n = values.shape[0]
        labels = np.asarray(y).ravel()
        if labels.size != n:
            raise ValueError(f"y: expected {n} labels like X, got {labels.size}")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("y: labels must be 0 or 1")
        if np.unique(labels).size < 2:
            raise ValueError("y: both classes are needed to train")
        start = _as_utc_datetime64(t0, "t0", n)
        end = _as_utc_datetime64(t1, "t1", n)
        if (end < start).any():
            raise ValueError("t1: a label window ends before its signal (t1 < t0)")
        if (np.diff(start) < np.timedelta64(0)).any():
            raise ValueError("t0: rows must be sorted by signal time (walk-forward order)")
        return values, labels.astype(np.int64), start, end

    # -- search -------------------------------------------------------------------------------

    def _scoped_study_name(self, X: np.ndarray, y: np.ndarray, folds: list) -> str | None:
        """``study_name`` plus the algorithm and a digest of the data, folds and seed.

        Workers tuning the same data share a study; a run on other data, another split or
        another algorithm never reads (or prunes against) trials that are not its own.
        """
        if self.study_name is None:
            return None
        digest = hashlib.sha256()
        for part in (X, y, *(i for fold in folds for i in fold)):
            digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(f"{self.algorithm}:{self.seed}:{SEARCH_SPACE_VERSION}".encode())
        return f"{self.study_name}-{self.algorithm}-{digest.hexdigest()[:16]}"

    def _optimize(
        self, X: np.ndarray, y: np.ndarray, names: list[str], folds: list,
        start: np.ndarray, end: np.ndarray,
    ) -> optuna.Study:
        def objective(trial: optuna.Trial) -> float:
            params = fixed_params(self.algorithm, self.seed) | suggest_params(trial, self.algorithm)
            weighting = suggest_weighting(trial)
            losses: list[float] = []
            for step, (train_idx, test_idx) in enumerate(folds):
                weight = self._weights(y[train_idx], start[train_idx], end[train_idx], weighting)
                booster = train_booster(self.algorithm, params, X[train_idx], y[train_idx], names,
                                        weight)
                prob = predict_booster(booster, X[test_idx])
                losses.append(float(row_log_loss(y[test_idx], prob).mean()))
                # Same folds in the same order for every trial, so running means compare.
                trial.report(float(np.mean(losses)), step=step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return float(np.mean(losses))

        study = optuna.create_study(
            storage=resolve_storage(self.storage),
            sampler=optuna.samplers.TPESampler(seed=self.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            study_name=self._scoped_study_name(X, y, folds),
            direction="minimize",
            load_if_exists=True,
        )
        if self.storage is not None:
            # Workers joining a shared study with one seed would replay the same random
            # start-up points; the trials already there and the process id set them apart.
            offset = len(study.get_trials(deepcopy=False)) + os.getpid()
            study.sampler = optuna.samplers.TPESampler(seed=self.seed + offset)
        with tqdm(total=self.n_trials, desc=f"optuna {self.algorithm}", file=sys.stderr,
                  disable=not self.show_progress) as bar:
            def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                bar.update(1)
                if any(t.state.name == "COMPLETE" for t in study.trials):
                    bar.set_postfix(best_log_loss=f"{study.best_value:.4f}")

            study.optimize(objective, n_trials=self.n_trials, timeout=self.timeout,
                           n_jobs=self.n_jobs, callbacks=[advance])
        if not any(t.state.name == "COMPLETE" for t in study.trials):
            raise RuntimeError("optuna: no trial completed; raise n_trials or timeout")
        return study

    # -- out-of-sample evaluation -------------------------------------------------------------

    def _cross_validate(
        self, X: np.ndarray, y: np.ndarray, names: list[str], folds: list,
        params: dict[str, Any], start: np.ndarray, end: np.ndarray,
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        pooled: dict[str, list[np.ndarray]] = {"model": [], "always_take": [], "logistic": []}
        truths: list[np.ndarray] = []
        fold_reports = []
        for i, (train_idx, test_idx) in enumerate(folds):
            X_train, y_train, X_test, y_test = X[train_idx], y[train_idx], X[test_idx], y[test_idx]
            booster = train_booster(self.algorithm, params, X_train, y_train, names,
                                    self._weights(y_train, start[train_idx], end[train_idx]))
            logistic = logistic_baseline().fit(X_train, y_train)
            probs = {
                "model": predict_booster(booster, X_test),
                # always take; its probability is the base rate the training fold shows
                "always_take": always_take(y_train, y_test.size),
                "logistic": logistic.predict_proba(X_test)[:, 1],
            }
            report: dict[str, Any] = {
                "fold": i,
                "train_size": int(train_idx.size),
                "test_size": int(test_idx.size),
                "test_start": utc_datetime(start[test_idx].min()).isoformat(),
                "test_end": utc_datetime(start[test_idx].max()).isoformat(),
            }
            for key, prob in probs.items():
                report[key] = self._score(y_test, prob, always=key == "always_take")
                pooled[key].append(prob)
            truths.append(y_test)
            fold_reports.append(report)
        y_oos = np.concatenate(truths)
        embargo = validation.resolve_embargo(start, end, self.embargo)
        return {
            # The search chose its parameters on these very folds: optimistic for the model.
            "tuned_on_these_folds": True,
            "objective": "log_loss",
            "threshold": float(self.threshold),
            "n_splits": len(folds),
            "embargo_seconds": float(pd.Timedelta(embargo).total_seconds()),
            **{key: self._score(y_oos, np.concatenate(parts), always=key == "always_take")
               for key, parts in pooled.items()},
            "folds": fold_reports,
        }, y_oos, np.concatenate(pooled["model"])

    def _score(self, y: np.ndarray, prob: np.ndarray, *, always: bool) -> dict[str, Any]:
        taken = np.ones(y.size, dtype=bool) if always else None
        return classification_metrics(y, prob, threshold=self.threshold, taken=taken)

    # -- export -------------------------------------------------------------------------------

    def to_artifact(self) -> tuple[bytes, str, str]:
        """The fitted booster in its native format: (bytes, artifact_format, sha256 hex)."""
        check_is_fitted(self, "booster_")
        data = booster_to_bytes(self.booster_)
        return data, ARTIFACT_FORMATS[self.algorithm], hashlib.sha256(data).hexdigest()
