"""Nested out-of-sample evaluation: no figure it reports was tuned on the rows it scores.

Outer loop: purged walk-forward folds (:class:`backend.ml.validation.PurgedWalkForward`).
Each outer fold's training rows alone go through the whole training recipe
(:class:`backend.ml.model_trainer.ModelTrainer`: Optuna over an inner purged walk-forward,
weighting chosen there, calibration fitted on the inner out-of-fold predictions, final
fit); the fold's test rows are then scored once. The final hold-out window of
:func:`backend.ml.validation.holdout_split` (the one ``train`` promotes on) is scored by
a model run through the same recipe on everything before it. Both baselines (always-take
at the training base rate, logistic regression) are fitted on the same training rows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from backend.ml import validation
from backend.ml.baselines import always_take, logistic_baseline
from backend.ml.boosters import gain_importance, predict_booster
from backend.ml.dataset import Dataset
from backend.ml.decision import break_even_probability, decide_many
from backend.ml.importance import importance_table, shap_values
from backend.ml.metrics import (
    classification_metrics,
    mean_se,
    paired_difference,
    proportion_se,
    reliability_table,
    with_standard_errors,
)
from backend.ml.model_trainer import ModelTrainer
from backend.positions.barriers import DEFAULT_SL_ATR, DEFAULT_TP_ATR

WHO = ("model", "model_calibrated", "always_take", "logistic")
SE_METHOD = (
    "pooled figures: per row, rows taken as independent (binomial for shares and rates, SE "
    "of the row mean for log loss, Brier and returns, Hanley-McNeil for ROC AUC); "
    "across_folds: spread of the per-fold figures, std / sqrt(folds); paired: SE of the "
    "per-row difference. Overlapping label windows make rows correlated, so per-row SEs "
    "lean small."
)


@dataclass(frozen=True)
class DecisionConfig:
    """The decision rule evaluated (backend.ml.decision): barrier reward/risk, costs and
    margin in R, or an explicit probability ``threshold`` override."""

    tp_atr: float = DEFAULT_TP_ATR
    sl_atr: float = DEFAULT_SL_ATR
    costs_r: float = 0.0
    margin_r: float = 0.0
    threshold: float | None = None

    def to_json(self) -> dict[str, Any]:
        reward = self.tp_atr / self.sl_atr
        return {"rule": "threshold" if self.threshold is not None else "expected_value",
                "tp_atr": self.tp_atr, "sl_atr": self.sl_atr, "costs_r": self.costs_r,
                "margin_r": self.margin_r, "threshold": self.threshold,
                "barrier_reward_r": reward,
                "break_even_probability": break_even_probability(
                    reward, 1.0, self.costs_r, self.margin_r)}


@dataclass
class OutOfSample:
    """Rows scored out-of-sample, in time order.

    Attributes
    ----------
    rows : ndarray of int64, shape (m,), positions into the dataset.
    t0, y, returns, returns_r, reward_r : ndarray, shape (m,)
        Signal times, labels, side-signed returns (fraction of entry), returns in R
        (NaN when the risk is unknown) and the reward in R the decision used.
    prob : dict of name -> ndarray (m,), for every name in :data:`WHO`.
    taken : ndarray of bool, shape (m,), the decision rule on the calibrated probabilities.
    """

    rows: np.ndarray
    t0: np.ndarray
    y: np.ndarray
    returns: np.ndarray
    returns_r: np.ndarray
    reward_r: np.ndarray
    prob: dict[str, np.ndarray] = field(default_factory=dict)
    taken: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))


@dataclass
class NestedEvaluation:
    """``report`` (plain JSON data) and the out-of-sample rows it was computed from."""

    report: dict[str, Any]
    walk_forward: OutOfSample
    holdout: OutOfSample


def risk_in_r(X: pd.DataFrame, config: DecisionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(risk as a fraction of the entry, reward in R) per row.

    The signal's own stop and target (``stop_dist_atr``, ``reward_risk``) when present,
    else the training barrier; ``atr_pct`` turns ATR distances into fractions of the price.
    Without ``atr_pct`` the risk is NaN (returns in R undefined).
    """
    n = len(X)
    atr = X["atr_pct"].to_numpy(dtype=np.float64) if "atr_pct" in X else np.full(n, np.nan)
    stop = (X["stop_dist_atr"].to_numpy(dtype=np.float64) if "stop_dist_atr" in X
            else np.full(n, np.nan))
    own = (X["reward_risk"].to_numpy(dtype=np.float64) if "reward_risk" in X
           else np.full(n, np.nan))
    stop = np.where(np.isfinite(stop) & (stop > 0), stop, config.sl_atr)
    reward = np.where(np.isfinite(own) & (own > 0), own, config.tp_atr / config.sl_atr)
    return stop * atr, reward


def _gain(booster: Any, names: list[str]) -> np.ndarray:
    share = gain_importance(booster, names)
    return np.array([share[n] for n in names])


def _iso(t: np.datetime64) -> str:
    return pd.Timestamp(t).tz_localize("UTC").isoformat()


def _fit_window(data: Dataset, values: np.ndarray, train: np.ndarray, test: np.ndarray,
                trainer: ModelTrainer) -> tuple[dict[str, np.ndarray], dict[str, Any], Any]:
    """Run the training recipe on ``train`` only; probabilities for ``test``."""
    trainer.fit(data.X.iloc[train], data.y[train], data.t0[train], data.t1[train])
    raw = predict_booster(trainer.booster_, values[test])
    logistic = logistic_baseline().fit(values[train], data.y[train])
    prob = {"model": raw, "model_calibrated": trainer.calibration_.apply(raw),
            "always_take": always_take(data.y[train], test.size),
            "logistic": logistic.predict_proba(values[test])[:, 1]}
    search = trainer.cv_report_["search"]
    summary = {
        "train_size": int(train.size), "test_size": int(test.size),
        "test_start": _iso(data.t0[test].min()), "test_end": _iso(data.t0[test].max()),
        "search": {"n_complete": search["n_complete"], "n_pruned": search["n_pruned"],
                   "best_params": trainer.best_params_, "weighting": trainer.weighting_,
                   # what the tuner minimised on the inner folds: optimistic by selection
                   "inner_best_log_loss_tuned": search["best_value"]},
        "calibration": trainer.calibration_.to_json(),
        "calibration_choice": trainer.cv_report_["calibration_choice"],
    }
    return prob, summary, trainer.booster_


def _decisions(oos: OutOfSample, prob: np.ndarray, config: DecisionConfig) -> np.ndarray:
    taken, _, _ = decide_many(prob, oos.reward_r, 1.0, costs_r=config.costs_r,
                              margin_r=config.margin_r, threshold=config.threshold)
    return taken


def _scores(oos: OutOfSample, config: DecisionConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int(oos.y.size)}
    for who in WHO:
        p = oos.prob[who]
        taken = (np.ones(p.size, dtype=bool) if who == "always_take"
                 else _decisions(oos, p, config))
        m = classification_metrics(oos.y, p, taken=taken)
        out[who] = with_standard_errors(m, oos.y, p, taken)
    out["paired"] = {
        who: {f"vs_{ref}": paired_difference(oos.y, oos.prob[who], oos.prob[ref])
              for ref in ("always_take", "logistic") if ref != who}
        for who in ("model", "model_calibrated", "logistic")
    }
    out["taken_vs_all"] = _taken_vs_all(oos, config)
    out["reliability"] = {who: reliability_table(oos.y, oos.prob[who])
                          for who in ("model", "model_calibrated")}
    return out


def _returns(oos: OutOfSample, mask: np.ndarray) -> dict[str, Any]:
    r = oos.returns_r[mask]
    n = int(mask.sum())
    hit = float(oos.y[mask].mean()) if n else None
    return {"count": n, "hit_rate": hit, "hit_rate_se": proportion_se(hit, n),
            "mean_r": mean_se(r[np.isfinite(r)]),
            "mean_return": mean_se(oos.returns[mask][np.isfinite(oos.returns[mask])])}


def _taken_vs_all(oos: OutOfSample, config: DecisionConfig) -> dict[str, Any]:
    """The rule on the calibrated probabilities: the taken signals' outcomes beside all."""
    taken = oos.taken
    share = float(taken.mean()) if taken.size else None
    gap = None
    a, b = oos.returns_r[taken], oos.returns_r[~taken]
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size > 1 and b.size > 1:  # Welch: taken minus skipped, independent groups
        gap = {"mean": float(a.mean() - b.mean()),
               "se": float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))}
    return {"probability": "model_calibrated", "share_taken": share,
            "share_taken_se": proportion_se(share, int(taken.size)),
            "taken": _returns(oos, taken), "skipped": _returns(oos, ~taken),
            "all": _returns(oos, np.ones(taken.size, dtype=bool)),
            "taken_minus_skipped_r": gap}


def _across_folds(folds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for who in WHO:
        out[who] = {}
        for metric in ("log_loss", "brier", "roc_auc", "accuracy"):
            vals = [f[who][metric] for f in folds if f[who][metric] is not None]
            out[who][metric] = mean_se(np.array(vals, dtype=np.float64))
    return out


def _oos(data: Dataset, rows: np.ndarray, risk: np.ndarray, reward: np.ndarray,
         prob: dict[str, np.ndarray], config: DecisionConfig) -> OutOfSample:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = data.returns[rows] / risk[rows]
    oos = OutOfSample(rows, data.t0[rows], data.y[rows], data.returns[rows], r,
                      reward[rows], prob)
    oos.taken = _decisions(oos, prob["model_calibrated"], config)
    return oos


def nested_evaluate(
    data: Dataset, *, algorithm: str = "xgboost", n_trials: int = 20, seed: int = 42,
    n_splits: int = 5, inner_splits: int = 5, embargo: Any = None,
    holdout_fraction: float = 0.2, decision: DecisionConfig | None = None,
    show_progress: bool = False,
) -> NestedEvaluation:
    """Nested purged walk-forward evaluation plus the final hold-out; see the module doc.

    Parameters
    ----------
    data : Dataset, rows sorted by ``t0``.
    algorithm, n_trials, seed : as :class:`ModelTrainer` (the same seed in every window).
    n_splits, inner_splits : outer and inner purged walk-forward folds.
    embargo : timedelta or None (the longest label horizon of ``data``), outer and inner.
    holdout_fraction : the final window, as ``train`` holds it out.
    decision : the rule whose taken signals are reported (default: expected value with the
        default barriers, no costs, no margin).
    show_progress : a tqdm bar over the windows on stderr.

    Returns
    -------
    NestedEvaluation; ``report`` is plain JSON data, identical for the same seed and data.
    """
    config = decision or DecisionConfig()
    values = data.X.to_numpy(dtype=np.float64)
    names = [str(c) for c in data.X.columns]
    gap = validation.resolve_embargo(data.t0, data.t1, embargo)
    outer = list(validation.PurgedWalkForward(n_splits=n_splits, embargo=gap)
                 .split(data.t0, data.t1))
    windows = [*outer, validation.holdout_split(data.t0, data.t1, holdout_fraction, gap)]
    risk, reward = risk_in_r(data.X, config)

    def trainer() -> ModelTrainer:
        return ModelTrainer(algorithm=algorithm, n_trials=n_trials, seed=seed,
                            n_splits=inner_splits, embargo=pd.Timedelta(gap))

    results = []
    for k, (train, test) in enumerate(tqdm(windows, desc=f"nested {algorithm}",
                                           file=sys.stderr, disable=not show_progress)):
        try:
            results.append(_fit_window(data, values, train, test, trainer()))
        except ValueError as exc:
            where = "hold-out" if k == len(outer) else f"outer fold {k}"
            raise ValueError(f"{where}: {exc}") from exc

    fold_parts = results[:-1]
    wf_rows = np.concatenate([test for _, test in outer])
    wf = _oos(data, wf_rows, risk, reward,
              {w: np.concatenate([p[w] for p, _, _ in fold_parts]) for w in WHO}, config)
    folds = []
    for k, ((_, test), (prob, summary, _)) in enumerate(zip(outer, fold_parts, strict=True)):
        part = _oos(data, test, risk, reward, prob, config)
        folds.append({"fold": k, **summary, **{
            w: classification_metrics(part.y, prob[w], taken=(
                np.ones(test.size, dtype=bool) if w == "always_take"
                else _decisions(part, prob[w], config))) for w in WHO}})
    hold_train, hold_test = windows[-1]
    hold_prob, hold_summary, hold_booster = results[-1]
    hold = _oos(data, hold_test, risk, reward, hold_prob, config)

    gains = np.mean([_gain(b, names) for _, _, b in fold_parts], axis=0)
    shap = np.concatenate([np.abs(shap_values(b, values[test], names))
                           for (_, test), (_, _, b) in zip(outer, fold_parts, strict=True)])
    report = {
        "protocol": "nested purged walk-forward + final hold-out",
        "algorithm": algorithm, "seed": seed, "n_trials": n_trials,
        "n_samples": len(data), "n_splits": len(outer), "inner_splits": inner_splits,
        "embargo_seconds": float(pd.Timedelta(gap).total_seconds()),
        "holdout_fraction": holdout_fraction, "decision": config.to_json(),
        "se_method": SE_METHOD,
        **_scores(wf, config),
        "across_folds": _across_folds(folds),
        "folds": folds,
        "holdout": {**hold_summary, "train_size": int(hold_train.size), **_scores(hold, config)},
        "feature_importance": {
            "walk_forward": importance_table(gains, shap.mean(axis=0), names),
            "holdout": importance_table(_gain(hold_booster, names), np.abs(
                shap_values(hold_booster, values[hold_test], names)).mean(axis=0), names),
        },
    }
    return NestedEvaluation(report, wf, hold)


def _pm(m: dict[str, Any] | None, spec: str = ".4f") -> str:
    if not m or m.get("mean") is None:
        return "-"
    se = m.get("se")
    return f"{m['mean']:{spec}}" + ("" if se is None else f" ± {se:{spec.lstrip('+')}}")


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report as text for a terminal: metrics ± SE, paired differences, taken vs all."""
    lines = [f"{report['protocol']}: {report['algorithm']}, {report['n_samples']} signals, "
             f"{report['n_splits']} outer x {report['inner_splits']} inner folds, "
             f"{report['n_trials']} trials, embargo {report['embargo_seconds'] / 3600:g} h; "
             f"decision: {report['decision']['rule']}"]
    keys = ("roc_auc", "log_loss", "brier", "accuracy", "precision", "share_taken")
    for title, part in (("walk-forward test folds", report), ("final hold-out",
                                                                report["holdout"])):
        lines += ["", f"{title} ({part['count']} rows, base rate "
                      f"{part['always_take']['base_rate']:.3f})",
                  f"  {'':<17}" + "".join(f"{k:>18}" for k in keys)]
        for who in WHO:
            m = part[who]
            lines.append(f"  {who:<17}" + "".join(
                f"{_pm({'mean': m[k], 'se': m[k + '_se']}, '.3f'):>18}" for k in keys))
        for who, refs in part["paired"].items():
            for ref, diff in refs.items():
                lines.append(f"  {who} minus {ref[3:]}: log loss {_pm(diff['log_loss'], '+.4f')}"
                             f", Brier {_pm(diff['brier'], '+.4f')} (paired, per row)")
        tv = part["taken_vs_all"]
        lines.append(f"  taken {tv['taken']['count']}/{part['count']}: mean "
                     f"{_pm(tv['taken']['mean_r'], '+.3f')} R against "
                     f"{_pm(tv['all']['mean_r'], '+.3f')} R for all signals")
    return lines
