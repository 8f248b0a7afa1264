"""Dataset build and training time for many candle files pooled into one model.

    python bench/bench_pooled.py [--files 20] [--candles 10000] [--trials 5]
                                 [--workers 1 2] [--algorithms xgboost lightgbm]

The files are made from the shipped real samples, not from noise: file i takes the EURUSD
hours (or, for every fourth file, the GOOG days) from a start offset of its own, wraps
around the sample as often as needed to reach --candles bars, and re-bases the price at
each wrap so that the series continues where the last bar closed (real returns, stitched).
They are named SYNi_USD-1h.feather / SYNi_USD-1d.feather, so symbol and timeframe come
from the names, and all start on the same day (their label windows overlap in time, as
pooled markets do). Then: the pooled dataset built with each --workers value (processes;
same result), and ModelTrainer (Optuna + 5 purged walk-forward folds, one thread per fit)
on the pooled rows. Prints one table of wall times. Out-of-sample quality is not printed:
the files share their bars, so it measures memorisation (see docs/ml.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.ml.candle_files import candle_files  # noqa: E402
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import build_pooled_dataset  # noqa: E402


def stitched(frame: pd.DataFrame, offset: int, length: int, freq: str) -> pd.DataFrame:
    """`length` bars of `frame` from `offset`, wrapping around, prices re-based per wrap."""
    n = len(frame)
    idx = (offset + np.arange(length)) % n
    ohlc = frame[["open", "high", "low", "close"]].to_numpy()
    factor = np.ones(length)
    scale = 1.0
    for j in range(1, length):
        if idx[j] == 0:  # wrapped: continue from the last close
            scale *= ohlc[idx[j - 1], 3] / ohlc[0, 0]
        factor[j] = scale
    out = pd.DataFrame(ohlc[idx] * factor[:, None], columns=["open", "high", "low", "close"])
    out["volume"] = frame["volume"].to_numpy()[idx]
    out.insert(0, "time", pd.date_range("2000-01-03", periods=length, freq=freq, tz="UTC"))
    return out


def write_files(directory: Path, files: int, candles: int) -> None:
    sources = {"1h": load_candles_file(sample_candles_path("EURUSD")).to_frame(),
               "1d": load_candles_file(sample_candles_path("GOOG")).to_frame()}
    for i in range(files):
        tf = "1d" if i % 4 == 3 else "1h"
        frame = sources[tf]
        offset = (i * 997) % len(frame)
        stitched(frame, offset, candles, {"1h": "h", "1d": "D"}[tf]).to_feather(
            directory / f"SYN{i:02d}_USD-{tf}.feather")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--files", type=int, default=20, help="candle files to pool")
    parser.add_argument("--candles", type=int, default=10_000, help="bars per file")
    parser.add_argument("--trials", type=int, default=5, help="Optuna trials")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="dataset-building process counts to time")
    parser.add_argument("--algorithms", nargs="+", default=["xgboost", "lightgbm"],
                        help="boosting libraries to time")
    args = parser.parse_args()
    # Imported here, not at the top: the dataset workers are spawned processes that import
    # this module again, and need none of the training stack.
    import optuna

    from backend.ml.model_trainer import ModelTrainer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), args.files, args.candles)
        files = candle_files([tmp])
        data = None
        for workers in args.workers:
            started = time.perf_counter()
            data = build_pooled_dataset(files, workers=workers)
            rows.append((f"dataset build, {workers} process(es)",
                         f"{time.perf_counter() - started:.1f}", f"{len(data)} rows"))
    assert data is not None
    for algorithm in args.algorithms:
        started = time.perf_counter()
        trainer = ModelTrainer(algorithm=algorithm, n_trials=args.trials).fit(
            data.X, data.y, data.t0, data.t1)
        search = trainer.cv_report_["search"]
        # No quality figure: the files repeat the same real bars (rotated, re-based), so
        # test rows have twins in training and the model memorises them (docs/ml.md).
        rows.append((f"train {algorithm}, {args.trials} trials x 5 folds + final fit",
                     f"{time.perf_counter() - started:.1f}",
                     f"{search['n_complete']}+{search['n_pruned']} trials"))
    print(f"{args.files} files x {args.candles} candles "
          f"({sum(f.timeframe == '1h' for f in files)} hourly, "
          f"{sum(f.timeframe == '1d' for f in files)} daily), {len(data)} labelled signals, "
          f"embargo {trainer.cv_report_['embargo_seconds'] / 3600:.0f} h\n")
    width = max(len(r[0]) for r in rows)
    print(f"| {'step':<{width}} | seconds | result |")
    print(f"|{'-' * (width + 2)}|--------:|--------|")
    for step, seconds, result in rows:
        print(f"| {step:<{width}} | {seconds:>7} | {result} |")


if __name__ == "__main__":
    main()
