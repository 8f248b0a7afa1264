"""Nested out-of-sample results of the meta-label model on real data: the tables docs/ml.md
quotes.

    python bench/ml_report.py [--trials 20] [--seed 42] [--splits 5] [--out FILE]

For EURUSD hourly and GOOG daily (the ``backtesting`` package's sample data): build the
labelled dataset with all three base strategies (backend.ml.dataset.build_dataset), then for
xgboost and lightgbm run :func:`backend.ml.evaluation.nested_evaluate`: every outer purged
walk-forward fold, and the final hold-out that ``train`` promotes on, is tuned (Optuna,
inner purged walk-forward, weighting and calibration chosen there) on its own training
rows only. Markdown tables of:

1. signals per base strategy (all labelled signals; not a model figure);
2. pooled walk-forward test folds and the hold-out: every metric ± its SE for the raw and
   calibrated model beside always-take and logistic regression; decisions by the
   expected-value rule (2 ATR target, 1 ATR stop, no costs);
3. paired per-row log-loss and Brier differences against both baselines;
4. the taken signals' mean return in R against all signals;
5. the search per window (trials, weighting, calibration; the inner best log loss is what
   the tuner minimised, so it is labelled as tuned).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lightgbm  # noqa: E402
import optuna  # noqa: E402
import xgboost  # noqa: E402

from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import Dataset, build_dataset  # noqa: E402
from backend.ml.evaluation import WHO, nested_evaluate  # noqa: E402
from backend.ml.labeling import STRATEGIES  # noqa: E402
from backend.ml.metrics import mean_se  # noqa: E402

SYMBOLS = {"EURUSD": "1h", "GOOG": "1d"}
ALGORITHMS = ("xgboost", "lightgbm")
BP = 1e4  # returns are fractions of the entry price; shown in basis points


def fmt(value: float | int | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def pm(mean: float | None, se: float | None, spec: str = ".3f") -> str:
    """``mean ± se``; the sign flag of `spec` applies to the mean only."""
    return fmt(mean, spec) if se is None else f"{fmt(mean, spec)} ± {fmt(se, spec.lstrip('+'))}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    return ["| " + " | ".join(header) + " |", rule,
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def strategy_section(datasets: dict[str, Dataset]) -> list[str]:
    rows = []
    for symbol, data in datasets.items():
        groups = [(s, data.meta["strategy"].to_numpy() == s) for s in STRATEGIES]
        for name, mask in [*groups, ("all", np.ones(len(data), dtype=bool))]:
            reasons = data.meta["exit_reason"].to_numpy()[mask]
            r = mean_se(data.returns[mask] * BP)
            rows.append([symbol, name, str(int(mask.sum())),
                         f"{(data.meta['side'].to_numpy()[mask] > 0).mean():.2f}",
                         fmt(float(data.y[mask].mean())), pm(r["mean"], r["se"], ".1f"),
                         *(str(int((reasons == x).sum()))
                           for x in ("take_profit", "stop_loss", "time"))])
    return ["#### Signals per base strategy (all labelled signals)", "",
            *table(("data", "strategy", "signals", "long share", "base rate",
                    "mean return bp ± se", "take profit", "stop loss", "time"), rows)]


def _metric(m: dict[str, Any], key: str, spec: str = ".3f") -> str:
    return pm(m[key], m[f"{key}_se"], spec)


def metrics_rows(label: str, part: dict[str, Any], algorithm: str, first: bool
                 ) -> list[list[str]]:
    rows = []
    for who in WHO:
        if who in ("always_take", "logistic") and not first:
            continue  # the baselines do not depend on the algorithm
        m = part[who]
        name = f"{algorithm} {who.removeprefix('model').strip('_') or 'raw'}" \
            if who.startswith("model") else who.replace("_", "-")
        rows.append([label, name, str(m["count"]), _metric(m, "base_rate"),
                     _metric(m, "roc_auc"), _metric(m, "log_loss", ".4f"),
                     _metric(m, "brier", ".4f"), _metric(m, "accuracy"),
                     _metric(m, "precision"), _metric(m, "share_taken")])
    return rows


def paired_rows(label: str, part: dict[str, Any], algorithm: str) -> list[list[str]]:
    rows = []
    for who in ("model", "model_calibrated"):
        for ref, diff in part["paired"][who].items():
            rows.append([label, f"{algorithm} {'calibrated' if who != 'model' else 'raw'}",
                         ref[3:].replace("_", "-"),
                         pm(diff["log_loss"]["mean"], diff["log_loss"]["se"], "+.4f"),
                         pm(diff["brier"]["mean"], diff["brier"]["se"], "+.4f")])
    return rows


def taken_rows(label: str, part: dict[str, Any], algorithm: str) -> list[list[str]]:
    tv = part["taken_vs_all"]
    gap = tv["taken_minus_skipped_r"] or {}
    return [[label, algorithm, f"{tv['taken']['count']}/{tv['all']['count']}",
             pm(tv["share_taken"], tv["share_taken_se"]),
             pm(tv["taken"]["hit_rate"], tv["taken"]["hit_rate_se"]),
             pm(tv["taken"]["mean_r"]["mean"], tv["taken"]["mean_r"]["se"], "+.3f"),
             pm(tv["all"]["mean_r"]["mean"], tv["all"]["mean_r"]["se"], "+.3f"),
             pm(gap.get("mean"), gap.get("se"), "+.3f")]]


def search_rows(symbol: str, algorithm: str, report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, w in [*((f"fold {f['fold']}", f) for f in report["folds"]),
                    ("hold-out", report["holdout"])]:
        s = w["search"]
        rows.append([symbol, algorithm, name, str(w["train_size"]),
                     f"{s['n_complete']}+{s['n_pruned']}",
                     f"{s['weighting']['sample_weight']}/{s['weighting']['class_weight']}",
                     w["calibration"]["method"], f"{s['inner_best_log_loss_tuned']:.4f}"])
    return rows


def report(args: argparse.Namespace) -> list[str]:
    datasets = {symbol: build_dataset(load_candles_file(sample_candles_path(symbol)),
                                      symbol=symbol, timeframe=tf)
                for symbol, tf in SYMBOLS.items()}
    results = {(s, a): nested_evaluate(d, algorithm=a, n_trials=args.trials, seed=args.seed,
                                       n_splits=args.splits, inner_splits=args.splits,
                                       show_progress=True).report
               for s, d in datasets.items() for a in ALGORITHMS}
    metric, paired, taken, search = [], [], [], []
    for (symbol, algorithm), rep in results.items():
        first = algorithm == ALGORITHMS[0]
        for label, part in ((f"{symbol} walk-forward", rep), (f"{symbol} hold-out",
                                                                rep["holdout"])):
            metric += metrics_rows(label, part, algorithm, first)
            paired += paired_rows(label, part, algorithm)
            taken += taken_rows(label, part, algorithm)
        search += search_rows(symbol, algorithm, rep)
    any_report = next(iter(results.values()))
    lines = [
        f"### ML report, nested ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", "",
        f"`python bench/ml_report.py --trials {args.trials} --seed {args.seed} --splits "
        f"{args.splits}`; xgboost {xgboost.__version__}, lightgbm {lightgbm.__version__}, "
        f"optuna {optuna.__version__}. Every figure after the first table is out-of-sample "
        "and untuned on the rows it scores. SEs: " + any_report["se_method"], "",
    ]
    for symbol, data in datasets.items():
        rep = results[symbol, ALGORITHMS[0]]
        lines.append(f"- {symbol} {SYMBOLS[symbol]}: {len(data)} labelled signals "
                     f"{np.datetime_as_string(data.t0.min(), 'D')} .. "
                     f"{np.datetime_as_string(data.t0.max(), 'D')}; walk-forward test rows "
                     f"{rep['count']}, hold-out {rep['holdout']['count']} "
                     f"({rep['holdout']['test_start'][:10]} .. {rep['holdout']['test_end'][:10]}),"
                     f" embargo {rep['embargo_seconds'] / 3600:.0f} h")
    lines += ["", *strategy_section(datasets),
              "#### Metrics ± SE (decisions: expected-value rule on each probability)", "",
              *table(("data", "who", "count", "base rate", "ROC AUC", "log loss", "Brier",
                      "accuracy", "precision of taken", "share taken"), metric),
              "#### Paired per-row differences (model minus baseline; negative is better)", "",
              *table(("data", "model", "baseline", "log loss", "Brier"), paired),
              "#### Taken signals (expected-value rule on the calibrated probability) vs all",
              "", *table(("data", "algorithm", "taken", "share", "hit rate", "mean R taken",
                          "mean R all", "taken minus skipped R"), taken),
              "#### Search per window (trials completed+pruned; inner best = tuned, optimistic)",
              "", *table(("data", "algorithm", "window", "train rows", "trials",
                          "weights sample/class", "calibration", "inner best log loss"),
                         search)]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials per window")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--splits", type=int, default=5, help="outer and inner folds")
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
