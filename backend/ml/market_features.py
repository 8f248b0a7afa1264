"""Market features of feature set fs1: the state of the market at one bar.

Every row is computed from the bar's trailing ``window`` candles only, in training (batch) and
in serving (single signal) alike. Recursive TA-Lib indicators (EMA, RSI, ATR, ADX, MACD) depend
on how much history they see, so the batch path does not run them once over the whole series;
it slides the window.

The rows come from one compiled C call (:mod:`backend.ml.native_features`, built and checked
against the Python reference ``_market_values_py`` at first use) or, when that is unavailable,
from the reference itself; both paths use the same implementation per process.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import talib
from talib import abstract

from backend.ml import native_features
from backend.ml.candles import Candles

RETURN_HORIZONS = (1, 3, 6, 12, 24)
VOLATILITY_WINDOWS = (10, 30)
MA_PERIODS = (10, 20, 50)
ATR_PERIOD = 14
RSI_PERIOD = 14
ADX_PERIOD = 14
MFI_PERIOD = 14
MACD_PERIODS = (12, 26, 9)
BB_PERIOD, BB_STDDEV = 20, 2.0
STOCH_PERIODS = (14, 3, 3)  # fast %K, slow %K smoothing, %D smoothing (simple averages)
VOLUME_SMA_PERIOD = 20

MARKET_DEFINITIONS: dict[str, str] = {
    **{f"ret_{k}": f"log(close_t / close_t-{k})" for k in RETURN_HORIZONS},
    **{f"vol_{w}": f"population std of the last {w} one-bar log returns" for w in
       VOLATILITY_WINDOWS},
    "atr_pct": "ATR(14) / close",
    "range_atr": "(high - low) of the last bar / ATR(14)",
    "rsi_14": "RSI(14), 0..100",
    "macd_atr": "MACD line (EMA12 - EMA26 of close) / ATR(14)",
    "macd_signal_atr": "MACD signal line (EMA9 of the MACD line) / ATR(14)",
    "macd_hist_atr": "MACD histogram (line - signal) / ATR(14)",
    "bb_pctb": "Bollinger %B (20, 2): (close - lower) / (upper - lower); 0.5 when the band is flat",
    "bb_width": "Bollinger band width (20, 2): (upper - lower) / middle",
    "adx_14": "ADX(14), 0..100",
    "plus_di_14": "+DI(14), 0..100",
    "minus_di_14": "-DI(14), 0..100",
    "di_diff": "+DI(14) - -DI(14)",
    "stoch_k": "slow stochastic %K (14, 3), 0..100",
    "stoch_d": "slow stochastic %D (3-bar SMA of %K), 0..100",
    "mfi_14": "Money Flow Index(14), 0..100; 50 when the last 14 bars have no volume",
    "volume_ratio": "volume / SMA20(volume); 1 when the 20-bar volume is zero (no volume data)",
    **{f"dist_sma_{p}": f"(close - SMA{p}(close)) / ATR(14)" for p in MA_PERIODS},
    **{f"dist_ema_{p}": f"(close - EMA{p}(close)) / ATR(14), EMA seeded inside the window"
       for p in MA_PERIODS},
    "body_frac": "(close - open) / (high - low), signed, -1..1; 0 when high == low",
    "upper_wick_frac": "(high - max(open, close)) / (high - low), 0..1; 0 when high == low",
    "lower_wick_frac": "(min(open, close) - low) / (high - low), 0..1; 0 when high == low",
    "hour_sin": "sin(2*pi*h/24), h = UTC hour of the bar open time (with minutes as fraction)",
    "hour_cos": "cos(2*pi*h/24)",
    "dow_sin": "sin(2*pi*d/7), d = UTC day of week of the bar open time (Monday = 0)",
    "dow_cos": "cos(2*pi*d/7)",
}
MARKET_FEATURES: tuple[str, ...] = tuple(MARKET_DEFINITIONS)

_N_MARKET = len(MARKET_FEATURES)


def _indicator_lookback(name: str, **params: Any) -> int:
    return int(abstract.Function(name, **params).lookback)


# Smallest number of candles with every market feature defined: 1 + the longest lookback.
MIN_CANDLES = 1 + max(
    max(RETURN_HORIZONS),
    max(VOLATILITY_WINDOWS),
    max(MA_PERIODS) - 1,  # SMA/EMA of p bars
    VOLUME_SMA_PERIOD - 1,
    _indicator_lookback("ATR", timeperiod=ATR_PERIOD),
    _indicator_lookback("RSI", timeperiod=RSI_PERIOD),
    _indicator_lookback("ADX", timeperiod=ADX_PERIOD),
    _indicator_lookback("MFI", timeperiod=MFI_PERIOD),
    _indicator_lookback("MACD", fastperiod=MACD_PERIODS[0], slowperiod=MACD_PERIODS[1],
                        signalperiod=MACD_PERIODS[2]),
    _indicator_lookback("BBANDS", timeperiod=BB_PERIOD),
    _indicator_lookback("STOCH", fastk_period=STOCH_PERIODS[0], slowk_period=STOCH_PERIODS[1],
                        slowd_period=STOCH_PERIODS[2]),
)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


# The raw TA-Lib functions: talib's public names wrap each call in a pandas/polars type
# check that costs more than the indicator itself on 100 candles. Same numbers.
_TA_ADX = getattr(talib.ADX, "__wrapped__", talib.ADX)
_TA_ATR = getattr(talib.ATR, "__wrapped__", talib.ATR)
_TA_BBANDS = getattr(talib.BBANDS, "__wrapped__", talib.BBANDS)
_TA_EMA = getattr(talib.EMA, "__wrapped__", talib.EMA)
_TA_MACD = getattr(talib.MACD, "__wrapped__", talib.MACD)
_TA_MFI = getattr(talib.MFI, "__wrapped__", talib.MFI)
_TA_MINUS_DI = getattr(talib.MINUS_DI, "__wrapped__", talib.MINUS_DI)
_TA_PLUS_DI = getattr(talib.PLUS_DI, "__wrapped__", talib.PLUS_DI)
_TA_RSI = getattr(talib.RSI, "__wrapped__", talib.RSI)
_TA_STOCH = getattr(talib.STOCH, "__wrapped__", talib.STOCH)


def _market_values_py(time: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
                      c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Market features of the last bar of these (trailing-window) arrays; numpy + talib only.

    The reference definition: ``native/fs1_market.c`` computes the same numbers in C.
    """
    out = np.empty(_N_MARKET)
    close = float(c[-1])
    log_c = np.log(c)
    i = 0
    for k in RETURN_HORIZONS:
        out[i] = log_c[-1] - log_c[-1 - k]
        i += 1
    log_ret = np.diff(log_c)
    for w in VOLATILITY_WINDOWS:
        x = log_ret[-w:]
        d = x - x.sum() / w
        out[i] = math.sqrt(float(d @ d) / w)
        i += 1
    atr = float(_TA_ATR(h, lo, c, ATR_PERIOD)[-1])
    macd, signal, hist = _TA_MACD(c, *MACD_PERIODS)
    upper, middle, lower = _TA_BBANDS(c, BB_PERIOD, BB_STDDEV, BB_STDDEV, 0)
    band = float(upper[-1] - lower[-1])
    plus_di = float(_TA_PLUS_DI(h, lo, c, ADX_PERIOD)[-1])
    minus_di = float(_TA_MINUS_DI(h, lo, c, ADX_PERIOD)[-1])
    slow_k, slow_d = _TA_STOCH(h, lo, c, STOCH_PERIODS[0], STOCH_PERIODS[1], 0,
                                 STOCH_PERIODS[2], 0)
    has_volume = float(v[-MFI_PERIOD:].sum()) > 0
    mean_volume = float(v[-VOLUME_SMA_PERIOD:].sum()) / VOLUME_SMA_PERIOD
    out[i:i + 19] = (
        atr / close,
        _ratio(float(h[-1] - lo[-1]), atr),
        _TA_RSI(c, RSI_PERIOD)[-1],
        _ratio(float(macd[-1]), atr),
        _ratio(float(signal[-1]), atr),
        _ratio(float(hist[-1]), atr),
        (close - float(lower[-1])) / band if band > 0 else 0.5,
        _ratio(band, float(middle[-1])),
        _TA_ADX(h, lo, c, ADX_PERIOD)[-1],
        plus_di,
        minus_di,
        plus_di - minus_di,
        slow_k[-1],
        slow_d[-1],
        _TA_MFI(h, lo, c, v, MFI_PERIOD)[-1] if has_volume else 50.0,
        float(v[-1]) / mean_volume if mean_volume > 0 else 1.0,
        *(_ratio(close - float(c[-p:].sum()) / p, atr) for p in MA_PERIODS),
    )
    i += 19
    for p in MA_PERIODS:
        out[i] = _ratio(close - float(_TA_EMA(c, p)[-1]), atr)
        i += 1
    rng = float(h[-1] - lo[-1])
    top, bottom = max(float(o[-1]), close), min(float(o[-1]), close)
    if rng > 0:
        out[i:i + 3] = ((close - float(o[-1])) / rng, (float(h[-1]) - top) / rng,
                        (bottom - float(lo[-1])) / rng)
    else:
        out[i:i + 3] = 0.0
    i += 3
    seconds = int(time[-1])
    hour = (seconds % 86400) / 3600.0
    dow = (seconds // 86400 + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    out[i:i + 4] = (math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24),
                    math.sin(2 * math.pi * dow / 7), math.cos(2 * math.pi * dow / 7))
    return out


def _market_rows_py(candles: Candles, first: int, last: int, window: int,
                    out: np.ndarray) -> None:
    rows = out.reshape(last - first, _N_MARKET)
    arrays = (candles.time, candles.open, candles.high, candles.low, candles.close,
              candles.volume)
    for t in range(first, last):
        lo = max(0, t + 1 - window)
        rows[t - first] = _market_values_py(*(a[lo:t + 1] for a in arrays))


_native_lock = threading.Lock()
_native: native_features.NativeMarket | None = None
_native_resolved = False


def use_native_features(enabled: bool = True, **options: Any) -> bool:
    """Choose the market-feature implementation of this process.

    ``enabled=True`` builds (or reuses), loads and verifies the compiled one now, keeping the
    Python reference with a warning if that fails; ``enabled=False`` uses the reference.
    ``options`` go to :func:`backend.ml.native_features.load` (``cache_dir``, ``compiler``).
    Without a call, the first market row decides (enabled, default options).

    Returns
    -------
    bool
        Whether the compiled implementation is in use.
    """
    global _native, _native_resolved
    with _native_lock:
        _native = native_features.load(_market_values_py, min_candles=MIN_CANDLES,
                                       enabled=enabled, **options)
        _native_resolved = True
        return _native is not None


def _native_market() -> native_features.NativeMarket | None:
    global _native, _native_resolved
    with _native_lock:  # first use: one thread builds, the others wait for it
        if not _native_resolved:
            _native = native_features.load(_market_values_py, min_candles=MIN_CANDLES)
            _native_resolved = True
        return _native


def market_rows(candles: Candles, first: int, last: int, window: int,
                out: np.ndarray) -> None:
    """Market rows of bars ``first..last-1``, each from its trailing ``window`` candles, into
    ``out`` (float64, C order, (last - first) * n_market items): the one function behind
    both ``FeatureExtractor.market_row`` and ``FeatureExtractor.transform``."""
    native = _native if _native_resolved else _native_market()
    if native is None:
        _market_rows_py(candles, first, last, window, out)
        return
    rc = native.rows(candles.time, candles.open, candles.high, candles.low, candles.close,
                     candles.volume, first, last, window, out)
    if rc == native_features.BAD_ARRAYS:  # e.g. int32 times or strided views: copy and retry
        arrays = (np.ascontiguousarray(candles.time, dtype=np.int64),
                  *(np.ascontiguousarray(a, dtype=np.float64) for a in (
                      candles.open, candles.high, candles.low, candles.close, candles.volume)))
        rc = native.rows(*arrays, first, last, window, out)
    if rc != 0:
        raise RuntimeError(f"compiled market features failed with code {rc}")
