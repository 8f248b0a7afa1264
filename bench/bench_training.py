"""Training cost and out-of-sample quality on the real sample data.

    python bench/bench_training.py [--trials 20] [--algorithms xgboost lightgbm]

For EURUSD hourly (5000 bars) and GOOG daily (2148 bars) from the ``backtesting`` package:
build the labelled dataset (base strategies + triple barrier, backend.ml.dataset), then
ModelTrainer (Optuna TPE + median pruning over 5 purged walk-forward folds, one thread).
Prints wall times and the pooled out-of-sample metrics of the model beside the always-take
and logistic-regression baselines on the same folds (threshold 0.5). Every figure is
out-of-sample: nothing here is measured on rows a model was trained on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import build_dataset  # noqa: E402
from backend.ml.model_trainer import ModelTrainer  # noqa: E402


def fmt(value: float | int | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials per model")
    parser.add_argument("--algorithms", nargs="+", default=["xgboost", "lightgbm"],
                        help="boosting libraries to train")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    header = (f"{'data / algorithm':<22} {'rows':>5} {'build s':>7} {'fit s':>6} "
              f"{'trials':>8} {'evaluated':<12} {'log_loss':>8} {'roc_auc':>7} "
              f"{'brier':>6} {'precision':>9} {'taken':>6}")
    print(header)
    print("-" * len(header))
    for symbol in ("EURUSD", "GOOG"):
        started = time.perf_counter()
        data = build_dataset(load_candles_file(sample_candles_path(symbol)), symbol=symbol)
        build_s = time.perf_counter() - started
        for algorithm in args.algorithms:
            started = time.perf_counter()
            trainer = ModelTrainer(algorithm=algorithm, n_trials=args.trials)
            trainer.fit(data.X, data.y, data.t0, data.t1)
            fit_s = time.perf_counter() - started
            report = trainer.cv_report_
            search = report["search"]
            trials = f"{search['n_complete']}+{search['n_pruned']}p"
            for i, key in enumerate(("model", "always_take", "logistic")):
                m = report[key]
                lead = (f"{symbol + ' / ' + algorithm:<22} {len(data.X):>5} {build_s:>7.2f} "
                        f"{fit_s:>6.1f} {trials:>8}" if i == 0 else " " * 53)
                print(f"{lead} {key:<12} {fmt(m['log_loss']):>8} {fmt(m['roc_auc']):>7} "
                      f"{fmt(m['brier']):>6} {fmt(m['precision']):>9} {m['n_taken']:>6}")
            print(f"{'':<53} {'(oos rows ' + str(report['model']['count']) + ', base rate '}"
                  f"{report['model']['base_rate']:.3f}, {report['n_splits']} folds, embargo "
                  f"{report['embargo_seconds'] / 3600:.0f} h)")
    print("\ntrials: completed + pruned; metrics pooled over the walk-forward test folds")


if __name__ == "__main__":
    main()
