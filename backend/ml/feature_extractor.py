"""Features for meta-labelling: market state at a bar plus the context of one trade signal.

Two paths give the same numbers by construction: every market row, in training (batch) and in
serving (single signal), is computed by the same function from the same trailing ``window``
candles. Recursive TA-Lib indicators (EMA, RSI, ATR, ADX, MACD) depend on how much history
they see, so the batch path does not run them once over the whole series; it slides the window.

The market rows come from one compiled C call (:mod:`backend.ml.native_features`, built and
checked against the Python reference ``_market_values_py`` at first use) or, when that is
unavailable, from the reference itself; both paths use the same implementation per process.

Definitions of every feature are in :data:`FEATURE_DEFINITIONS`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import talib
from talib import abstract

from backend.ml import native_features
from backend.ml.candles import CandleError, Candles

FEATURE_SET_VERSION = "fs1"

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

KNOWN_STRATEGIES = ("ma_cross", "rsi_reversion", "breakout")
OTHER_STRATEGY = "other"

_MARKET_DEFINITIONS: dict[str, str] = {
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
MARKET_FEATURES: tuple[str, ...] = tuple(_MARKET_DEFINITIONS)

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

_CONTEXT_DEFINITIONS: dict[str, str] = {
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
CONTEXT_FEATURES: tuple[str, ...] = tuple(_CONTEXT_DEFINITIONS)

FEATURE_DEFINITIONS: dict[str, str] = {**_MARKET_DEFINITIONS, **_CONTEXT_DEFINITIONS}

_M = {name: i for i, name in enumerate(MARKET_FEATURES)}
_DIR_SOURCES = tuple((_M[src], centre) for _, src, centre in _DIRECTIONAL)
_ATR_PCT = _M["atr_pct"]
_N_MARKET = len(MARKET_FEATURES)
_N_CONTEXT = len(CONTEXT_FEATURES)
_N_STRATEGIES = len(KNOWN_STRATEGIES) + 1
_ONE_HOT = tuple(tuple(float(i == j) for j in range(_N_STRATEGIES)) for i in range(_N_STRATEGIES))


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


class SignalError(ValueError):
    """Invalid signal context. ``field`` names the offending field, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


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


def _market_rows(candles: Candles, first: int, last: int, window: int,
                 out: np.ndarray) -> None:
    """Market rows of bars ``first..last-1``, each from its trailing ``window`` candles, into
    ``out`` (float64, C order, (last - first) * n_market items): the one function behind
    both :meth:`FeatureExtractor.market_row` and :meth:`FeatureExtractor.transform`."""
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


def named_features(names: Sequence[str], vector: np.ndarray) -> dict[str, float | None]:
    """``{feature name: value}`` with NaN as None (JSON has no NaN), for storage."""
    if vector.shape != (len(names),):
        raise ValueError(f"vector: expected shape ({len(names)},), got {vector.shape}")
    return {k: (None if math.isnan(x) else x) for k, x in zip(names, vector.tolist(),
                                                                strict=True)}


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


def _strategy_index(strategy: Any) -> int:
    key = str(strategy).strip().lower() if strategy is not None else ""
    return KNOWN_STRATEGIES.index(key) if key in KNOWN_STRATEGIES else len(KNOWN_STRATEGIES)


def _optional_price(value: Any, field: str) -> float:
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


def _context_row(market: Sequence[float], close: float, side: float, strategy_idx: int,
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


class FeatureExtractor:
    """Market and trade-context features for meta-labelling (a pure transformer: no I/O).

    Parameters
    ----------
    window : int, default 100
        Number of trailing candles every market row is computed from, in training and in
        serving alike. Must be >= ``min_candles``. Serving with fewer than ``window``
        candles is allowed (down to ``min_candles``) but the recursive indicators then see
        less history than in training; send ``window`` candles for identical numbers.

    Notes
    -----
    ``transform`` -> DataFrame (n_candles, n_market_features); ``market_row`` -> ndarray
    (n_market_features,); ``signal_vector`` -> ndarray (n_features,); ``signal_matrix`` ->
    DataFrame (n_signals, n_features). Feature order is ``feature_names``.
    """

    def __init__(self, window: int = 100) -> None:
        self.window = window

    # -- names -------------------------------------------------------------------------------
    @property
    def market_feature_names(self) -> list[str]:
        return list(MARKET_FEATURES)

    @property
    def feature_names(self) -> list[str]:
        return [*MARKET_FEATURES, *CONTEXT_FEATURES]

    @property
    def min_candles(self) -> int:
        """Warm-up: the smallest number of candles with no NaN in the market features."""
        return MIN_CANDLES

    @property
    def feature_set_version(self) -> str:
        return FEATURE_SET_VERSION

    def _checked_window(self) -> int:
        w = self.window
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < MIN_CANDLES:
            raise ValueError(f"window: must be an integer >= {MIN_CANDLES}, got {w!r}")
        return int(w)

    # -- single signal (serving) -------------------------------------------------------------
    def market_row(self, candles: Candles) -> np.ndarray:
        """Market features of the last candle from the last ``window`` candles.

        Returns
        -------
        ndarray of float64, shape (n_market_features,)

        Raises
        ------
        CandleError
            Fewer than ``min_candles`` candles.
        """
        out = np.empty(_N_MARKET)
        self._last_market_row(candles, out)
        return out

    def _last_market_row(self, candles: Candles, out: np.ndarray) -> None:
        w = self._checked_window()
        n = len(candles)
        if n < MIN_CANDLES:
            raise CandleError("candles", f"need at least {MIN_CANDLES} candles for the "
                                         f"features (indicator warm-up), got {n}")
        _market_rows(candles, n - 1, n, w, out)

    def signal_vector(self, candles: Candles, *, side: str | int, strategy: str | None,
                      signal_strength: float | None = None, stop_price: float | None = None,
                      target_price: float | None = None) -> np.ndarray:
        """Full feature vector of one signal at the last candle.

        Returns
        -------
        ndarray of float64, shape (n_features,), in ``feature_names`` order.

        Raises
        ------
        CandleError
            Too few candles.
        SignalError
            Bad side, or a stop/target price that is not a finite positive number.
        """
        side_v = side_sign(side)
        stop = _optional_price(stop_price, "stop_price")
        target = _optional_price(target_price, "target_price")
        strength = math.nan if signal_strength is None else float(signal_strength)
        out = np.empty(_N_MARKET + _N_CONTEXT)
        market = out[:_N_MARKET]
        self._last_market_row(candles, market)
        out[_N_MARKET:] = _context_row(market.tolist(), float(candles.close[-1]), side_v,
                                       _strategy_index(strategy), strength, stop, target)
        return out

    def as_dict(self, vector: np.ndarray) -> dict[str, float | None]:
        """``{feature name: value}`` with NaN as None (JSON has no NaN), for storage."""
        return named_features(self.feature_names, vector)

    # -- batch (training) --------------------------------------------------------------------
    def transform(self, candles: Candles) -> pd.DataFrame:
        """Market features for every candle, each from its trailing ``window`` candles.

        Returns
        -------
        DataFrame, shape (n_candles, n_market_features), indexed by UTC bar time. The first
        ``min_candles - 1`` rows (warm-up) are NaN.
        """
        w = self._checked_window()
        n = len(candles)
        values = np.full((n, _N_MARKET), np.nan)
        if n >= MIN_CANDLES:
            _market_rows(candles, MIN_CANDLES - 1, n, w, values[MIN_CANDLES - 1:])
        index = pd.DatetimeIndex(pd.to_datetime(candles.time, unit="s", utc=True), name="time")
        return pd.DataFrame(values, index=index, columns=list(MARKET_FEATURES))

    def signal_matrix(self, market: pd.DataFrame, candles: Candles,
                      signals: pd.DataFrame) -> pd.DataFrame:
        """Feature rows of many signals: the market row at each signal plus its context.

        Parameters
        ----------
        market : DataFrame (n_candles, n_market_features) from :meth:`transform` of `candles`.
        candles : Candles
        signals : DataFrame (n_signals, ...)
            Columns ``pos`` (bar index of the signal), ``side`` ('long'/'short' or +1/-1),
            ``strategy``; optional ``signal_strength``, ``stop_price``, ``target_price``
            (missing column or NaN -> NaN feature).

        Returns
        -------
        DataFrame (n_signals, n_features), columns exactly ``feature_names``, index of
        `signals`.
        """
        if list(market.columns) != list(MARKET_FEATURES) or len(market) != len(candles):
            raise ValueError("market: must be transform(candles) of the same candles")
        missing = [c for c in ("pos", "side", "strategy") if c not in signals.columns]
        if missing:
            raise SignalError("signals", f"missing column(s): {', '.join(missing)}")
        pos = signals["pos"].to_numpy(dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(candles)):
            raise SignalError("signals.pos", f"must be in [0, {len(candles) - 1}]")
        side = np.array([side_sign(s, "signals.side") for s in signals["side"]], dtype=float)
        strategy_idx = np.array([_strategy_index(s) for s in signals["strategy"]], dtype=int)

        def optional(column: str) -> np.ndarray:
            if column not in signals.columns:
                return np.full(len(signals), np.nan)
            return pd.to_numeric(signals[column]).to_numpy(dtype=float, na_value=np.nan)

        for column in ("stop_price", "target_price"):
            prices = optional(column)
            bad = ~np.isnan(prices) & ~(np.isfinite(prices) & (prices > 0))
            if bad.any():
                raise SignalError(f"signals.{column}", "must be a finite price > 0")
        market_rows = market.to_numpy(dtype=float)[pos]
        context = np.array([_context_row(*args) for args in zip(
            market_rows.tolist(), candles.close[pos].tolist(), side.tolist(),
            strategy_idx.tolist(), optional("signal_strength").tolist(),
            optional("stop_price").tolist(), optional("target_price").tolist(), strict=True)],
            dtype=float).reshape(len(pos), _N_CONTEXT)
        return pd.DataFrame(np.hstack((market_rows, context)), index=signals.index,
                            columns=self.feature_names)

    def rows_from_mappings(self, features: list[Mapping[str, Any]]) -> pd.DataFrame:
        """DataFrame (n, n_features) from stored feature dicts; a missing key or None -> NaN."""
        names = self.feature_names
        values = np.array([[_as_float(f.get(name)) for name in names] for f in features],
                          dtype=float).reshape(len(features), len(names))
        return pd.DataFrame(values, columns=names)


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)
