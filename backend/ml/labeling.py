"""Base strategies over historical candles, triple-barrier labels, and labels from outcomes.

The base strategies pick the side; the model later decides whether a signal is worth taking.
To bootstrap before live trades exist, each historical signal is labelled by the barriers
the exit policies use: take-profit and stop-loss in ATR multiples and a time limit in bars.
Nothing here looks ahead: a signal at bar t uses bars <= t, a label uses bars > t only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
import talib

from backend.ml.candles import Candles
from backend.ml.feature_extractor import FEATURE_SET_VERSION, FeatureExtractor, side_sign
from backend.positions.barriers import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_MAX_BARS,
    DEFAULT_SL_ATR,
    DEFAULT_TP_ATR,
    Side,
    barrier_fill,
)

log = logging.getLogger(__name__)

EXIT_REASONS = ("take_profit", "stop_loss", "time")


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{field}: must be a positive integer, got {value!r}")
    return int(value)


def _positive_float(value: Any, field: str) -> float:
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{field}: must be a finite number > 0, got {value!r}")
    return x


def _signals(candles: Candles, long: np.ndarray, short: np.ndarray, strength: np.ndarray,
             name: str) -> pd.DataFrame:
    """Signals frame from boolean masks over bars; a bar with NaN inputs never fires."""
    pos = np.flatnonzero(long | short)
    return pd.DataFrame({
        "pos": pos.astype(np.int64),
        "time": pd.to_datetime(candles.time[pos], unit="s", utc=True),
        "side": np.where(long[pos], 1, -1).astype(np.int8),
        "strategy": name,
        "signal_strength": strength[pos],
    })


def ma_cross(candles: Candles, *, fast: int = 10, slow: int = 30, kind: str = "sma",
             atr_period: int = 14) -> pd.DataFrame:
    """Moving-average cross: long when the fast MA crosses above the slow MA, short below.

    A cross at bar t means ``fast - slow`` was <= 0 at t-1 and > 0 at t (long), or >= 0 and
    < 0 (short). ``signal_strength = tanh(|fast - slow| / ATR)`` at t, in [0, 1]: how far
    through the cross the averages already are.
    """
    fast, slow = _positive_int(fast, "fast"), _positive_int(slow, "slow")
    if fast >= slow:
        raise ValueError(f"fast: must be shorter than slow ({slow}), got {fast}")
    average = {"sma": talib.SMA, "ema": talib.EMA}.get(kind)
    if average is None:
        raise ValueError(f"kind: must be 'sma' or 'ema', got {kind!r}")
    gap = average(candles.close, fast) - average(candles.close, slow)
    atr = talib.ATR(candles.high, candles.low, candles.close, _positive_int(atr_period,
                                                                             "atr_period"))
    prev = np.concatenate(([np.nan], gap[:-1]))
    valid = np.isfinite(prev) & np.isfinite(gap) & np.isfinite(atr) & (atr > 0)
    long = valid & (prev <= 0) & (gap > 0)
    short = valid & (prev >= 0) & (gap < 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = np.tanh(np.abs(gap) / atr)
    return _signals(candles, long, short, strength, "ma_cross")


def rsi_reversion(candles: Candles, *, period: int = 14, lower: float = 30.0,
                  upper: float = 70.0) -> pd.DataFrame:
    """RSI mean reversion: long when RSI crosses back above `lower`, short back below `upper`.

    ``signal_strength = |RSI_t - RSI_t-1| / 100``, in [0, 1]: the size of the turn.
    """
    period = _positive_int(period, "period")
    if not 0 < lower < upper < 100:
        raise ValueError(f"lower/upper: need 0 < lower < upper < 100, got {lower}, {upper}")
    rsi = talib.RSI(candles.close, period)
    prev = np.concatenate(([np.nan], rsi[:-1]))
    valid = np.isfinite(prev) & np.isfinite(rsi)
    long = valid & (prev < lower) & (rsi >= lower)
    short = valid & (prev > upper) & (rsi <= upper)
    return _signals(candles, long, short, np.abs(rsi - prev) / 100.0, "rsi_reversion")


def breakout(candles: Candles, *, lookback: int = 20, atr_period: int = 14) -> pd.DataFrame:
    """Channel breakout: long when the close first rises above the prior `lookback`-bar high,
    short when it first falls below the prior low.

    "Prior" excludes bar t. Only the first bar of a breakout fires (the close at t-1 was
    inside its own prior channel), so a trend does not emit a signal on every bar.
    ``signal_strength = tanh(distance beyond the channel / ATR)``, in [0, 1].
    """
    lookback = _positive_int(lookback, "lookback")
    n = len(candles)
    prior_high = np.full(n, np.nan)
    prior_low = np.full(n, np.nan)
    prior_high[1:] = talib.MAX(candles.high, lookback)[:-1]
    prior_low[1:] = talib.MIN(candles.low, lookback)[:-1]
    close = candles.close
    atr = talib.ATR(candles.high, candles.low, close, _positive_int(atr_period, "atr_period"))
    with np.errstate(invalid="ignore"):
        above = close > prior_high
        below = close < prior_low
    # Fresh breakouts only: the previous bar had a channel of its own and closed inside it.
    valid = np.isfinite(prior_high) & np.isfinite(atr) & (atr > 0)
    valid[1:] &= np.isfinite(prior_high[:-1])
    valid[0] = False
    long = valid & above & ~np.concatenate(([False], above[:-1]))
    short = valid & below & ~np.concatenate(([False], below[:-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        beyond = np.where(long, close - prior_high, prior_low - close)
        strength = np.tanh(beyond / atr)
    return _signals(candles, long, short, strength, "breakout")


STRATEGIES: dict[str, Callable[..., pd.DataFrame]] = {
    "ma_cross": ma_cross,
    "rsi_reversion": rsi_reversion,
    "breakout": breakout,
}


def triple_barrier(candles: Candles, signals: pd.DataFrame, *, tp_atr: float = DEFAULT_TP_ATR,
                   sl_atr: float = DEFAULT_SL_ATR, max_bars: int = DEFAULT_MAX_BARS,
                   atr_period: int = DEFAULT_ATR_PERIOD) -> pd.DataFrame:
    """Label signals by the first barrier hit after the signal bar.

    Entry is the close of the signal bar t; the barriers are fixed there from ATR(atr_period)
    at t: stop = entry -/+ sl_atr*ATR, target = entry +/- tp_atr*ATR (long/short). Bars
    t+1 .. t+max_bars are scanned in order with the exit backtester's fill rule
    (:func:`backend.positions.barriers.barrier_fill`): the open comes first, so an open at or
    beyond the stop (or the target) exits at that open (a gap); otherwise a bar whose range
    touches both barriers counts as the stop (the path inside a bar is unknown, so assume
    the worse), one that touches one exits at that barrier. With no hit, the trade exits at
    the close of bar t+max_bars ('time'). The defaults are the shared barrier defaults.

    Signals are dropped (their label is unknown) when their window t+max_bars runs past the
    last candle, or when ATR at t is undefined (the first `atr_period` bars) or zero.

    Parameters
    ----------
    candles : Candles
    signals : DataFrame with columns ``pos`` (bar index) and ``side`` (+1/-1 or
        'long'/'short'); other columns are kept.

    Returns
    -------
    DataFrame (n_kept, ...) = the kept signal rows (original index) plus ``entry_price``,
    ``stop_price``, ``target_price``, ``exit_pos``, ``exit_time`` (t1, the label window end:
    open time of the exit bar), ``exit_price``, ``exit_reason`` ('take_profit', 'stop_loss',
    'time'), ``return`` (side-signed fraction of the entry) and ``label`` (1 when return > 0).
    """
    tp_atr, sl_atr = _positive_float(tp_atr, "tp_atr"), _positive_float(sl_atr, "sl_atr")
    max_bars = _positive_int(max_bars, "max_bars")
    o, h, lo, c = candles.open, candles.high, candles.low, candles.close
    atr = talib.ATR(h, lo, c, _positive_int(atr_period, "atr_period"))
    n = len(candles)
    pos = signals["pos"].to_numpy(dtype=np.int64)
    side = np.array([side_sign(s, "signals.side") for s in signals["side"]], dtype=float)
    in_range = (pos >= 0) & (pos + max_bars < n)
    atr_at = atr[np.clip(pos, 0, n - 1)]
    keep = in_range & np.isfinite(atr_at) & (atr_at > 0)
    rows = []
    for t, s in zip(pos[keep], side[keep], strict=True):
        entry = float(c[t])
        stop = entry - s * sl_atr * float(atr[t])
        target = entry + s * tp_atr * float(atr[t])
        word: Side = "long" if s > 0 else "short"
        exit_pos, price, reason = t + max_bars, float(c[t + max_bars]), "time"
        for j in range(t + 1, t + max_bars + 1):
            fill = barrier_fill(word, stop, target, float(o[j]), float(h[j]), float(lo[j]))
            if fill is not None:
                exit_pos, price = j, fill[0]
                reason = "stop_loss" if fill[1] == "stop" else "take_profit"
                break
        rows.append((entry, stop, target, exit_pos, price, reason, s * (price - entry) / entry))
    out = signals.iloc[np.flatnonzero(keep)].copy()
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    out["entry_price"] = np.asarray(cols[0], dtype=float)
    out["stop_price"] = np.asarray(cols[1], dtype=float)
    out["target_price"] = np.asarray(cols[2], dtype=float)
    out["exit_pos"] = np.asarray(cols[3], dtype=np.int64)
    out["exit_time"] = pd.to_datetime(candles.time[out["exit_pos"].to_numpy()], unit="s",
                                      utc=True)
    out["exit_price"] = np.asarray(cols[4], dtype=float)
    out["exit_reason"] = pd.Series(cols[5], index=out.index, dtype=object)
    out["return"] = np.asarray(cols[6], dtype=float)
    out["label"] = (out["return"].to_numpy() > 0).astype(np.int64)
    dropped = int((~keep).sum())
    if dropped:
        log.debug("triple_barrier: dropped %d signal(s) without a complete label window", dropped)
    return out


class TradeOutcome(Protocol):
    """The fields of a labelled ``ml_trade_features`` row this module reads."""

    symbol: str
    side: str
    strategy: str
    signal_time: datetime
    feature_set_version: str
    features: Mapping[str, Any]
    label: int | None
    realized_return: float | None
    closed_at: datetime | None


def labelled_outcomes(rows: Iterable[TradeOutcome], *,
                      feature_set_version: str = FEATURE_SET_VERSION) -> list[TradeOutcome]:
    """Rows usable for training: labelled, closed, and with this feature-set version.

    Rows computed with another feature-set version have different feature definitions, so
    they are left out (logged) rather than mixed in.
    """
    rows = list(rows)
    kept = [r for r in rows if r.label is not None and r.closed_at is not None
            and r.feature_set_version == feature_set_version]
    other_version = sum(r.feature_set_version != feature_set_version for r in rows)
    if other_version:
        log.warning("left out %d outcome(s) with a feature_set_version other than %s",
                    other_version, feature_set_version)
    return kept


def utc_datetime64(values: Sequence[Any] | pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """datetime64[ns] (UTC, naive) from datetimes; naive inputs are taken as UTC."""
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return index.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def labels_from_outcomes(rows: Iterable[TradeOutcome], *,
                         extractor: FeatureExtractor | None = None,
                         ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Training data from reported trade outcomes (``TradeFeatureRow`` objects).

    Unlabelled or unclosed rows and rows of another feature-set version are left out
    (see :func:`labelled_outcomes`).

    Returns
    -------
    X : DataFrame (n, n_features), columns ``feature_names``; a missing key or None -> NaN.
    y : ndarray of int64, shape (n,), the labels.
    t0 : ndarray of datetime64[ns], shape (n,), signal times (UTC).
    t1 : ndarray of datetime64[ns], shape (n,), close times (the label window ends).
    """
    extractor = extractor or FeatureExtractor()
    kept = labelled_outcomes(rows, feature_set_version=extractor.feature_set_version)
    X = extractor.rows_from_mappings([r.features for r in kept])
    y = np.array([int(r.label) for r in kept], dtype=np.int64)  # type: ignore[arg-type]
    t0 = utc_datetime64([r.signal_time for r in kept])
    t1 = utc_datetime64([r.closed_at for r in kept])
    return X, y, t0, t1
