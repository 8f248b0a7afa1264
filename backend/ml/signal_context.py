"""Context features of feature set fs1: one trade signal seen against the market row at its bar.

The side, the base strategy (one-hot), the strategy's strength, the stop and target in ATR,
and the market features that have a direction turned into the trade's direction. One
definition (:func:`context_row`) serves a single signal (serving) and many (training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.ml.market_features import MA_PERIODS, MARKET_FEATURES, RETURN_HORIZONS

KNOWN_STRATEGIES = ("ma_cross", "rsi_reversion", "breakout")
OTHER_STRATEGY = "other"

# Directional context features: side * (market feature - centre), so the model sees movement
# in the trade's direction (a 1% rise is +1% for a long and -1% for a short).
_DIRECTIONAL: tuple[tuple[str, str, float], ...] = (
    *((f"dir_ret_{k}", f"ret_{k}", 0.0) for k in RETURN_HORIZONS),
    ("dir_macd_atr", "macd_atr", 0.0),
    ("dir_macd_signal_atr", "macd_signal_atr", 0.0),
    ("dir_macd_hist_atr", "macd_hist_atr", 0.0),
    ("dir_di_diff", "di_diff", 0.0),
    ("dir_bb_pctb", "bb_pctb", 0.5),
    ("dir_rsi", "rsi_14", 50.0),
    ("dir_stoch_k", "stoch_k", 50.0),
    *((f"dir_dist_sma_{p}", f"dist_sma_{p}", 0.0) for p in MA_PERIODS),
    *((f"dir_dist_ema_{p}", f"dist_ema_{p}", 0.0) for p in MA_PERIODS),
    ("dir_body_frac", "body_frac", 0.0),
)

CONTEXT_DEFINITIONS: dict[str, str] = {
    "side": "+1 long, -1 short",
    **{name: f"side * ({src} - {centre:g})" for name, src, centre in _DIRECTIONAL},
    **{f"strategy_{s}": f"1 when the base strategy is {s!r}, else 0" for s in KNOWN_STRATEGIES},
    f"strategy_{OTHER_STRATEGY}": "1 when the strategy is none of the known base strategies",
    "signal_strength": "strength reported by the base strategy (the bootstrap strategies give "
                       "0..1); NaN when not given: XGBoost/LightGBM send NaN down each "
                       "split's default branch instead of imputing a value",
    "stop_dist_atr": "side * (close - stop_price) / ATR(14): stop distance in ATR at the "
                     "signal bar, positive when the stop is on the losing side; NaN if no stop",
    "target_dist_atr": "side * (target_price - close) / ATR(14); NaN if no target",
    "reward_risk": "target_dist_atr / stop_dist_atr; NaN when either is missing or the stop "
                   "distance is <= 0",
}
CONTEXT_FEATURES: tuple[str, ...] = tuple(CONTEXT_DEFINITIONS)

_M = {name: i for i, name in enumerate(MARKET_FEATURES)}
_DIR_SOURCES = tuple((_M[src], centre) for _, src, centre in _DIRECTIONAL)
_ATR_PCT = _M["atr_pct"]
_N_STRATEGIES = len(KNOWN_STRATEGIES) + 1
_ONE_HOT = tuple(tuple(float(i == j) for j in range(_N_STRATEGIES)) for i in range(_N_STRATEGIES))


class SignalError(ValueError):
    """Invalid signal context. ``field`` names the offending field, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def side_sign(side: Any, field: str = "side") -> float:
    """+1.0 for 'long'/'buy'/+1, -1.0 for 'short'/'sell'/-1; SignalError otherwise."""
    if isinstance(side, str):
        key = side.strip().lower()
        if key in ("long", "buy"):
            return 1.0
        if key in ("short", "sell"):
            return -1.0
    elif (isinstance(side, int | float | np.integer | np.floating)
          and not isinstance(side, bool) and side in (1, -1)):
        return float(side)
    raise SignalError(field, f"must be 'long'/'short' or +1/-1, got {side!r}")


def strategy_index(strategy: Any) -> int:
    """Index of ``strategy`` in :data:`KNOWN_STRATEGIES`, or ``len(KNOWN_STRATEGIES)`` (other)."""
    key = str(strategy).strip().lower() if strategy is not None else ""
    return KNOWN_STRATEGIES.index(key) if key in KNOWN_STRATEGIES else len(KNOWN_STRATEGIES)


def optional_price(value: Any, field: str) -> float:
    """A stop or target price: NaN when absent, SignalError unless a finite number > 0."""
    if value is None:
        return math.nan
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise SignalError(field, f"must be a number, got {value!r}") from None
    if math.isnan(x):
        return math.nan
    if not math.isfinite(x) or x <= 0:
        raise SignalError(field, f"must be a finite price > 0, got {value!r}")
    return x


def _divide(num: float, den: float) -> float:
    """``num / den`` with IEEE results for a zero denominator (inf, or NaN for 0/0), as numpy."""
    if den != 0:  # also NaN
        return num / den
    if num == 0 or math.isnan(num):
        return math.nan
    return math.copysign(math.inf, num) * math.copysign(1.0, den)


def context_row(market: Sequence[float], close: float, side: float, strategy_idx: int,
                strength: float, stop: float, target: float) -> list[float]:
    """Context features (n_context,) of one signal from the market row at its bar.

    Plain floats: one signal costs ~1 us here against ~12 us in small numpy operations, and the
    batch path (signal_matrix) has only hundreds of signals; one definition serves both.
    """
    atr = market[_ATR_PCT] * close
    stop_dist = _divide(side * (close - stop), atr)
    target_dist = _divide(side * (target - close), atr)
    return [side, *[side * (market[i] - centre) for i, centre in _DIR_SOURCES],
            *_ONE_HOT[strategy_idx], strength, stop_dist, target_dist,
            target_dist / stop_dist if stop_dist > 0 else math.nan]
