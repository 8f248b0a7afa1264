"""Triple-barrier labels on hand-made price paths, base strategies on real data, datasets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from backend.db.trade_features import TradeFeatureRow
from backend.ml.dataset import Dataset, build_dataset, dataset_from_outcomes
from backend.ml.feature_extractor import FEATURE_SET_VERSION, FeatureExtractor
from backend.ml.labeling import (
    STRATEGIES,
    breakout,
    labels_from_outcomes,
    ma_cross,
    rsi_reversion,
    triple_barrier,
)
from tests.utils.market_data import flat_bars, from_bars, perturb_after, sample

# 20 flat bars (close 100, range 99..101) make ATR(14) exactly 2 at the signal bar t = 19, so
# a long has stop 100 - 1*2 = 98 and target 100 + 2*2 = 104; a short has stop 102, target 96.
T = 19
QUIET = (100.0, 100.5, 99.5, 100.0)  # touches neither barrier


def _label(after: list[tuple[float, float, float, float]], side: int = 1,
           max_bars: int = 5) -> pd.Series:
    bars = flat_bars(T + 1) + after + [QUIET] * (max_bars - len(after))
    signals = pd.DataFrame({"pos": [T], "side": [side]})
    out = triple_barrier(from_bars(bars), signals, tp_atr=2.0, sl_atr=1.0, max_bars=max_bars)
    assert len(out) == 1
    return out.iloc[0]


def _mirror(bars: list[tuple[float, float, float, float]]) -> list[tuple[float, ...]]:
    """Reflect prices around 100: a rise becomes a fall (high and low swap roles)."""
    return [(200 - o, 200 - lo, 200 - h, 200 - c) for o, h, lo, c in bars]


def test_barriers_sit_at_atr_multiples() -> None:
    row = _label([])
    assert (row["entry_price"], row["stop_price"], row["target_price"]) == (100.0, 98.0, 104.0)
    short = _label([], side=-1)
    assert (short["stop_price"], short["target_price"]) == (102.0, 96.0)


def test_take_profit_is_label_one() -> None:
    row = _label([QUIET, (100.5, 104.5, 100.0, 104.2)])
    assert (row["exit_reason"], row["exit_pos"], row["exit_price"]) == ("take_profit", T + 2,
                                                                        104.0)
    assert row["return"] == pytest.approx(0.04)
    assert row["label"] == 1


def test_stop_loss_is_label_zero() -> None:
    row = _label([(100.0, 100.5, 97.5, 98.5)])
    assert (row["exit_reason"], row["exit_pos"], row["exit_price"]) == ("stop_loss", T + 1, 98.0)
    assert row["return"] == pytest.approx(-0.02)
    assert row["label"] == 0


def test_bar_touching_both_barriers_is_a_stop() -> None:
    row = _label([(100.0, 105.0, 97.0, 104.5)])
    assert (row["exit_reason"], row["exit_price"], row["label"]) == ("stop_loss", 98.0, 0)


def test_gap_through_the_stop_exits_at_the_open() -> None:
    row = _label([QUIET, (96.0, 97.0, 95.0, 96.5)])
    assert (row["exit_reason"], row["exit_pos"], row["exit_price"]) == ("stop_loss", T + 2, 96.0)
    assert row["return"] == pytest.approx(-0.04)


def test_gap_through_the_target_exits_at_the_open() -> None:
    row = _label([(106.0, 107.0, 97.0, 98.0)])  # the open came first, beyond the target
    assert (row["exit_reason"], row["exit_price"], row["label"]) == ("take_profit", 106.0, 1)
    assert row["return"] == pytest.approx(0.06)


@pytest.mark.parametrize(("last_close", "label"), [(100.7, 1), (99.3, 0), (100.0, 0)])
def test_time_barrier_labels_by_the_sign_of_the_return(last_close: float, label: int) -> None:
    last = (100.0, 101.0, 99.0, last_close)
    row = _label([QUIET, QUIET, QUIET, QUIET, last], max_bars=5)
    assert (row["exit_reason"], row["exit_pos"], row["exit_price"]) == ("time", T + 5,
                                                                        last_close)
    assert row["return"] == pytest.approx((last_close - 100) / 100)
    assert row["label"] == label


@pytest.mark.parametrize("path", [
    [QUIET, (100.5, 104.5, 100.0, 104.2)],
    [(100.0, 100.5, 97.5, 98.5)],
    [(100.0, 105.0, 97.0, 104.5)],
    [QUIET, (96.0, 97.0, 95.0, 96.5)],
    [(106.0, 107.0, 97.0, 98.0)],
    [QUIET, QUIET, QUIET, QUIET, (100.0, 101.0, 99.0, 100.7)],
])
def test_short_is_the_mirror_of_long(path: list[tuple[float, float, float, float]]) -> None:
    long = _label(path, side=1)
    short = _label(_mirror(path), side=-1)
    for key in ("exit_reason", "exit_pos", "label"):
        assert short[key] == long[key]
    assert short["return"] == pytest.approx(long["return"])
    assert short["exit_price"] == pytest.approx(200 - long["exit_price"])


def test_signals_without_a_full_label_window_are_dropped() -> None:
    c = from_bars(flat_bars(60))
    signals = pd.DataFrame({"pos": [5, 20, 60 - 24 - 1, 60 - 24], "side": [1, -1, 1, 1],
                            "strategy": "x"}, index=[10, 11, 12, 13])
    out = triple_barrier(c, signals, max_bars=24)
    # pos 5: ATR(14) undefined yet; pos 36: its window ends past the last bar (59)
    assert out.index.tolist() == [11, 12]
    assert out["exit_time"].iloc[1] == pd.Timestamp(int(c.time[59]), unit="s", tz="UTC")
    assert (out["exit_reason"] == "time").all()


def test_bad_barrier_parameters_are_refused() -> None:
    c = from_bars(flat_bars(40))
    signals = pd.DataFrame({"pos": [20], "side": [1]})
    for kwargs, field in (({"tp_atr": 0}, "tp_atr"), ({"sl_atr": -1}, "sl_atr"),
                          ({"max_bars": 0}, "max_bars")):
        with pytest.raises(ValueError, match=field):
            triple_barrier(c, signals, **kwargs)
    with pytest.raises(ValueError, match="side"):
        triple_barrier(c, pd.DataFrame({"pos": [20], "side": ["up"]}))


def test_breakout_fires_on_the_first_close_beyond_the_prior_channel() -> None:
    bars = [*flat_bars(20),
            (100.0, 101.5, 99.5, 101.2),  # above the prior high 101: long
            (101.2, 102.0, 101.0, 101.8),  # still above: not a new signal
            (100.0, 100.2, 98.0, 98.5)]  # below the prior low 99: short
    out = breakout(from_bars(bars), lookback=5, atr_period=5)
    assert out["pos"].tolist() == [20, 22]
    assert out["side"].tolist() == [1, -1]
    assert (out["strategy"] == "breakout").all()
    assert ((out["signal_strength"] > 0) & (out["signal_strength"] <= 1)).all()


def test_ma_cross_fires_on_the_cross_bar() -> None:
    # SMA2 - SMA4 is 0 on the flat bars and 10.5 - 10.25 > 0 at the last bar: an up-cross
    bars = [*flat_bars(10, price=10.0, half_range=0.5), (10.0, 11.0, 10.0, 11.0)]
    out = ma_cross(from_bars(bars), fast=2, slow=4, atr_period=3)
    assert out["pos"].tolist() == [10] and out["side"].tolist() == [1]
    with pytest.raises(ValueError, match="fast"):
        ma_cross(from_bars(bars), fast=5, slow=4)


@pytest.mark.parametrize("name", ["EURUSD", "GOOG"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_strategies_do_not_look_ahead(name: str, strategy: str) -> None:
    c = sample(name)
    fn = STRATEGIES[strategy]
    base = fn(c)
    assert list(base.columns) == ["pos", "time", "side", "strategy", "signal_strength"]
    assert len(base) > 20 and set(base["side"]) == {1, -1}
    assert base["signal_strength"].between(0, 1).all()
    for i, t in enumerate(np.random.default_rng(3).integers(100, len(c) - 1, 10)):
        changed = fn(perturb_after(c, t, seed=i))
        before = base[base["pos"] <= t].reset_index(drop=True)
        pd.testing.assert_frame_equal(changed[changed["pos"] <= t].reset_index(drop=True),
                                      before, check_exact=True)


def test_rsi_reversion_signals_are_crosses_back_inside_the_band() -> None:
    import talib

    c = sample("EURUSD")
    rsi = talib.RSI(c.close, 14)
    out = rsi_reversion(c)
    for pos, side in zip(out["pos"], out["side"], strict=True):
        if side == 1:
            assert rsi[pos - 1] < 30 <= rsi[pos]
        else:
            assert rsi[pos - 1] > 70 >= rsi[pos]


def test_build_dataset_on_real_candles() -> None:
    c = sample("GOOG")
    extractor = FeatureExtractor()
    data = build_dataset(c, extractor=extractor, symbol="GOOG", timeframe="1d")
    assert len(data) > 200
    assert list(data.X.columns) == extractor.feature_names
    assert (np.diff(data.t0.astype(np.int64)) >= 0).all()
    assert (data.t1 > data.t0).all()
    assert (data.meta["pos"] >= extractor.window - 1).all()  # no warm-up rows
    np.testing.assert_array_equal(data.y, (data.returns > 0).astype(int))
    assert not data.X[extractor.market_feature_names].isna().any().any()
    assert set(data.meta["strategy"]) == set(STRATEGIES)
    # the rows are the features of the signal bar: compare one with the serving path
    k = len(data) // 2
    pos = int(data.meta["pos"].iloc[k])
    np.testing.assert_allclose(data.X.iloc[k, :len(extractor.market_feature_names)],
                               extractor.market_row(c.head(pos + 1)), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="strategies"):
        build_dataset(c, strategies=["nope"])


def _outcome(i: int, **changes: object) -> TradeFeatureRow:
    signal = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    row = TradeFeatureRow(
        trade_id=f"t{i}", symbol="EURUSD", timeframe="1h", side="long" if i % 2 else "short",
        strategy="ma_cross", signal_time=signal, feature_set_version=FEATURE_SET_VERSION,
        features={"ret_1": 0.001 * i, "rsi_14": None}, label=i % 2,
        realized_return=0.01 if i % 2 else -0.01, realized_pnl=None,
        closed_at=signal + timedelta(hours=3))
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def test_labels_from_outcomes() -> None:
    rows = [_outcome(i) for i in range(5)]
    rows += [_outcome(5, label=None, closed_at=None), _outcome(6, feature_set_version="fs0")]
    X, y, t0, t1 = labels_from_outcomes(rows)
    assert list(X.columns) == FeatureExtractor().feature_names
    assert X.shape == (5, len(X.columns))
    np.testing.assert_allclose(X["ret_1"], [0.0, 0.001, 0.002, 0.003, 0.004])
    assert X["rsi_14"].isna().all() and X["dir_rsi"].isna().all()  # None / missing -> NaN
    np.testing.assert_array_equal(y, [0, 1, 0, 1, 0])
    assert t0[0] == np.datetime64("2024-01-01T00:00:00", "ns")
    assert ((t1 - t0) == np.timedelta64(3, "h")).all()


def test_dataset_concat_combines_bootstrap_and_outcomes() -> None:
    boot = build_dataset(sample("GOOG").head(600), strategies=["breakout"])
    real = dataset_from_outcomes([_outcome(i) for i in range(4)])
    assert real.meta["source"].tolist() == ["outcome"] * 4
    assert real.meta["side"].tolist() == [-1, 1, -1, 1]
    both = Dataset.concat([real, boot])
    assert len(both) == len(boot) + 4
    assert (np.diff(both.t0.astype(np.int64)) >= 0).all()
    assert both.meta["source"].iloc[-1] == "outcome"  # 2024 comes after the GOOG history
    with pytest.raises(ValueError, match="columns"):
        Dataset.concat([boot, Dataset(boot.X.iloc[:, :3], boot.y, boot.t0, boot.t1,
                                      boot.returns, boot.meta)])
