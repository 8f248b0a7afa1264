"""Several candle files in one dataset: names, pooling, parallel build, cross-symbol purge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend.ml.barrier_spec import Barrier
from backend.ml.candle_files import CandleFile, candle_files, load_candle_file, name_parts
from backend.ml.candles import CandleError
from backend.ml.dataset import build_dataset, build_pooled_dataset
from backend.ml.validation import PurgedWalkForward, resolve_embargo
from tests.utils.market_slices import sample, write_slice

H = np.timedelta64(3600, "s")


@pytest.mark.parametrize(("name", "expected"), [
    ("BTC_USDT-5m.feather", ("BTC/USDT", "5m")),
    ("BTC_USDT_USDT-1h-futures.feather", ("BTC/USDT:USDT", "1h")),
    ("EURUSD-1h.csv", ("EURUSD", "1h")),
    ("GOOG-1d.parquet", ("GOOG", "1d")),
    ("eurusd.csv", (None, None)),
    ("EURUSD-1hour.csv", (None, None)),
])
def test_symbol_and_timeframe_from_the_file_name(name: str, expected: tuple) -> None:
    assert name_parts(name) == expected


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pool")
    write_slice(d / "EURUSD-1h.csv", "EURUSD", 0, 1500)
    write_slice(d / "GOOG-1d.csv", "GOOG", 0, 1400)
    (d / "notes.txt").write_text("not candles")
    return d


@pytest.fixture(scope="module")
def same_period(tmp_path_factory: pytest.TempPathFactory) -> list[CandleFile]:
    """Real EURUSD hours and the same hours resampled to 4 h: two timeframes, one period."""
    d = tmp_path_factory.mktemp("period")
    write_slice(d / "EURUSD-1h.csv", "EURUSD", 0, 3000)
    hours = sample("EURUSD").to_frame()
    four = hours.resample("4h").agg({"open": "first", "high": "max", "low": "min",
                                     "close": "last", "volume": "sum"}).dropna()
    four.to_csv(d / "EURUSD-4h.csv")
    return candle_files([d])


def test_a_directory_gives_its_candle_files_sorted_with_names(pool_dir: Path) -> None:
    files = candle_files([pool_dir])
    assert [(f.path.name, f.symbol, f.timeframe) for f in files] == [
        ("EURUSD-1h.csv", "EURUSD", "1h"), ("GOOG-1d.csv", "GOOG", "1d")]


def test_flags_fill_in_and_must_not_contradict_names(pool_dir: Path, tmp_path: Path) -> None:
    plain = write_slice(tmp_path / "eurusd.csv", "EURUSD", 0, 300)
    [one] = candle_files([plain])  # one file, nothing known: allowed, as before pooling
    assert (one.symbol, one.timeframe) == ("", "")
    [one] = candle_files([plain], symbol="EURUSD", timeframe="1h")
    assert (one.symbol, one.timeframe) == ("EURUSD", "1h")
    with pytest.raises(CandleError, match=r"eurusd\.csv: no symbol and timeframe; name the file"):
        candle_files([plain, pool_dir / "GOOG-1d.csv"])
    with pytest.raises(CandleError, match="the name says timeframe '1d' but --timeframe says"):
        candle_files([pool_dir / "GOOG-1d.csv"], timeframe="1h")
    with pytest.raises(CandleError, match="both hold EURUSD 1h"):
        candle_files([pool_dir / "EURUSD-1h.csv", plain], symbol="EURUSD", timeframe="1h")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CandleError, match="no candle files"):
        candle_files([tmp_path / "empty"])
    with pytest.raises(ValueError, match="timeframe: '1x'"):
        candle_files([plain], timeframe="1x")


def test_a_timeframe_that_the_bars_contradict_is_refused(pool_dir: Path) -> None:
    with pytest.raises(CandleError, match="bars are typically 3600 s apart, but timeframe "
                                          "5m means 300 s"):
        load_candle_file(CandleFile(pool_dir / "EURUSD-1h.csv", "EURUSD", "5m"))


def test_pooled_dataset_is_each_file_labelled_then_merged_by_time(pool_dir: Path) -> None:
    files = candle_files([pool_dir])
    barrier = Barrier(horizon="2d")
    pooled = build_pooled_dataset(files, barrier=barrier, workers=1)
    parts = [build_dataset(load_candle_file(f), symbol=f.symbol, timeframe=f.timeframe,
                           barrier=barrier) for f in files]
    assert len(pooled) == sum(len(p) for p in parts)
    assert (np.diff(pooled.t0) >= np.timedelta64(0)).all()
    for p, f in zip(parts, files, strict=True):
        rows = (pooled.meta["symbol"] == f.symbol).to_numpy()
        assert (pooled.meta.loc[rows, "timeframe"] == f.timeframe).all()
        # the same rows, features and labels as the file alone: features stay symbol-agnostic
        np.testing.assert_array_equal(pooled.t0[rows], p.t0)
        np.testing.assert_array_equal(pooled.t1[rows], p.t1)
        np.testing.assert_array_equal(pooled.y[rows], p.y)
        pd.testing.assert_frame_equal(pooled.X[rows].reset_index(drop=True), p.X)
    assert list(pooled.X.columns) == list(parts[0].X.columns)  # no symbol/timeframe column
    # "2d" is 48 hourly bars and 2 daily ones: each file labelled on its own timeframe
    assert pooled.barrier["horizon_bars_by_timeframe"] == {"1d": 2, "1h": 48}
    assert pooled.barrier["horizon_bars"] is None and pooled.barrier["timeframe"] is None


def test_parallel_build_gives_the_same_dataset(pool_dir: Path) -> None:
    files = candle_files([pool_dir])
    serial = build_pooled_dataset(files, workers=1)
    parallel = build_pooled_dataset(files, workers=2)
    pd.testing.assert_frame_equal(serial.X, parallel.X)
    pd.testing.assert_frame_equal(serial.meta, parallel.meta)
    for name in ("y", "t0", "t1", "returns"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(parallel, name))
    assert serial.barrier == parallel.barrier


def test_datasets_labelled_with_other_barriers_are_not_pooled(pool_dir: Path) -> None:
    files = candle_files([pool_dir])
    a = build_dataset(load_candle_file(files[0]), barrier=Barrier(tp_atr=1.0), timeframe="1h")
    b = build_dataset(load_candle_file(files[1]), barrier=Barrier(tp_atr=3.0), timeframe="1d")
    with pytest.raises(ValueError, match="different barriers"):
        type(a).concat([a, b])


def test_a_row_of_symbol_a_overlapping_a_test_window_of_symbol_b_is_purged() -> None:
    start = np.datetime64("2024-01-01T00:00", "s").astype("datetime64[ns]")
    # symbol A: four short labels early on, and one (row 4) whose window runs into B's
    # test window; symbol B: the five test rows, 20..24 h.
    t0 = start + H * np.array([0, 2, 4, 6, 19, 20, 21, 22, 23, 24])
    t1 = t0 + H * np.array([1, 1, 1, 1, 2, 1, 1, 1, 1, 1])
    symbol = np.array(["A"] * 5 + ["B"] * 5)
    [(train, test)] = PurgedWalkForward(n_splits=1, min_train_fraction=0.5).split(t0, t1)
    assert set(symbol[test]) == {"B"}
    assert t1[4] > t0[test].min()  # A's label ends inside B's test window
    assert train.tolist() == [0, 1, 2, 3]  # row 4 (symbol A) is purged
    # Another symbol's rows are not exempt: a per-symbol purge would have kept row 4.


def test_purge_and_embargo_hold_across_series_on_real_pooled_data(
        same_period: list[CandleFile]) -> None:
    data = build_pooled_dataset(same_period, workers=1)
    embargo = resolve_embargo(data.t0, data.t1)
    assert embargo == (data.t1 - data.t0).max()  # the longest horizon of any series
    assert embargo > np.timedelta64(24, "h")  # ... the 4 h file's, applied to every row
    series = data.meta["timeframe"].to_numpy()
    mixed = 0
    for train, test in PurgedWalkForward(n_splits=5).split(data.t0, data.t1):
        # no training row of either symbol reaches the embargoed test window
        lo, hi = data.t0[test].min() - embargo, data.t1[test].max() + embargo
        assert not ((data.t0[train] <= hi) & (data.t1[train] >= lo)).any()
        mixed += set(series[test]) == {"1h", "4h"}
    assert mixed >= 2  # test windows that hold both series
