"""Feature extraction cost: one signal (serving path) and a whole history (training path).

    python bench/bench_features.py [--repeat 2000]

Real EURUSD hourly candles from the ``backtesting`` package. Prints median wall time per
call with the compiled market features and with the Python reference side by side (the
ratio is Python / compiled); the single-signal rows use 100 candles (the default window), the
batch rows the whole 5000-bar file. Run it on an idle machine: other load inflates the numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.ml.dataset import build_dataset  # noqa: E402
from backend.ml.feature_extractor import FeatureExtractor, use_native_features  # noqa: E402


def median_seconds(fn: Callable[[], object], repeat: int, *, batch: int = 1) -> float:
    """Median over `repeat` timings of `batch` calls each, per call."""
    fn()  # warm-up (imports, caches)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000, help="timings of the fast calls")
    args = parser.parse_args()

    candles = load_candles_file(sample_candles_path("EURUSD"))
    extractor = FeatureExtractor()
    recent = candles.tail(extractor.window)
    close = float(recent.close[-1])
    operations: list[tuple[str, str, float, Callable[[], object], int]] = [
        ("market_row, 100 candles", "us", 1e6, lambda: extractor.market_row(recent),
         args.repeat),
        ("signal_vector, 100 candles", "us", 1e6, lambda: extractor.signal_vector(
            recent, side="long", strategy="ma_cross", signal_strength=0.3,
            stop_price=close * 0.99, target_price=close * 1.02), args.repeat),
        (f"transform, {len(candles)} bars", "ms", 1e3, lambda: extractor.transform(candles), 5),
        (f"build_dataset, {len(candles)} bars", "ms", 1e3,
         lambda: build_dataset(candles, extractor=extractor), 5),
    ]
    timings: dict[bool, list[float]] = {}
    for compiled in (False, True):  # ends on the compiled path, the default
        if use_native_features(compiled) != compiled:
            sys.exit("the compiled market features are unavailable (see the warning above)")
        timings[compiled] = [median_seconds(fn, repeat) for *_, fn, repeat in operations]

    market = extractor.transform(candles)
    n_features = len(extractor.feature_names)
    print(f"features: {len(extractor.market_feature_names)} market + "
          f"{n_features - len(extractor.market_feature_names)} context = {n_features}; "
          f"window {extractor.window}, warm-up {extractor.min_candles} candles; "
          f"{int(market.notna().all(axis=1).sum())} complete rows")
    print(f"{'operation':<32} {'compiled':>10} {'python':>10} {'ratio':>7}")
    for (name, unit, scale, *_), fast, slow in zip(operations, timings[True], timings[False],
                                                   strict=True):
        print(f"{name:<32} {fast * scale:>7.1f} {unit} {slow * scale:>7.1f} {unit} "
              f"{slow / fast:>6.1f}x")


if __name__ == "__main__":
    main()
