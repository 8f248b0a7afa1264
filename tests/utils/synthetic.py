"""Seeded synthetic signals and candles with a planted, learnable relation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.ml.candles import Candles, make_candles


def planted_signals(n: int = 400, *, seed: int = 7, strength: float = 1.0) -> tuple:
    """Hourly signals with fat-tailed features, 5 % NaN and label windows of 1-11 hours.

    The label depends on f0 and f1 (times ``strength``) plus noise, so a model that learns
    must beat always-take out of sample; with ``strength=0`` the labels are pure noise.
    """
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n) * np.timedelta64(1, "h")
    t1 = t0 + rng.integers(1, 12, n) * np.timedelta64(1, "h")
    X = pd.DataFrame(rng.standard_t(4, size=(n, 6)), columns=[f"f{i}" for i in range(6)])
    X = X.mask(rng.random(X.shape) < 0.05)
    score = strength * (0.8 * X["f0"].fillna(0) - 0.5 * X["f1"].fillna(0))
    y = (score + rng.normal(size=n) > 0).astype(np.int64).to_numpy()
    return X, y, t0, t1


def rsi_driven_candles(n: int = 8000, *, seed: int = 11, strength: float = 0.5,
                       period: int = 14) -> Candles:
    """Hourly candles where RSI drives the following bars (a planted, learnable edge).

    Each bar's log return is ``strength * sigma * (50 - RSI) / 50 + sigma * noise``, with
    RSI(period) (Wilder) of the closes so far: a low RSI pushes the next bars up, a high
    one down. A long signal at a low RSI (``dir_rsi`` < 0) therefore tends to pay, and so
    does a short at a high one. ``strength=0`` gives a plain random walk.
    """
    rng = np.random.default_rng(seed)
    sigma = 0.002
    close = np.empty(n)
    close[0] = 100.0
    gain = loss = 0.0
    rsi = 50.0
    for t in range(1, n):
        step = strength * sigma * (50.0 - rsi) / 50.0 + sigma * rng.standard_normal()
        close[t] = close[t - 1] * np.exp(step)
        change = close[t] - close[t - 1]
        if t <= period:  # seed Wilder's averages with simple means
            gain += max(change, 0.0) / period
            loss += max(-change, 0.0) / period
        else:
            gain = (gain * (period - 1) + max(change, 0.0)) / period
            loss = (loss * (period - 1) + max(-change, 0.0)) / period
        if t >= period:
            rsi = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0.0, sigma / 2, (2, n))) * close
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    times = 1_700_000_000 + 3600 * np.arange(n, dtype=np.int64)
    return make_candles(times, open_, high, low, close, rng.uniform(50, 150, n))
