"""Real and hand-made candles for the feature, labelling and validation tests."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from backend.ml.candles import Candles, load_candles_file, make_candles, sample_candles_path

HOUR = 3600
DAY = 86400


@lru_cache(maxsize=4)
def sample(name: str) -> Candles:
    """The real sample series shipped by ``backtesting``: "EURUSD" (hourly), "GOOG" (daily)."""
    return load_candles_file(sample_candles_path(name))


def window(c: Candles, start: int, stop: int) -> Candles:
    """Rows [start, stop) as Candles."""
    return Candles(*(a[start:stop] for a in (c.time, c.open, c.high, c.low, c.close, c.volume)))


def perturb_after(c: Candles, t: int, *, seed: int = 0) -> Candles:
    """Copy of `c` where every bar after `t` is changed: each bar's OHLC scaled by its own
    random factor in [0.5, 1.5] (so the candles stay valid) and its volume by another."""
    rng = np.random.default_rng(seed)
    n_after = len(c) - t - 1
    price_factor = np.ones(len(c))
    volume_factor = np.ones(len(c))
    price_factor[t + 1:] = rng.uniform(0.5, 1.5, n_after)
    volume_factor[t + 1:] = rng.uniform(0.0, 3.0, n_after)
    return make_candles(c.time, c.open * price_factor, c.high * price_factor,
                        c.low * price_factor, c.close * price_factor, c.volume * volume_factor)


def from_bars(bars: Sequence[tuple[float, float, float, float]], *, start: int = 1_700_000_000,
              step: int = HOUR, volume: float = 100.0) -> Candles:
    """Candles from hand-written (open, high, low, close) bars, `step` seconds apart."""
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*bars, strict=True))
    n = len(bars)
    return make_candles(start + step * np.arange(n, dtype=np.int64), o, h, lo, c,
                        np.full(n, volume))


def flat_bars(n: int, *, price: float = 100.0, half_range: float = 1.0
              ) -> list[tuple[float, float, float, float]]:
    """`n` identical bars open = close = price, range +/- half_range: true range and hence
    ATR of any period is exactly 2 * half_range."""
    return [(price, price + half_range, price - half_range, price)] * n
