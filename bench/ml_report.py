"""Nested out-of-sample results of the meta-label model on real data: the tables docs/ml.md
quotes.

    python bench/ml_report.py [--trials 20] [--seed 42] [--splits 5] [--out FILE]

For EURUSD hourly, GOOG daily (the ``backtesting`` package's sample data) and both pooled
into one model (backend.ml.dataset.build_pooled_dataset, symbol and timeframe per file, as
``train``/``evaluate --candles EURUSD-1h.csv GOOG-1d.csv`` pool them): build the labelled
dataset with all three base strategies, then for xgboost and lightgbm run
:func:`backend.ml.evaluation.nested_evaluate`: every outer purged walk-forward fold, and the
final hold-out that ``train`` promotes on, is tuned (Optuna, inner purged walk-forward,
weighting and calibration chosen there) on its own training rows only. Markdown tables of:

1. signals per base strategy (all labelled signals; not a model figure);
2. pooled walk-forward test folds and the hold-out: every metric ± its SE for the raw and
   calibrated model beside always-take and logistic regression; decisions by the
   expected-value rule (2 ATR target, 1 ATR stop, no costs);
3. accuracy of those decisions against the product's first-plan target ">55 % accuracy":
   met only if the accuracy is above 0.55 AND above the better constant rule (always-take,
   whose accuracy is the base rate, or always-skip, 1 - base rate) by more than two SEs
   of the paired per-row difference;
4. paired per-row log-loss and Brier differences against both baselines;
5. the taken signals' mean return in R against all signals;
6. the search per window (trials, weighting, calibration; the inner best log loss is what
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

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.ml.candle_files import CandleFile  # noqa: E402
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import Dataset, build_dataset, build_pooled_dataset  # noqa: E402
from backend.ml.decision import decide_many  # noqa: E402
from backend.ml.evaluation import WHO, NestedEvaluation, OutOfSample, nested_evaluate  # noqa: E402
from backend.ml.labeling import STRATEGIES  # noqa: E402
from backend.ml.metrics import mean_se  # noqa: E402

SYMBOLS = {"EURUSD": "1h", "GOOG": "1d"}
POOLED = "pooled"  # both samples in one dataset and one model
TARGET_ACCURACY = 0.55  # the product's first-plan target: ">55 % accuracy"
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


def _who_name(who: str, algorithm: str) -> str:
    if who.startswith("model"):
        return f"{algorithm} {who.removeprefix('model').strip('_') or 'raw'}"
    return who.replace("_", "-")


def _shown(who: str, first: bool) -> bool:
    return first or who not in ("always_take", "logistic")  # baselines: algorithm-free


def accuracy_check(oos: OutOfSample, part: dict[str, Any], who: str,
                   decision: dict[str, Any]) -> dict[str, Any]:
    """`who`'s accuracy (its expected-value decisions against the labels) beside the target
    and the better constant rule, with the paired per-row difference and its SE.

    "met" only if accuracy > 0.55 and accuracy - best constant > 2 SE. The constant is the
    better of always-take (accuracy = base rate) and always-skip (1 - base rate) on the
    scored rows: with base rates below 0.45, skipping everything alone clears 0.55.
    """
    y = oos.y.astype(bool)
    if who == "always_take":
        taken = np.ones(y.size, dtype=bool)
    else:
        taken, _, _ = decide_many(oos.prob[who], oos.reward_r, 1.0,
                                  costs_r=decision["costs_r"], margin_r=decision["margin_r"],
                                  threshold=decision["threshold"])
    correct = (taken == y).astype(np.float64)
    accuracy = float(correct.mean())
    # the same decisions as the report's: a mismatch would make this table a different model
    assert abs(accuracy - part[who]["accuracy"]) < 1e-12, (who, accuracy)
    base = float(y.mean())
    constant = y if base >= 0.5 else ~y
    diff = mean_se(correct - constant)
    met = (accuracy > TARGET_ACCURACY and diff["se"] is not None
           and diff["mean"] > 2 * diff["se"])
    return {"accuracy": accuracy, "accuracy_se": part[who]["accuracy_se"], "base_rate": base,
            "best_constant": "always-take" if base >= 0.5 else "always-skip",
            "bar": max(TARGET_ACCURACY, base, 1 - base), "diff": diff, "met": bool(met)}


def metrics_rows(label: str, part: dict[str, Any], algorithm: str, first: bool,
                 checks: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for who in WHO:
        if not _shown(who, first):
            continue
        m = part[who]
        rows.append([label, _who_name(who, algorithm), str(m["count"]),
                     _metric(m, "base_rate"), _metric(m, "roc_auc"),
                     _metric(m, "log_loss", ".4f"), _metric(m, "brier", ".4f"),
                     _metric(m, "accuracy"), "met" if checks[who]["met"] else "not met",
                     _metric(m, "precision"), _metric(m, "share_taken")])
    return rows


def accuracy_rows(label: str, algorithm: str, first: bool,
                  checks: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for who in WHO:
        if not _shown(who, first):
            continue
        c = checks[who]
        rows.append([label, _who_name(who, algorithm), pm(c["accuracy"], c["accuracy_se"]),
                     ">0.55", fmt(c["base_rate"]), fmt(1 - c["base_rate"]),
                     c["best_constant"], fmt(c["bar"]),
                     pm(c["diff"]["mean"], c["diff"]["se"], "+.3f"),
                     "met" if c["met"] else "not met"])
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


def datasets() -> dict[str, Dataset]:
    """EURUSD, GOOG, and both pooled the way ``train``/``evaluate`` pool candle files."""
    files = [CandleFile(sample_candles_path(s), s, tf) for s, tf in SYMBOLS.items()]
    out = {symbol: build_dataset(load_candles_file(sample_candles_path(symbol)),
                                 symbol=symbol, timeframe=tf)
           for symbol, tf in SYMBOLS.items()}
    out[POOLED] = build_pooled_dataset(files, workers=1)
    return out


def report(args: argparse.Namespace) -> list[str]:
    data_sets = datasets()
    evaluations: dict[tuple[str, str], NestedEvaluation] = {
        (s, a): nested_evaluate(d, algorithm=a, n_trials=args.trials, seed=args.seed,
                                n_splits=args.splits, inner_splits=args.splits,
                                show_progress=True)
        for s, d in data_sets.items() for a in ALGORITHMS}
    results = {key: ev.report for key, ev in evaluations.items()}
    metric, accuracy, paired, taken, search = [], [], [], [], []
    for (symbol, algorithm), ev in evaluations.items():
        rep = ev.report
        first = algorithm == ALGORITHMS[0]
        for label, part, oos in ((f"{symbol} walk-forward", rep, ev.walk_forward),
                                 (f"{symbol} hold-out", rep["holdout"], ev.holdout)):
            checks = {who: accuracy_check(oos, part, who, rep["decision"]) for who in WHO}
            metric += metrics_rows(label, part, algorithm, first, checks)
            accuracy += accuracy_rows(label, algorithm, first, checks)
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
    for symbol, data in data_sets.items():
        rep = results[symbol, ALGORITHMS[0]]
        what = SYMBOLS.get(symbol) or " + ".join(f"{s} {tf}" for s, tf in SYMBOLS.items())
        lines.append(f"- {symbol} ({what}): {len(data)} labelled signals "
                     f"{np.datetime_as_string(data.t0.min(), 'D')} .. "
                     f"{np.datetime_as_string(data.t0.max(), 'D')}; walk-forward test rows "
                     f"{rep['count']}, hold-out {rep['holdout']['count']} "
                     f"({rep['holdout']['test_start'][:10]} .. {rep['holdout']['test_end'][:10]}),"
                     f" embargo {rep['embargo_seconds'] / 3600:.0f} h")
    lines += ["", *strategy_section(data_sets),
              "#### Metrics ± SE (decisions: expected-value rule on each probability)", "",
              *table(("data", "who", "count", "base rate", "ROC AUC", "log loss", "Brier",
                      "accuracy", "target >55 %", "precision of taken", "share taken"),
                     metric),
              "#### Accuracy against the product target \">55 % accuracy\"", "",
              "Met only if the accuracy is above 0.55 and above the better constant rule "
              "(always-take = base rate, always-skip = 1 - base rate, on the same rows) by "
              "more than two SEs of the paired per-row difference.", "",
              *table(("data", "who", "accuracy", "target", "always-take (base rate)",
                      "always-skip", "better constant", "bar", "minus better constant",
                      "met?"), accuracy),
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials per window")
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--splits", type=int, default=5, help="outer and inner folds")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the report here (default: stdout only)")
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
