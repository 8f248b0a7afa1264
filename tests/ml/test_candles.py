"""Candle validation: every rule of make_candles names the field and the reason; the real
sample files load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.ml.candles import (
    CandleError,
    candles_from_frame,
    load_candles_file,
    make_candles,
    sample_candles_path,
)


def _columns(n: int = 5) -> dict[str, np.ndarray]:
    close = 100.0 + np.arange(n)
    return {"time": 1_700_000_000 + 3600 * np.arange(n, dtype=np.int64), "open": close - 0.5,
            "high": close + 1.0, "low": close - 1.0, "close": close, "volume": np.full(n, 10.0)}


def _error(**changes: object) -> CandleError:
    cols = _columns()
    for key, value in changes.items():
        if isinstance(value, tuple):  # (index, value): change one element
            cols[key] = cols[key].copy()
            cols[key][value[0]] = value[1]
        else:
            cols[key] = value  # type: ignore[assignment]
    with pytest.raises(CandleError) as err:
        make_candles(**cols)
    return err.value


def test_valid_candles() -> None:
    c = make_candles(**_columns())
    assert len(c) == 5 and c.time.dtype == np.int64 and c.close.dtype == np.float64
    assert len(c.tail(2)) == 2 and c.head(2).close.tolist() == [100.0, 101.0]
    frame = c.to_frame()
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert str(frame.index.tz) == "UTC"


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"open": (2, np.nan)}, "candles[2].open", "finite"),
    ({"close": (4, np.inf)}, "candles[4].close", "finite"),
    ({"volume": (1, -np.inf)}, "candles[1].volume", "finite"),
    ({"low": (3, -1.0)}, "candles[3].low", "> 0"),
    ({"open": (0, 0.0), "low": (0, 0.0)}, "candles[0].open", "> 0"),
    ({"volume": (2, -5.0)}, "candles[2].volume", ">= 0"),
    ({"high": (1, 98.0)}, "candles[1].high", "high < low"),
    ({"close": (3, 105.0)}, "candles[3].high", "outside"),
    ({"open": (2, 98.5)}, "candles[2].high", "outside"),
    ({"time": (3, 1_700_000_000 + 3600 * 2)}, "candles[3].time", "duplicate"),
    ({"time": (3, 1_700_000_000)}, "candles[3].time", "sorted"),
    ({"time": np.array([0.0, 1.0, np.nan, 3.0, 4.0])}, "candles.time", "finite"),
    ({"volume": np.ones(4)}, "candles.volume", "expected 5 values"),
])
def test_each_rule_names_field_and_reason(changes: dict[str, object], field: str,
                                          reason: str) -> None:
    err = _error(**changes)
    assert err.field == field
    assert reason in err.reason
    assert str(err).startswith(field)


def test_too_few_candles() -> None:
    with pytest.raises(CandleError) as err:
        make_candles(**_columns(3), min_length=10)
    assert err.value.field == "candles" and "need at least 10 candles, got 3" in err.value.reason


def test_frame_needs_every_ohlcv_column() -> None:
    frame = pd.DataFrame({k: v for k, v in _columns().items() if k != "volume"})
    with pytest.raises(CandleError) as err:
        candles_from_frame(frame)
    assert err.value.field == "candles" and "volume" in err.value.reason
    frame = pd.DataFrame(_columns())
    frame["time"] = ["2024-01-01", "not a date", "2024-01-03", "2024-01-04", "2024-01-05"]
    with pytest.raises(CandleError) as err:
        candles_from_frame(frame)
    assert err.value.field == "candles.time"


def test_files(tmp_path: Path) -> None:
    with pytest.raises(CandleError, match="file not found"):
        load_candles_file(tmp_path / "missing.csv")
    bad = tmp_path / "candles.xlsx"
    bad.write_text("x")
    with pytest.raises(CandleError, match="unsupported file type"):
        load_candles_file(bad)
    eurusd = load_candles_file(sample_candles_path("EURUSD"))
    goog = load_candles_file(sample_candles_path("GOOG"))
    assert (len(eurusd), len(goog)) == (5000, 2148)
    # the files' first rows, read by eye: 2017-04-19 09:00 EURUSD open 1.0716, volume 1413
    assert eurusd.time[0] == pd.Timestamp("2017-04-19 09:00", tz="UTC").value // 10**9
    assert (eurusd.open[0], eurusd.volume[0]) == (1.0716, 1413.0)
    # a round trip through CSV and Parquet gives the same candles
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"eurusd.{suffix}"
        frame = eurusd.to_frame().head(300)
        frame.to_csv(path) if suffix == "csv" else frame.to_parquet(path)
        again = load_candles_file(path)
        np.testing.assert_array_equal(again.time, eurusd.time[:300])
        np.testing.assert_array_equal(again.close, eurusd.close[:300])
