"""Compiled market features (native/fs1_market.c) == the Python reference, on real EURUSD
(hourly) and GOOG (daily) candles and on edge cases; the fallback to Python never raises."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from backend.ml import market_features as mf
from backend.ml import native_features
from backend.ml.candles import CandleError, Candles, make_candles
from backend.ml.feature_extractor import FeatureExtractor, use_native_features
from backend.ml.market_features import MARKET_FEATURES, MIN_CANDLES
from tests.utils.market_data import sample

SAMPLES = ("EURUSD", "GOOG")
N_WINDOWS = 500


@pytest.fixture(scope="module")
def native() -> native_features.NativeMarket:
    lib = native_features.load(mf._market_values_py, min_candles=MIN_CANDLES)
    assert lib is not None, "the compiled market features did not build or verify"
    return lib


@pytest.fixture
def python_path() -> Iterator[None]:
    """The Python reference for the duration of a test, then the compiled path again."""
    assert not use_native_features(False)
    yield
    assert use_native_features(True)


def _arrays(c: Candles) -> tuple[np.ndarray, ...]:
    return (c.time, c.open, c.high, c.low, c.close, c.volume)


def _compiled_rows(native: native_features.NativeMarket, c: Candles, first: int, last: int,
                   window: int) -> np.ndarray:
    out = np.full((last - first, len(MARKET_FEATURES)), -999.0)
    assert native.rows(*_arrays(c), first, last, window, out) == 0
    return out


def _reference_rows(c: Candles, first: int, last: int, window: int) -> np.ndarray:
    out = np.empty((last - first, len(MARKET_FEATURES)))
    mf._market_rows_py(c, first, last, window, out)
    return out


def _assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    """Within 1e-9 relative (absolute below 1), NaN exactly where the reference has NaN."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", SAMPLES)
def test_compiled_equals_reference_on_every_window(
        name: str, native: native_features.NativeMarket) -> None:
    c = sample(name)
    first = len(c) - N_WINDOWS
    window = FeatureExtractor().window
    got = _compiled_rows(native, c, first, len(c), window)
    _assert_same(got, _reference_rows(c, first, len(c), window))
    assert np.isfinite(got).all()
    # the short windows at the start of the series too (MIN_CANDLES..window candles)
    _assert_same(_compiled_rows(native, c, MIN_CANDLES - 1, window + 5, window),
                 _reference_rows(c, MIN_CANDLES - 1, window + 5, window))


def test_edge_cases_match_the_reference(native: native_features.NativeMarket) -> None:
    c = sample("EURUSD").head(160)
    n = len(c)
    price = float(c.close[-31])
    # the last 30 bars open = high = low = close (a halted market), without volume
    ohlc = [np.r_[a[:-30], np.full(30, price)] for a in (c.open, c.high, c.low, c.close)]
    halted = make_candles(c.time, *ohlc, np.r_[c.volume[:-30], np.zeros(30)])
    # every bar identical: zero ATR, so every ATR ratio is NaN
    constant = make_candles(c.time, *([np.full(n, price)] * 4), c.volume)
    no_volume = make_candles(c.time, c.open, c.high, c.low, c.close, np.zeros(n))
    for candles in (halted, constant, no_volume):
        _assert_same(_compiled_rows(native, candles, MIN_CANDLES - 1, n, 100),
                     _reference_rows(candles, MIN_CANDLES - 1, n, 100))
    row = dict(zip(MARKET_FEATURES, _compiled_rows(native, halted, n - 1, n, 100)[0],
                   strict=True))
    assert (row["body_frac"], row["upper_wick_frac"], row["lower_wick_frac"]) == (0, 0, 0)
    assert (row["mfi_14"], row["volume_ratio"], row["bb_pctb"]) == (50.0, 1.0, 0.5)
    row = dict(zip(MARKET_FEATURES, _compiled_rows(native, constant, n - 1, n, 100)[0],
                   strict=True))
    assert row["atr_pct"] == 0 and np.isnan(row["range_atr"]) and np.isnan(row["dist_ema_20"])
    row = dict(zip(MARKET_FEATURES, _compiled_rows(native, no_volume, n - 1, n, 100)[0],
                   strict=True))
    assert (row["mfi_14"], row["volume_ratio"]) == (50.0, 1.0)


def test_window_lengths(native: native_features.NativeMarket) -> None:
    c = sample("GOOG")
    # exactly MIN_CANDLES candles
    head = c.head(MIN_CANDLES)
    got = _compiled_rows(native, head, MIN_CANDLES - 1, MIN_CANDLES, 100)
    _assert_same(got, _reference_rows(head, MIN_CANDLES - 1, MIN_CANDLES, 100))
    assert np.isfinite(got).all()
    # more candles than the window: only the last `window` count
    tail = c.tail(300)
    np.testing.assert_array_equal(_compiled_rows(native, tail, 299, 300, 100),
                                  _compiled_rows(native, c.tail(100), 99, 100, 100))
    # windows longer than the C stack buffers (heap path)
    _assert_same(_compiled_rows(native, c, len(c) - 20, len(c), 700),
                 _reference_rows(c, len(c) - 20, len(c), 700))


def test_bad_calls_return_codes(native: native_features.NativeMarket) -> None:
    c = sample("EURUSD").head(120)
    out = np.empty(len(MARKET_FEATURES))
    assert native.rows(*_arrays(c), 10, 11, 100, out) == native_features.TOO_FEW_CANDLES
    assert native.rows(*_arrays(c), 118, 120, 100, out) == native_features.BAD_ARRAYS  # size
    assert native.rows(*_arrays(c), 119, 121, 100, np.empty((2, 36))) == \
        native_features.BAD_ARRAYS  # past the end
    assert native.rows(c.time.astype(np.int32), *_arrays(c)[1:], 119, 120, 100, out) == \
        native_features.BAD_ARRAYS
    strided = np.repeat(c.close, 2)[::2]
    assert native.rows(c.time, c.open, c.high, c.low, strided, c.volume, 119, 120, 100,
                       out) == native_features.BAD_ARRAYS
    assert native.rows(c.time, c.open, c.high, c.low, list(c.close), c.volume, 119, 120, 100,
                       out) == native_features.BAD_ARRAYS


def test_unusual_arrays_take_the_compiled_path_after_a_copy(
        native: native_features.NativeMarket) -> None:
    """int32 times or strided columns are copied once, not computed differently."""
    c = sample("EURUSD").head(400)
    block = np.column_stack((c.open, c.high, c.low, c.close, c.volume))  # strided columns
    odd = Candles(c.time.astype(np.int32), *block.T)
    assert not odd.close.flags.c_contiguous
    extractor = FeatureExtractor()
    np.testing.assert_array_equal(extractor.market_row(odd), extractor.market_row(c))
    np.testing.assert_array_equal(extractor.transform(odd).to_numpy(),
                                  extractor.transform(c).to_numpy())


def test_forcing_python_gives_the_same_vectors(native: native_features.NativeMarket,
                                               python_path: None) -> None:
    assert mf._native is None
    extractor = FeatureExtractor()
    c = sample("GOOG").head(600)
    kwargs = {"side": "short", "strategy": "breakout", "signal_strength": 0.7,
              "stop_price": float(c.close[-1]) * 1.02, "target_price": float(c.close[-1]) * 0.9}
    python_vector = extractor.signal_vector(c, **kwargs)
    python_market = extractor.transform(c).to_numpy()
    with pytest.raises(CandleError, match=f"need at least {MIN_CANDLES} candles") as python_err:
        extractor.market_row(c.head(MIN_CANDLES - 1))
    assert use_native_features(True)
    _assert_same(extractor.signal_vector(c, **kwargs), python_vector)
    _assert_same(extractor.transform(c).to_numpy(), python_market)
    with pytest.raises(CandleError) as compiled_err:
        extractor.market_row(c.head(MIN_CANDLES - 1))
    assert (compiled_err.value.field, compiled_err.value.reason) == (
        python_err.value.field, python_err.value.reason)


def test_broken_build_falls_back_with_a_warning(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="backend.ml.native_features"):
        lib = native_features.load(mf._market_values_py, min_candles=MIN_CANDLES,
                                   cache_dir=tmp_path, compiler=str(tmp_path / "no-such-cc"))
    assert lib is None
    assert "using the Python path" in caplog.text and "no-such-cc" in caplog.text
    try:
        assert not use_native_features(cache_dir=tmp_path, compiler=str(tmp_path / "no-cc"))
        row = FeatureExtractor().market_row(sample("EURUSD").tail(100))
        assert np.isfinite(row).all()
    finally:
        assert use_native_features(True)


def test_a_mismatch_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    def off_by_a_little(*arrays: np.ndarray) -> np.ndarray:
        row = mf._market_values_py(*arrays)
        row[MARKET_FEATURES.index("rsi_14")] += 1e-6
        return row

    with caplog.at_level(logging.WARNING, logger="backend.ml.native_features"):
        assert native_features.load(off_by_a_little, min_candles=MIN_CANDLES) is None
    assert "differs from the Python reference" in caplog.text
    with caplog.at_level(logging.WARNING, logger="backend.ml.native_features"):
        assert native_features.load(mf._market_values_py, min_candles=MIN_CANDLES + 1) is None


def test_library_is_cached_by_content(native: native_features.NativeMarket) -> None:
    lib_dir = native.path.parent
    assert len(lib_dir.name) == 64 and native.path.exists()
    assert native_features.build() == native.path  # found in the cache, not rebuilt
    assert native_features.talib_library().name.startswith("libta-lib")


def test_concurrent_calls_agree(native: native_features.NativeMarket) -> None:
    c = sample("EURUSD")
    extractor = FeatureExtractor()
    ends = range(len(c) - 400, len(c))
    serial = [extractor.market_row(c.head(t)) for t in ends]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda t: extractor.market_row(c.head(t)), ends))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
