"""Single-row inference latency: XGBoost's own call vs the compiled trees vs the fallback.

    python bench/bench_predictor.py [--repeat 5000]

Models are trained on real EURUSD hourly signals (backend.ml.dataset.build_dataset, the
features the service computes). Two sizes per algorithm: the tuned model (ModelTrainer,
a short Optuna search) and the largest model in the search space (400 trees, depth 6 /
48 leaves) as an upper bound. Prints median and 99th percentile in microseconds per call:

  (a) the native library's single-row call (XGBoost ``Booster.inplace_predict``,
      LightGBM ``Booster.predict``) on a (1, f) array
  (b) ``LoadedModel.predict_one`` with the compiled library (treelite + tl2cgen)
  (c) ``LoadedModel.predict_one`` on the native fallback (compile=False)
  top-k  ``LoadedModel.top_contributions(x, 5)`` (SHAP; not on the compiled path)

and the ratio (a)/(b), plus the one-off compile time. Run on an idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.db.models import ModelRow  # noqa: E402
from backend.ml.boosters import (  # noqa: E402
    ARTIFACT_FORMATS,
    booster_to_bytes,
    fixed_params,
    train_booster,
)
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import build_dataset  # noqa: E402
from backend.ml.model_trainer import ModelTrainer  # noqa: E402
from backend.ml.predictor import load_model  # noqa: E402

LARGEST = {
    "xgboost": {"n_estimators": 400, "max_depth": 6, "learning_rate": 0.05},
    "lightgbm": {"n_estimators": 400, "num_leaves": 48, "learning_rate": 0.05},
}


def percentiles_us(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(200):  # warm-up
        fn()
    samples = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples[i] = time.perf_counter_ns() - start
    return float(np.median(samples) / 1e3), float(np.percentile(samples, 99) / 1e3)


def cell(v: tuple[float, float]) -> str:
    return f"{v[0]:7.1f} /{v[1]:7.1f}"


def registry_row(booster: object, algorithm: str, names: list[str], n: int) -> ModelRow:
    """An in-memory registry row (no database needed to time inference)."""
    artifact = booster_to_bytes(booster)
    return ModelRow(
        id=1, name="bench", version=1, algorithm=algorithm, status="candidate",
        feature_names=names, feature_set_version="fs1", hyperparameters={}, metrics={},
        training_distribution={}, train_start=None, train_end=None, n_samples=n,
        artifact=artifact, artifact_format=ARTIFACT_FORMATS[algorithm],
        artifact_sha256=hashlib.sha256(artifact).hexdigest(), notes=None,
        created_at=datetime.now(UTC), activated_at=None, activated_by=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeat", type=int, default=5000, help="timed calls per variant")
    parser.add_argument("--trials", type=int, default=10, help="Optuna trials of the tuned model")
    args = parser.parse_args()

    data = build_dataset(load_candles_file(sample_candles_path("EURUSD")), symbol="EURUSD")
    names = list(data.X.columns)
    X = data.X.to_numpy(dtype=np.float64)
    x = X[-1]  # a real signal's feature vector (NaN where undefined)
    one = x.reshape(1, -1)
    print(f"EURUSD 1h: {len(X)} labelled signals x {len(names)} features; "
          f"{args.repeat} timed calls per row\n")
    header = (f"{'model':<34} {'(a) native':>16} {'(b) compiled':>16} {'(c) fallback':>16} "
              f"{'top-5 contrib':>16} {'a/b':>6} {'compile s':>9}")
    print(header)
    print("-" * len(header))
    cache = Path(tempfile.mkdtemp(prefix="bench-predictor-"))
    for algorithm in ("xgboost", "lightgbm"):
        trainer = ModelTrainer(algorithm=algorithm, n_trials=args.trials, n_splits=4)
        trainer.fit(data.X, data.y, data.t0, data.t1)
        largest = train_booster(algorithm, fixed_params(algorithm, 42) | LARGEST[algorithm],
                                X, data.y, names)
        tuned = trainer.booster_params_
        shape = (f"{tuned['n_estimators']} trees, "
                 + (f"depth {tuned['max_depth']}" if algorithm == "xgboost"
                    else f"{tuned['num_leaves']} leaves"))
        for label, booster in ((f"{algorithm} tuned ({shape})", trainer.booster_),
                               (f"{algorithm} largest", largest)):
            row = registry_row(booster, algorithm, names, len(X))
            started = time.perf_counter()
            compiled = load_model(row, cache_dir=cache)
            compile_s = time.perf_counter() - started
            assert compiled.compiled, "compilation failed: see the warning above"
            fallback = load_model(row, compile=False)
            if algorithm == "xgboost":
                native = percentiles_us(lambda b=fallback.booster: b.inplace_predict(one),
                                        args.repeat)
            else:
                native = percentiles_us(lambda b=fallback.booster: b.predict(one, num_threads=1),
                                        args.repeat)
            fast = percentiles_us(lambda m=compiled: m.predict_one(x), args.repeat)
            slow = percentiles_us(lambda m=fallback: m.predict_one(x), args.repeat)
            top = percentiles_us(lambda m=compiled: m.top_contributions(x, 5),
                                 max(200, args.repeat // 10))
            print(f"{label:<34} {cell(native):>16} {cell(fast):>16} {cell(slow):>16} "
                  f"{cell(top):>16} {native[0] / fast[0]:6.1f} {compile_s:9.2f}")
    print("\ncells: median / p99 in microseconds per call (one thread)")


if __name__ == "__main__":
    main()
