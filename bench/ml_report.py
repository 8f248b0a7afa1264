"""Out-of-sample results of the meta-label model on real data: the tables docs/ml.md quotes.

    python bench/ml_report.py [--trials 20] [--seed 42] [--out FILE]

For EURUSD hourly and GOOG daily (the ``backtesting`` package's sample data): build the
labelled dataset with all three base strategies (backend.ml.dataset.build_dataset), then for
xgboost and lightgbm run ModelTrainer (Optuna over 5 purged walk-forward folds, n_jobs=1)
and print Markdown tables of:

1. pooled walk-forward test-fold metrics of the model beside the always-take and logistic
   baselines (threshold 0.5), and the paired log-loss difference to always-take;
2. decisions: the signals each rule would take and their mean triple-barrier return, against
   all signals, at the threshold 0.5, at 1/3 (the break-even hit rate of a 2 ATR target
   against a 1 ATR stop, fixed before looking at data) and at the training base rate (each
   fold's threshold is the base rate of that fold's training rows only);
3. a hold-out check as ``python -m backend train`` does it: tune and fit on the first 80 %
   of signals, score the last 20 % (purged) that no tuning trial ever saw.

The walk-forward probabilities are recomputed from the trainer's chosen parameters on the
same folds; the script stops if they do not reproduce ``cv_report_`` exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lightgbm  # noqa: E402
import optuna  # noqa: E402
import xgboost  # noqa: E402

from backend.ml import validation  # noqa: E402
from backend.ml.boosters import predict_booster, train_booster  # noqa: E402
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import Dataset, build_dataset  # noqa: E402
from backend.ml.labeling import STRATEGIES  # noqa: E402
from backend.ml.metrics import PROBABILITY_CLIP, classification_metrics  # noqa: E402
from backend.ml.model_trainer import ModelTrainer, _logistic_baseline  # noqa: E402
from backend.positions.barriers import DEFAULT_SL_ATR, DEFAULT_TP_ATR  # noqa: E402

SYMBOLS = {"EURUSD": "1h", "GOOG": "1d"}
ALGORITHMS = ("xgboost", "lightgbm")
BASELINES = ("always_take", "logistic")
HOLDOUT_FRACTION = 0.2
# Hit rate at which a trade that wins tp and loses sl breaks even (time exits aside).
BREAK_EVEN = DEFAULT_SL_ATR / (DEFAULT_TP_ATR + DEFAULT_SL_ATR)
BP = 1e4  # returns are fractions of the entry price; shown in basis points


@dataclass
class OutOfSample:
    """Pooled walk-forward test rows, in fold order.

    Attributes
    ----------
    y, returns : ndarray, shape (m,)
    prob : dict of name -> ndarray (m,), for "model", "always_take", "logistic"
    """

    y: np.ndarray
    returns: np.ndarray
    prob: dict[str, np.ndarray]

    @property
    def train_rate(self) -> np.ndarray:
        """Base rate of the training rows of each row's fold: always-take's probability."""
        return self.prob["always_take"]


def walk_forward(trainer: ModelTrainer, data: Dataset) -> OutOfSample:
    """Re-run the trainer's folds with its chosen parameters and keep every probability."""
    X = data.X.to_numpy(dtype=np.float64)
    names = list(trainer.feature_names_)
    splitter = validation.PurgedWalkForward(n_splits=trainer.n_splits, embargo=trainer.embargo)
    parts: dict[str, list[np.ndarray]] = {"model": [], "always_take": [], "logistic": []}
    tests = []
    for train, test in splitter.split(data.t0, data.t1):
        y_train = data.y[train]
        booster = train_booster(trainer.algorithm, trainer.booster_params_, X[train], y_train,
                                names)
        parts["model"].append(predict_booster(booster, X[test]))
        parts["always_take"].append(np.full(test.size, y_train.mean()))
        logistic = _logistic_baseline().fit(X[train], y_train)
        parts["logistic"].append(logistic.predict_proba(X[test])[:, 1])
        tests.append(test)
    rows = np.concatenate(tests)
    oos = OutOfSample(data.y[rows], data.returns[rows],
                      {k: np.concatenate(v) for k, v in parts.items()})
    for key, prob in oos.prob.items():
        taken = np.ones(rows.size, dtype=bool) if key == "always_take" else None
        again = classification_metrics(oos.y, prob, threshold=trainer.threshold, taken=taken)
        if again != trainer.cv_report_[key]:
            raise RuntimeError(f"{key}: recomputed folds differ from cv_report_ "
                               f"({again} vs {trainer.cv_report_[key]})")
    return oos


# --- statistics -----------------------------------------------------------------------------


def row_log_loss(y: np.ndarray, prob: np.ndarray) -> np.ndarray:
    p = np.clip(prob, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def mean_se(values: np.ndarray) -> tuple[float | None, float | None]:
    """Mean and its standard error (rows treated as independent)."""
    if values.size == 0:
        return None, None
    se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else None
    return float(values.mean()), se


def auc_se(auc: float | None, y: np.ndarray) -> float | None:
    """Hanley & McNeil (1982) standard error of a ROC AUC."""
    n1, n0 = int(y.sum()), int(y.size - y.sum())
    if auc is None or n1 == 0 or n0 == 0:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return float(np.sqrt(var))


# --- formatting -----------------------------------------------------------------------------


def fmt(value: float | int | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def pm(mean: float | None, se: float | None, spec: str = ".3f") -> str:
    """``mean ± se``; the sign flag of `spec` applies to the mean only."""
    return fmt(mean, spec) if se is None else f"{fmt(mean, spec)} ± {fmt(se, spec.lstrip('+'))}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    return ["| " + " | ".join(header) + " |", rule,
            *("| " + " | ".join(r) + " |" for r in rows), ""]


METRIC_HEADER = ("data", "who", "count", "base rate", "ROC AUC ± se", "log loss", "Brier",
                 "accuracy", "precision @0.5", "taken @0.5", "probability p10 .. p90")


def metric_row(data: str, who: str, m: dict[str, Any], y: np.ndarray, prob: np.ndarray
               ) -> list[str]:
    # The probability spread shows how far a model moves from a constant (always-take's
    # spread is only the drift of the fold base rates).
    low, high = np.quantile(prob, [0.1, 0.9])
    return [data, who, str(m["count"]), fmt(m["base_rate"]),
            pm(m["roc_auc"], auc_se(m["roc_auc"], y)), fmt(m["log_loss"], ".4f"),
            fmt(m["brier"], ".4f"), fmt(m["accuracy"]), fmt(m["precision"]), str(m["n_taken"]),
            f"{low:.3f} .. {high:.3f}"]


def delta_line(label: str, y: np.ndarray, prob: np.ndarray, base: np.ndarray) -> str:
    mean, se = mean_se(row_log_loss(y, prob) - row_log_loss(y, base))
    return f"- {label}: log loss minus always-take's = {pm(mean, se, '+.4f')} (paired, per row)"


# --- sections -------------------------------------------------------------------------------


def strategy_section(datasets: dict[str, Dataset]) -> list[str]:
    rows = []
    for symbol, data in datasets.items():
        groups = [(s, data.meta["strategy"].to_numpy() == s) for s in STRATEGIES]
        for name, mask in [*groups, ("all", np.ones(len(data), dtype=bool))]:
            reasons = data.meta["exit_reason"].to_numpy()[mask]
            mean, se = mean_se(data.returns[mask])
            rows.append([symbol, name, str(int(mask.sum())),
                         f"{(data.meta['side'].to_numpy()[mask] > 0).mean():.2f}",
                         fmt(float(data.y[mask].mean())),
                         pm(None if mean is None else mean * BP, None if se is None else se * BP,
                            ".1f"),
                         *(str(int((reasons == r).sum()))
                           for r in ("take_profit", "stop_loss", "time"))])
    return ["#### Signals per base strategy (all labelled signals)", "",
            *table(("data", "strategy", "signals", "long share", "base rate",
                    "mean return bp ± se", "take profit", "stop loss", "time"), rows)]


def metrics_section(datasets: dict[str, Dataset], fits: dict[tuple[str, str], Any],
                    oos: dict[tuple[str, str], OutOfSample]) -> list[str]:
    rows, notes = [], []
    for symbol in datasets:
        first = oos[symbol, ALGORITHMS[0]]
        reports = {a: fits[symbol, a].cv_report_ for a in ALGORITHMS}
        for who in BASELINES:  # same folds for both algorithms: the baselines must agree
            if any(r[who] != reports[ALGORITHMS[0]][who] for r in reports.values()):
                raise RuntimeError(f"{symbol}: {who} differs between algorithms' folds")
            rows.append(metric_row(symbol, who.replace("_", "-"), reports[ALGORITHMS[0]][who],
                                   first.y, first.prob[who]))
        for algorithm in ALGORITHMS:
            o = oos[symbol, algorithm]
            rows.append(metric_row(symbol, algorithm, reports[algorithm]["model"], o.y,
                                   o.prob["model"]))
            notes.append(delta_line(f"{symbol} {algorithm}", o.y, o.prob["model"],
                                    o.prob["always_take"]))
        notes.append(delta_line(f"{symbol} logistic", first.y, first.prob["logistic"],
                                first.prob["always_take"]))
    return ["#### Walk-forward test folds, pooled (threshold 0.5)", "", *table(METRIC_HEADER, rows),
            *notes, ""]


def decision_rules(label: str, prob: np.ndarray, train_rate: np.ndarray
                   ) -> list[tuple[str, np.ndarray]]:
    return [(f"{label} >= 0.5", prob >= 0.5),
            (f"{label} >= 1/3", prob >= BREAK_EVEN),
            (f"{label} >= train base rate", prob >= train_rate)]


def decisions_section(datasets: dict[str, Dataset],
                      oos: dict[tuple[str, str], OutOfSample]) -> list[str]:
    rows = []
    for symbol in datasets:
        first = oos[symbol, ALGORITHMS[0]]  # folds, labels and baselines are shared
        rules = [("always-take", np.ones(first.y.size, dtype=bool)),
                 *decision_rules("logistic", first.prob["logistic"], first.train_rate)]
        for algorithm in ALGORITHMS:
            rules += decision_rules(algorithm, oos[symbol, algorithm].prob["model"],
                                    first.train_rate)
        for name, taken in rules:
            mean, se = mean_se(first.returns[taken] * BP)
            skipped, _ = mean_se(first.returns[~taken] * BP)
            hit = float(first.y[taken].mean()) if taken.any() else None
            rows.append([symbol, name, f"{int(taken.sum())}/{first.y.size}", fmt(hit),
                         fmt(float((taken == first.y.astype(bool)).mean())),
                         pm(mean, se, ".1f"), fmt(skipped, ".1f")])
    return ["#### Decisions on the walk-forward test folds: taken signals vs all", "",
            "precision = hit rate of the taken signals (always-take: the base rate); returns are "
            "the side-signed triple-barrier returns of the signals, in basis points of the "
            f"entry price; 1/3 = break-even hit rate of a {DEFAULT_TP_ATR:g} ATR target against "
            f"a {DEFAULT_SL_ATR:g} ATR stop; the train base rate threshold of each fold comes "
            "from that fold's training rows only.", "",
            *table(("data", "rule", "taken", "precision", "accuracy", "mean return taken bp",
                    "mean return skipped bp"), rows)]


def holdout(data: Dataset, args: argparse.Namespace) -> tuple[list[list[str]], list[str]]:
    """Tune and fit on the first 80 % (purged), score the last 20 % like ``train`` does."""
    train, test = validation.holdout_split(data.t0, data.t1, fraction=HOLDOUT_FRACTION)
    X = data.X.to_numpy(dtype=np.float64)
    y_train, y_test = data.y[train], data.y[test]
    prob = {"always_take": np.full(test.size, y_train.mean()),
            "logistic": _logistic_baseline().fit(X[train], y_train).predict_proba(X[test])[:, 1]}
    for algorithm in ALGORITHMS:
        trainer = ModelTrainer(algorithm=algorithm, n_trials=args.trials, seed=args.seed,
                               n_jobs=1).fit(data.X.iloc[train], y_train, data.t0[train],
                                             data.t1[train])
        prob[algorithm] = predict_booster(trainer.booster_, X[test])
    symbol = str(data.meta["symbol"].iloc[0])
    span = (f"{np.datetime_as_string(data.t0[test].min(), 'D')} .. "
            f"{np.datetime_as_string(data.t0[test].max(), 'D')}")
    rows, notes = [], []
    for who, p in prob.items():
        taken = np.ones(test.size, dtype=bool) if who == "always_take" else None
        m = classification_metrics(y_test, p, threshold=0.5, taken=taken)
        rows.append(metric_row(f"{symbol} {span}", who.replace("_", "-"), m, y_test, p))
        if who != "always_take":
            notes.append(delta_line(f"{symbol} {who}", y_test, p, prob["always_take"]))
    return rows, notes


def search_section(fits: dict[tuple[str, str], Any], seconds: dict[tuple[str, str], float]
                   ) -> list[str]:
    rows = []
    for key, trainer in fits.items():
        search = trainer.cv_report_["search"]
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in trainer.best_params_.items())
        rows.append([key[0], key[1], f"{seconds[key]:.1f}",
                     f"{search['n_complete']}+{search['n_pruned']}",
                     f"{search['best_value']:.4f}", params])
    return ["#### Search (completed + pruned trials; best = mean fold log loss)", "",
            *table(("data", "algorithm", "fit s", "trials", "best", "best parameters"), rows)]


def report(args: argparse.Namespace) -> list[str]:
    datasets: dict[str, Dataset] = {}
    for symbol, timeframe in SYMBOLS.items():
        candles = load_candles_file(sample_candles_path(symbol))
        datasets[symbol] = build_dataset(candles, symbol=symbol, timeframe=timeframe)
    fits: dict[tuple[str, str], ModelTrainer] = {}
    seconds: dict[tuple[str, str], float] = {}
    oos: dict[tuple[str, str], OutOfSample] = {}
    for symbol, data in datasets.items():
        for algorithm in ALGORITHMS:
            started = time.perf_counter()
            fits[symbol, algorithm] = ModelTrainer(
                algorithm=algorithm, n_trials=args.trials, seed=args.seed, n_jobs=1,
            ).fit(data.X, data.y, data.t0, data.t1)
            seconds[symbol, algorithm] = time.perf_counter() - started
            oos[symbol, algorithm] = walk_forward(fits[symbol, algorithm], data)
    hold_rows, hold_notes = [], []
    for data in datasets.values():
        rows, notes = holdout(data, args)
        hold_rows += rows
        hold_notes += notes

    first = next(iter(fits.values())).cv_report_
    lines = [
        f"### ML report ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", "",
        f"`python bench/ml_report.py --trials {args.trials} --seed {args.seed}`; xgboost "
        f"{xgboost.__version__}, lightgbm {lightgbm.__version__}, optuna {optuna.__version__}. "
        f"Walk-forward: {first['n_splits']} purged folds after the first 30 % of signals, "
        "embargo = the longest label window. Every figure below except the first table is "
        "out-of-sample.", "",
    ]
    for symbol, data in datasets.items():
        lines.append(f"- {symbol} {SYMBOLS[symbol]}: {len(data)} labelled signals "
                     f"{np.datetime_as_string(data.t0.min(), 'D')} .. "
                     f"{np.datetime_as_string(data.t0.max(), 'D')}, walk-forward test rows "
                     f"{fits[symbol, ALGORITHMS[0]].cv_report_['model']['count']}, embargo "
                     f"{fits[symbol, ALGORITHMS[0]].cv_report_['embargo_seconds'] / 3600:.0f} h")
    lines.append("")
    lines += strategy_section(datasets)
    lines += metrics_section(datasets, fits, oos)
    lines += decisions_section(datasets, oos)
    lines += ["#### Hold-out: tuned and fitted on the first 80 %, scored on the last 20 %", "",
              *table(METRIC_HEADER, hold_rows), *hold_notes, ""]
    lines += search_section(fits, seconds)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials per fit")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials: must be >= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    text = "\n".join(report(args))
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
