"""Hand-made price paths for the exit-policy tests.

Prices are multiples of 1/64 around 100, so sums, differences and the mirror image
``p -> 200 - p`` are exact in floating point and a mirrored run can be compared with ==.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.ml.candles import Candles, make_candles
from tests.utils.market_data import HOUR, flat_bars, from_bars

Bar = tuple[float, float, float, float]
START = 1_700_000_000
HISTORY = 16  # flat bars before the entry: ATR(14) is exactly 2.0 at their end


def with_history(bars: Sequence[Bar], *, price: float = 100.0) -> Candles:
    """HISTORY flat bars at ``price`` (range +/-1, so ATR = 2) followed by ``bars``."""
    return from_bars([*flat_bars(HISTORY, price=price), *bars], start=START)


def entry_time() -> int:
    """Open time of the first bar after the history: where the position starts."""
    return START + HISTORY * HOUR


def mirror(c: Candles, pivot: float = 100.0) -> Candles:
    """The path reflected about ``pivot`` (high and low swap roles)."""
    return make_candles(c.time, 2 * pivot - c.open, 2 * pivot - c.low, 2 * pivot - c.high,
                        2 * pivot - c.close, c.volume)


def random_walk(n: int, *, seed: int, step: float = 0.75) -> Candles:
    """A seeded random walk of ``n`` bars around 100 on a 1/64 grid."""
    rng = np.random.default_rng(seed)
    grid = 64.0
    close = 100.0 + np.cumsum(np.round(rng.normal(0, step, n) * grid) / grid)
    open_ = np.concatenate([[100.0], close[:-1]])
    # occasional gaps: the open jumps away from the previous close
    gaps = rng.random(n) < 0.05
    open_ = open_ + gaps * np.round(rng.normal(0, 2 * step, n) * grid) / grid
    wick_up = np.round(rng.exponential(step / 2, n) * grid) / grid
    wick_down = np.round(rng.exponential(step / 2, n) * grid) / grid
    high = np.maximum(open_, close) + wick_up
    low = np.minimum(open_, close) - wick_down
    assert (low > 50).all() and (high < 150).all(), "path left the test range"
    time = START + HOUR * np.arange(n, dtype=np.int64)
    return make_candles(time, open_, high, low, close, np.full(n, 100.0))
