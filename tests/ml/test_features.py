"""Feature extractor on real EURUSD (hourly) and GOOG (daily) candles: no lookahead, the batch
and single-signal paths agree, warm-up is explicit, definitions checked by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from backend.ml.candles import CandleError, make_candles
from backend.ml.feature_extractor import (
    FEATURE_DEFINITIONS,
    FEATURE_SET_VERSION,
    FeatureExtractor,
)
from backend.ml.labeling import STRATEGIES
from backend.ml.market_features import MARKET_FEATURES
from backend.ml.signal_context import CONTEXT_FEATURES, KNOWN_STRATEGIES, SignalError
from tests.utils.market_data import perturb_after, sample, window

SAMPLES = ("EURUSD", "GOOG")


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor()


@pytest.fixture(scope="module")
def market(extractor: FeatureExtractor) -> dict[str, pd.DataFrame]:
    return {name: extractor.transform(sample(name)) for name in SAMPLES}


def _random_signals(rng: np.random.Generator, positions: np.ndarray, close: np.ndarray
                    ) -> pd.DataFrame:
    """Signals with every kind of context: both sides, known/unknown strategies, missing
    strength/stop/target, stops on either side of the close."""
    n = len(positions)
    side = rng.choice(["long", "short"], n)
    sign = np.where(side == "long", 1.0, -1.0)
    px = close[positions]
    stop = px * (1 - sign * rng.uniform(-0.002, 0.02, n))
    target = px * (1 + sign * rng.uniform(0.001, 0.04, n))
    strength = rng.uniform(0, 1, n)
    missing = rng.uniform(size=(3, n)) < 0.25
    return pd.DataFrame({
        "pos": positions,
        "side": side,
        "strategy": rng.choice([*KNOWN_STRATEGIES, "my_own", "MA_CROSS"], n),
        "signal_strength": np.where(missing[0], np.nan, strength),
        "stop_price": np.where(missing[1], np.nan, stop),
        "target_price": np.where(missing[2], np.nan, target),
    })


def _optional(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def test_feature_catalogue(extractor: FeatureExtractor) -> None:
    assert FEATURE_SET_VERSION == "fs1"
    assert len(MARKET_FEATURES) >= 25
    assert extractor.feature_names == [*MARKET_FEATURES, *CONTEXT_FEATURES]
    assert list(FEATURE_DEFINITIONS) == extractor.feature_names
    assert all(text.strip() for text in FEATURE_DEFINITIONS.values())
    assert len(set(extractor.feature_names)) == len(extractor.feature_names)
    # the one-hot strategy columns cover exactly the base strategies of labeling (+ other)
    assert tuple(STRATEGIES) == KNOWN_STRATEGIES
    assert extractor.min_candles <= extractor.window


@pytest.mark.parametrize("name", SAMPLES)
def test_batch_and_single_signal_paths_agree(name: str, extractor: FeatureExtractor,
                                             market: dict[str, pd.DataFrame]) -> None:
    c = sample(name)
    rng = np.random.default_rng(7)
    w = extractor.window
    # the first full rows, rows with a short window (< window candles), and random ones
    positions = np.unique(np.concatenate((
        [extractor.min_candles - 1, w - 2, w - 1, w, len(c) - 1],
        rng.integers(extractor.min_candles - 1, len(c), 60))))
    signals = _random_signals(rng, positions, c.close)
    batch = extractor.signal_matrix(market[name], c, signals)
    assert list(batch.columns) == extractor.feature_names
    for row, t in enumerate(positions):
        head = c.head(t + 1)
        np.testing.assert_allclose(extractor.market_row(head), market[name].iloc[t].to_numpy(),
                                   rtol=0, atol=1e-9)
        s = signals.iloc[row]
        single = extractor.signal_vector(
            head, side=s["side"], strategy=s["strategy"],
            signal_strength=_optional(s["signal_strength"]),
            stop_price=_optional(s["stop_price"]), target_price=_optional(s["target_price"]))
        assert single.dtype == np.float64 and single.shape == (len(extractor.feature_names),)
        np.testing.assert_allclose(single, batch.iloc[row].to_numpy(), rtol=0, atol=1e-9)
    # the market rows are full of numbers (no warm-up NaN at these positions)
    assert not batch[list(MARKET_FEATURES)].isna().any().any()


@pytest.mark.parametrize("name", SAMPLES)
def test_no_lookahead(name: str, extractor: FeatureExtractor) -> None:
    """Changing every candle after t changes no feature at or before t (exact equality)."""
    c = sample(name)
    rng = np.random.default_rng(11)
    for i, t in enumerate(rng.integers(300, len(c) - 30, 30)):
        # a 300-bar slice ending 30 bars after t keeps the loop quick
        start = t - 270
        original = window(c, start, t + 31)
        changed = perturb_after(original, t - start, seed=i)
        assert not np.array_equal(original.close[t - start + 1:], changed.close[t - start + 1:])
        a = extractor.transform(original)
        b = extractor.transform(changed)
        local = t - start
        pd.testing.assert_frame_equal(a.iloc[:local + 1], b.iloc[:local + 1], check_exact=True)
        assert not a.iloc[local + 1:].equals(b.iloc[local + 1:])  # the change is visible later
        signals = pd.DataFrame({"pos": [local - 5, local], "side": ["long", "short"],
                                "strategy": ["breakout", "ma_cross"],
                                "stop_price": [original.close[local] * 0.99] * 2})
        pd.testing.assert_frame_equal(extractor.signal_matrix(a, original, signals),
                                      extractor.signal_matrix(b, changed, signals),
                                      check_exact=True)


def test_warm_up_rows_are_nan(extractor: FeatureExtractor,
                              market: dict[str, pd.DataFrame]) -> None:
    for name in SAMPLES:
        frame = market[name]
        c = sample(name)
        assert len(frame) == len(c)
        assert frame.index[0] == pd.Timestamp(int(c.time[0]), unit="s", tz="UTC")
        warm = extractor.min_candles - 1
        assert frame.iloc[:warm].isna().all().all()
        assert not frame.iloc[warm:].isna().any().any()


def test_market_row_refuses_too_few_candles(extractor: FeatureExtractor) -> None:
    c = sample("EURUSD")
    need = extractor.min_candles
    with pytest.raises(CandleError) as err:
        extractor.market_row(c.head(need - 1))
    assert err.value.field == "candles"
    assert f"need at least {need} candles" in err.value.reason
    with pytest.raises(CandleError):
        extractor.signal_vector(c.head(10), side="long", strategy="ma_cross")
    # exactly min_candles is enough, and every market feature is defined
    assert np.isfinite(extractor.market_row(c.head(need))).all()


def test_window_smaller_than_warm_up_is_refused() -> None:
    small = FeatureExtractor(window=10)
    assert small.window == 10  # __init__ only stores
    with pytest.raises(ValueError, match="window"):
        small.transform(sample("GOOG").head(200))


def test_market_features_by_hand(extractor: FeatureExtractor,
                                 market: dict[str, pd.DataFrame]) -> None:
    c = sample("EURUSD")
    for t in (120, 2345, 4999):
        row = market["EURUSD"].iloc[t]
        close = c.close[t]
        for k in (1, 3, 6, 12, 24):
            assert row[f"ret_{k}"] == pytest.approx(math.log(close / c.close[t - k]), abs=1e-12)
        log_returns = np.diff(np.log(c.close[t - 10:t + 1]))
        assert row["vol_10"] == pytest.approx(np.std(log_returns), rel=1e-9)
        atr = row["atr_pct"] * close
        assert row["range_atr"] == pytest.approx((c.high[t] - c.low[t]) / atr, rel=1e-9)
        assert row["dist_sma_20"] == pytest.approx((close - c.close[t - 19:t + 1].mean()) / atr,
                                                   rel=1e-9)
        assert row["volume_ratio"] == pytest.approx(c.volume[t] / c.volume[t - 19:t + 1].mean(),
                                                    rel=1e-12)
        rng = c.high[t] - c.low[t]
        assert row["body_frac"] == pytest.approx((close - c.open[t]) / rng, rel=1e-12)
        assert row["upper_wick_frac"] == pytest.approx(
            (c.high[t] - max(c.open[t], close)) / rng, abs=1e-12)
        assert row["body_frac"] ** 2 <= 1
        assert row["di_diff"] == pytest.approx(row["plus_di_14"] - row["minus_di_14"])
        assert 0 <= row["rsi_14"] <= 100 and 0 <= row["adx_14"] <= 100
        assert abs(row["upper_wick_frac"] + row["lower_wick_frac"] + abs(row["body_frac"])
                   - 1) < 1e-12
        stamp = datetime.fromtimestamp(int(c.time[t]), UTC)
        hour = stamp.hour + stamp.minute / 60
        assert row["hour_sin"] == pytest.approx(math.sin(2 * math.pi * hour / 24), abs=1e-12)
        assert row["dow_cos"] == pytest.approx(math.cos(2 * math.pi * stamp.weekday() / 7),
                                               abs=1e-12)


def test_context_features_by_hand(extractor: FeatureExtractor) -> None:
    c = sample("GOOG").head(400)
    market = extractor.market_row(c)
    m = dict(zip(MARKET_FEATURES, market, strict=True))
    close = c.close[-1]
    atr = m["atr_pct"] * close
    stop, target = close - 1.5 * atr, close + 3.0 * atr
    long = dict(zip(extractor.feature_names, extractor.signal_vector(
        c, side="long", strategy="rsi_reversion", signal_strength=0.4, stop_price=stop,
        target_price=target), strict=True))
    assert long["side"] == 1
    assert long["stop_dist_atr"] == pytest.approx(1.5, rel=1e-9)
    assert long["target_dist_atr"] == pytest.approx(3.0, rel=1e-9)
    assert long["reward_risk"] == pytest.approx(2.0, rel=1e-9)
    assert long["signal_strength"] == 0.4
    assert (long["strategy_rsi_reversion"], long["strategy_ma_cross"],
            long["strategy_other"]) == (1, 0, 0)
    assert long["dir_rsi"] == pytest.approx(m["rsi_14"] - 50)
    assert long["dir_bb_pctb"] == pytest.approx(m["bb_pctb"] - 0.5)
    short = dict(zip(extractor.feature_names, extractor.signal_vector(
        c, side="short", strategy="something else"), strict=True))
    assert short["side"] == -1 and short["strategy_other"] == 1
    for name in ("signal_strength", "stop_dist_atr", "target_dist_atr", "reward_risk"):
        assert math.isnan(short[name])
    # directional features flip with the side; market features do not
    for name in CONTEXT_FEATURES:
        if name.startswith("dir_"):
            assert short[name] == -long[name]
    for name in MARKET_FEATURES:
        assert short[name] == long[name]
    # a stop on the wrong side gives a negative distance and no reward/risk
    wrong = dict(zip(extractor.feature_names, extractor.signal_vector(
        c, side=-1, strategy="breakout", stop_price=close - atr, target_price=close - 2 * atr),
        strict=True))
    assert wrong["stop_dist_atr"] == pytest.approx(-1.0)
    assert math.isnan(wrong["reward_risk"])


def test_bad_signal_context_is_refused(extractor: FeatureExtractor) -> None:
    c = sample("GOOG").head(120)
    with pytest.raises(SignalError) as err:
        extractor.signal_vector(c, side="up", strategy="ma_cross")
    assert err.value.field == "side"
    with pytest.raises(SignalError) as err:
        extractor.signal_vector(c, side="long", strategy="ma_cross", stop_price=-3.0)
    assert err.value.field == "stop_price"
    with pytest.raises(SignalError) as err:
        extractor.signal_vector(c, side="long", strategy="ma_cross",
                                target_price=float("inf"))
    assert err.value.field == "target_price"
    market = extractor.transform(c)
    with pytest.raises(SignalError) as err:
        extractor.signal_matrix(market, c, pd.DataFrame({"pos": [500], "side": [1],
                                                         "strategy": ["x"]}))
    assert err.value.field == "signals.pos"


def test_zero_volume_and_flat_bars_give_neutral_values(extractor: FeatureExtractor) -> None:
    """FX feeds often carry no volume; a halted market has bars with no range."""
    c = sample("EURUSD").head(150)
    no_volume = make_candles(c.time, c.open, c.high, c.low, c.close, np.zeros(len(c)))
    row = dict(zip(MARKET_FEATURES, extractor.market_row(no_volume), strict=True))
    assert row["volume_ratio"] == 1.0
    assert row["mfi_14"] == 50.0
    assert all(np.isfinite(list(row.values())))
    last = c.close[-1]  # the last bar becomes open = high = low = close
    doji = make_candles(c.time, np.r_[c.open[:-1], last], np.r_[c.high[:-1], last],
                        np.r_[c.low[:-1], last], c.close, c.volume)
    row = dict(zip(MARKET_FEATURES, extractor.market_row(doji), strict=True))
    assert (row["body_frac"], row["upper_wick_frac"], row["lower_wick_frac"]) == (0, 0, 0)


def test_stored_feature_dicts_round_trip(extractor: FeatureExtractor) -> None:
    c = sample("EURUSD").head(300)
    vector = extractor.signal_vector(c, side="short", strategy="breakout")
    stored = extractor.as_dict(vector)
    assert stored["signal_strength"] is None  # NaN -> None: JSON has no NaN
    del stored["dir_rsi"]  # a key missing in an old row -> NaN
    frame = extractor.rows_from_mappings([stored])
    expected = vector.copy()
    expected[extractor.feature_names.index("dir_rsi")] = np.nan
    np.testing.assert_array_equal(frame.to_numpy()[0], expected)
    assert list(frame.columns) == extractor.feature_names
