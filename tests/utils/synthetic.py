"""Seeded synthetic signals with a planted, learnable relation (trainer/registry tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
