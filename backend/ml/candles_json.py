"""Candles from their JSON forms (rows or columns) or from pre-decoded columns.

Two JSON forms are accepted, times as epoch seconds (int/float) or ISO 8601 strings (a
naive string is UTC)::

    [{"time": 1700000000, "open": 1.07, "high": 1.08, "low": 1.06, "close": 1.075,
      "volume": 1000}, ...]
    {"time": [...], "open": [...], "high": [...], "low": [...], "close": [...],
     "volume": [...]}

:func:`candles_to_arrays` checks the shape, turns it into :class:`Candles` with one numpy
conversion for the five price columns, and every value rule (finite, positive, high >= low,
sorted, ...) is :func:`backend.ml.candles.candles_from_block`'s, raising
:class:`CandleError` with the field path. Below the API on purpose: the request schemas
(backend.api.schemas.candles) and the fast decoder hand their parsed JSON to it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from backend.ml.candles import OHLCV, CandleError, Candles, candles_from_block

COLUMNS = ("time", *OHLCV)
# 1e11 s is the year 5138: a larger epoch is almost surely milliseconds.
_MAX_EPOCH_SECONDS = 1e11
_MIN_EPOCH_SECONDS = -2_208_988_800  # 1900-01-01: older is not a market candle
_TIME_RANGE = "out of range (epoch seconds from 1900 to 5138 expected)"


class DecodedColumns(NamedTuple):
    """Columnar candles already in numpy (backend.api.fast_decode), not yet validated."""

    time: np.ndarray  # int64, epoch seconds
    block: np.ndarray  # float64, shape (5, n): open, high, low, close, volume


def candles_to_arrays(candles: list[dict[str, Any]] | dict[str, list[Any]] | DecodedColumns,
                      *, field: str = "candles", min_length: int = 1) -> Candles:
    """Validated :class:`Candles` from either JSON form (or from the fast decoder).

    Raises
    ------
    CandleError
        Missing column, non-numeric price, unparseable time, or any rule of make_candles;
        ``field`` prefixes the reported path (e.g. ``candles[3].high``).
    """
    if isinstance(candles, DecodedColumns):
        check_epoch_range(candles.time, field)
        return candles_from_block(candles.time, candles.block, min_length=min_length,
                                  field=field)
    if isinstance(candles, dict):
        columns = _from_columns(candles, field)
    elif isinstance(candles, list):
        columns = _from_rows(candles, field)
    else:
        raise CandleError(field, "must be a list of candle objects or an object of columns")
    time = _parse_times(columns["time"], field)
    return candles_from_block(time, _price_block(columns, field), min_length=min_length,
                              field=field)


def _from_columns(candles: dict[str, Any], field: str) -> dict[str, list[Any]]:
    for c in COLUMNS:
        if c not in candles:
            raise CandleError(f"{field}.{c}", "missing column")
        if type(candles[c]) is not list:
            raise CandleError(f"{field}.{c}", "must be an array")
    return candles


def _price_block(columns: dict[str, list[Any]], field: str) -> np.ndarray:
    """The (5, n) float64 block of open/high/low/close/volume, in one numpy conversion."""
    try:
        block = np.array([columns[c] for c in OHLCV])
    except (ValueError, TypeError, OverflowError):  # ragged, nested, huge ints
        block = None
    if block is None or block.ndim != 2 or block.dtype.kind not in "iuf":
        # slow path only to name the culprit: the first bad value, else unequal lengths
        arrays = [_numbers(columns[c], field, c) for c in OHLCV]
        n = len(columns["time"])
        for name, arr in zip(OHLCV, arrays, strict=True):
            if arr.shape[0] != n:
                raise CandleError(f"{field}.{name}", f"expected {n} values, got {arr.shape[0]}")
        block = np.array(arrays)
    return block.astype(np.float64, copy=False)


def _from_rows(rows: list[dict[str, Any]], field: str) -> dict[str, list[Any]]:
    try:
        return {c: [row[c] for row in rows] for c in COLUMNS}
    except (KeyError, TypeError):
        for i, row in enumerate(rows):  # slow path only to name the culprit
            if not isinstance(row, dict):
                raise CandleError(f"{field}[{i}]", "must be an object") from None
            for c in COLUMNS:
                if c not in row:
                    raise CandleError(f"{field}[{i}].{c}", "missing") from None
        raise


def _numbers(values: list[Any], field: str, column: str) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError):  # ragged nesting, huge ints
        arr = None
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iuf":
        bad = next((i for i, v in enumerate(values) if not _is_number(v)), 0)
        # index before column, as the value rules and the rows form name a candle
        raise CandleError(f"{field}[{bad}].{column}", "must be a number")
    return arr.astype(np.float64, copy=False)


def _is_number(value: Any) -> bool:
    """A JSON number numpy can hold as float64 (not a bool, not an int beyond 1.8e308)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, int) or abs(value) < 2 ** 1023


def _parse_times(values: list[Any], field: str) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iuf":
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise CandleError(f"{field}.time", "must be finite")
            arr = np.floor(arr)
        check_epoch_range(arr, field)
        return arr.astype(np.int64)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        out[i] = _one_time(v, f"{field}[{i}].time")
    return out


def check_epoch_range(times: np.ndarray, field: str) -> None:
    """Epoch seconds from 1900 to 5138; a larger value is almost surely milliseconds."""
    if not times.size:
        return
    # Candles must be sorted (checked next): if the ends are in range and in order, so is
    # every time in a valid series; an unsorted one fails that check either way.
    ends = times[[0, -1]].tolist()  # Python numbers: numpy scalar comparisons cost more
    first, last = ends[0], ends[-1]
    if first > last or not (first >= _MIN_EPOCH_SECONDS and last < _MAX_EPOCH_SECONDS):
        first, last = times.min(), times.max()
    if last >= _MAX_EPOCH_SECONDS:
        raise CandleError(f"{field}.time", "epoch seconds expected (this looks like "
                                           "milliseconds)")
    if first < _MIN_EPOCH_SECONDS:
        raise CandleError(f"{field}.time", _TIME_RANGE)


def _one_time(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise CandleError(field, "must be epoch seconds or an ISO 8601 string")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise CandleError(field, "must be finite epoch seconds")
        seconds = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise CandleError(field, f"not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            seconds = parsed.timestamp()
        except (OverflowError, ValueError):
            raise CandleError(field, _TIME_RANGE) from None
    else:
        raise CandleError(field, "must be epoch seconds or an ISO 8601 string")
    if not _MIN_EPOCH_SECONDS <= seconds < _MAX_EPOCH_SECONDS:
        raise CandleError(field, _TIME_RANGE)
    return math.floor(seconds)
