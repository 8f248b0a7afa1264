"""OHLCV candles as plain numpy arrays, strict validation, and file loading.

Every entry point turns its input into :class:`Candles` through
:func:`candles_from_block`, so one set of rules decides what a valid candle series is:
files and frames (CLI, training) reach it via :func:`make_candles`, HTTP bodies via
:func:`backend.ml.candles_json.candles_to_arrays` (which builds the price block itself).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

OHLCV = ("open", "high", "low", "close", "volume")
# The models see float32: a larger value becomes inf there (and poisons a batch's SHAP).
FLOAT32_MAX = float(np.finfo(np.float32).max)
TIME_COLUMNS = ("time", "date", "timestamp", "datetime")


class CandleError(ValueError):
    """Invalid candles. ``field`` names the offending field, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Candles:
    """A validated candle series, oldest first.

    Attributes
    ----------
    time : ndarray of int64, shape (n,)
        Bar open time in epoch seconds (UTC), strictly increasing.
    open, high, low, close, volume : ndarray of float64, shape (n,)
    """

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def tail(self, n: int) -> Candles:
        return Candles(*(a[-n:] for a in self._arrays()))

    def head(self, n: int) -> Candles:
        return Candles(*(a[:n] for a in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.time, self.open, self.high, self.low, self.close, self.volume)

    def to_frame(self) -> pd.DataFrame:
        """DataFrame indexed by UTC timestamps with lower-case OHLCV columns."""
        index = pd.to_datetime(self.time, unit="s", utc=True)
        return pd.DataFrame(
            {name: getattr(self, name) for name in OHLCV}, index=index
        ).rename_axis("time")


def make_candles(
    time: np.ndarray,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    min_length: int = 1,
    field: str = "candles",
) -> Candles:
    """Validate arrays and return :class:`Candles`.

    Raises
    ------
    CandleError
        Too few rows, unequal lengths, non-finite values or values beyond float32's
        range, prices <= 0, high below
        open/close/low, low above open/close, negative volume, unsorted or duplicate times.
    """
    t = np.asarray(time)
    n = t.shape[0]
    columns = (open, high, low, close, volume)
    try:
        block = np.array(columns, dtype=np.float64)  # (5, n): one copy, rows contiguous
    except (ValueError, TypeError):
        block = None
    if block is None or block.shape != (5, n):
        if n < min_length:
            raise CandleError(field, f"need at least {min_length} candles, got {n}")
        for name, values in zip(OHLCV, columns, strict=True):
            size = np.asarray(values).shape[0]
            if size != n:
                raise CandleError(f"{field}.{name}", f"expected {n} values, got {size}")
        raise CandleError(field, "open/high/low/close/volume must be numbers")
    return candles_from_block(t, block, min_length=min_length, field=field)


def candles_from_block(time: np.ndarray, block: np.ndarray, *, min_length: int = 1,
                       field: str = "candles") -> Candles:
    """:func:`make_candles` from a float64 block of shape (5, n) (open, high, low, close,
    volume rows), which the result's arrays are views of."""
    t = np.asarray(time)
    n = t.shape[0]
    if n < min_length:
        raise CandleError(field, f"need at least {min_length} candles, got {n}")
    if block.ndim != 2 or block.shape[0] != 5:
        raise CandleError(field, "open/high/low/close/volume must be numbers")
    if block.shape[1] != n:
        raise CandleError(f"{field}.open", f"expected {n} values, got {block.shape[1]}")
    o, h, lo, c, v = block
    prices = block[:4]
    # Hot path: a few whole-block checks (a NaN fails every comparison, so min/max catch
    # it); the slow pinpointing runs only on failure.
    if n and not (prices.min() > 0 and block.max() <= FLOAT32_MAX and v.min() >= 0
            and (prices <= h).all() and (prices >= lo).all()):
        _raise_first_value_problem(block, field)
    if t.dtype.kind != "i":
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            raise CandleError(f"{field}.time", "must be finite")
        t = t.astype(np.int64)
    if n > 1 and not (t[1:] > t[:-1]).all():
        step = np.diff(t)
        if (step == 0).any():
            raise CandleError(f"{field}[{int(np.argmax(step == 0)) + 1}].time",
                              "duplicate timestamp")
        raise CandleError(f"{field}[{int(np.argmax(step < 0)) + 1}].time",
                          "timestamps must be sorted ascending")
    return Candles(t, o, h, lo, c, v)


def _raise_first_value_problem(block: np.ndarray, field: str) -> None:
    """Name the first offending candle and field (same order as the rules are listed)."""
    for name, arr in zip(OHLCV, block, strict=True):
        bad = ~(np.abs(arr) <= FLOAT32_MAX)  # NaN and inf included
        if bad.any():
            raise CandleError(f"{field}[{int(np.argmax(bad))}].{name}",
                              "must be a finite number within float32's range (<= 3.4e38)")
    for name, arr in zip(OHLCV[:4], block[:4], strict=True):
        bad = arr <= 0
        if bad.any():
            raise CandleError(f"{field}[{int(np.argmax(bad))}].{name}", "price must be > 0")
    o, h, lo, c, v = block
    bad = v < 0
    if bad.any():
        raise CandleError(f"{field}[{int(np.argmax(bad))}].volume", "must be >= 0")
    bad = (h < lo) | (h < o) | (h < c) | (lo > o) | (lo > c)
    i = int(np.argmax(bad))
    reason = "high < low" if h[i] < lo[i] else "open/close outside [low, high]"
    raise CandleError(f"{field}[{i}].high", reason)


def candles_from_frame(df: pd.DataFrame, *, min_length: int = 1) -> Candles:
    """Candles from a DataFrame: time from a time/date/timestamp column or the index,
    OHLCV columns matched case-insensitively, extra columns ignored. A missing volume
    column is an error (volume features need it)."""
    lower = {str(c).lower(): c for c in df.columns}
    missing = [c for c in OHLCV if c not in lower]
    if missing:
        raise CandleError("candles", f"missing column(s): {', '.join(missing)}")
    time_col = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
    raw_time = df[time_col] if time_col is not None else df.index.to_series()
    times = _to_epoch_seconds(raw_time)
    return make_candles(times, *(df[lower[c]].to_numpy(dtype=np.float64) for c in OHLCV),
                        min_length=min_length)


def _to_epoch_seconds(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.int64)
    try:
        ts = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise CandleError("candles.time", f"unparseable timestamps: {exc}") from exc
    if ts.isna().any():
        raise CandleError("candles.time", "missing timestamps")
    return (ts.astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def load_candles_file(path: str | Path, *, min_length: int = 1) -> Candles:
    """Read CSV, Parquet or Feather candles (see :func:`candles_from_frame`)."""
    p = Path(path)
    if not p.is_file():
        raise CandleError("candles", f"file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        df = pd.read_parquet(p)
    elif suffix in {".feather", ".arrow"}:
        df = pd.read_feather(p)
    elif suffix in {".csv", ".txt", ".gz"}:
        df = pd.read_csv(p)
        first = df.columns[0]
        if str(first).lower() not in TIME_COLUMNS and str(first).startswith("Unnamed"):
            df = df.set_index(first)  # the time was written as the index
    else:
        raise CandleError("candles", f"unsupported file type {suffix!r} (csv, parquet, feather)")
    if df.index.name is not None or not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index() if str(df.index.name).lower() in TIME_COLUMNS else df
    return candles_from_frame(df, min_length=min_length)


def sample_candles_path(name: str) -> Path:
    """Path of a sample file shipped by the ``backtesting`` package (EURUSD, GOOG, BTCUSD)."""
    # found, not imported: importing backtesting loads tqdm into the serving process
    spec = importlib.util.find_spec("backtesting")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("No module named 'backtesting'")
    return Path(spec.origin).parent / "test" / f"{name}.csv"
