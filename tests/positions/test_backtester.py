"""The backtester: hand-computed trades on small paths, totals, and agreement with the
triple-barrier labels on real data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from backend.ml.labeling import STRATEGIES, triple_barrier
from backend.positions.backtester import BacktestConfig, run_backtest, run_policy
from backend.positions.params import FixedParams, PartialParams
from backend.positions.state import PositionError
from tests.utils.market_data import sample
from tests.utils.paths import HISTORY, with_history

SIGNAL = HISTORY - 1  # last flat bar: close 100, ATR(14) exactly 2 -> R = 2
FILLER = [(104.0, 105.0, 103.0, 104.0)] * 24  # so the 24-bar horizon fits in the data
POLICY_NAMES = ["fixed", "atr_trailing", "breakeven", "time_stop", "partial", "combined"]


def test_fixed_baseline_equals_a_hand_computation_with_costs():
    # bar 16 stays inside both barriers; bar 17 reaches 104.5: the long's target (104)
    # and the short's stop (102)
    candles = with_history([(100.0, 101.5, 99.0, 101.0), (101.0, 104.5, 100.5, 104.0),
                            *FILLER])
    config = BacktestConfig(fee_bps=1.0, slippage_bps=2.0, one_position=False)
    long_t, short_t = run_policy(candles, [(SIGNAL, "long"), (SIGNAL, "short")], "fixed",
                                 config=config)
    # long: buy 100 * (1 + 2bp) = 100.02, sell 104 * (1 - 2bp) = 103.9792, fees 1bp of each
    long_pnl = (103.9792 - 100.02) - 0.0001 * (100.02 + 103.9792)
    assert (long_t.exit_reason, long_t.exit_pos, long_t.exit_price) == ("take_profit", 17,
                                                                        104.0)
    assert long_t.r_multiple == pytest.approx(long_pnl / 2.0, abs=1e-12)
    assert long_t.return_pct == pytest.approx(long_pnl / 100.0, abs=1e-12)
    assert long_t.bars_held == 2 and long_t.mfe == 2.0
    # short: sell 100 * (1 - 2bp) = 99.98, buy back at the stop 102 * (1 + 2bp) = 102.0204
    short_pnl = -(102.0204 - 99.98) - 0.0001 * (99.98 + 102.0204)
    assert (short_t.exit_reason, short_t.exit_price) == ("stop_loss", 102.0)
    assert short_t.r_multiple == pytest.approx(short_pnl / 2.0, abs=1e-12)
    assert (short_t.initial_stop, short_t.target) == (102.0, 96.0)


def test_gap_through_the_stop_fills_at_the_open():
    candles = with_history([(97.0, 97.5, 96.5, 97.0), *FILLER])
    (trade,) = run_policy(candles, [(SIGNAL, "long")], "fixed")
    assert (trade.exit_price, trade.exit_reason) == (97.0, "stop_loss")
    assert trade.r_multiple == (97.0 - 100.0) / 2.0  # -1.5 R: worse than the stop


def test_bar_touching_stop_and_target_fills_at_the_stop():
    candles = with_history([(100.0, 104.5, 97.5, 103.0), *FILLER])
    (trade,) = run_policy(candles, [(SIGNAL, "long")], "fixed")
    assert (trade.exit_price, trade.exit_reason, trade.r_multiple) == (98.0, "stop_loss",
                                                                       -1.0)


def test_time_barrier_exits_at_the_close():
    candles = with_history([(100.0, 101.0, 99.5, 100.5)] * 3 + FILLER)
    (trade,) = run_policy(candles, [(SIGNAL, "long")], "fixed", FixedParams(max_bars=3))
    assert (trade.exit_pos, trade.exit_price, trade.exit_reason) == (18, 100.5, "time_stop")
    assert (trade.r_multiple, trade.bars_held) == (0.25, 3)


def test_partial_then_stop_weights_both_fills():
    # +1 R close on bar 16 takes half at 102; bar 17 falls through the stop (98)
    candles = with_history([(100.0, 102.5, 99.5, 102.0), (102.0, 102.5, 97.5, 98.0),
                            *FILLER])
    (trade,) = run_policy(candles, [(SIGNAL, "long")], "partial",
                          PartialParams(trigger_r=1.0, fraction=0.5))
    assert trade.partial_taken and trade.exit_reason == "stop_loss"
    assert trade.exit_price == 0.5 * 102.0 + 0.5 * 98.0
    assert trade.r_multiple == 0.5 * 1.0 + 0.5 * -1.0


def test_next_open_entry():
    candles = with_history([(100.5, 101.5, 99.5, 101.0), *FILLER])
    config = BacktestConfig(entry="next_open")
    (trade,) = run_policy(candles, [(SIGNAL, "long")], "fixed", config=config)
    assert (trade.entry_price, trade.initial_stop, trade.target) == (100.5, 98.5, 104.5)


def test_signals_without_a_full_horizon_or_atr_are_dropped():
    candles = with_history([(100.0, 101.0, 99.5, 100.5)] * 5)
    assert run_policy(candles, [(SIGNAL, "long")], "fixed") == []  # 24 bars don't fit
    assert run_policy(candles, [(3, "long")], "fixed", FixedParams(max_bars=3)) == []  # ATR


def test_totals_equal_the_sum_of_the_trades():
    candles = sample("EURUSD").head(1500)
    entries = STRATEGIES["ma_cross"](candles)
    results = run_backtest(candles, entries, {p: None for p in POLICY_NAMES},
                           BacktestConfig(fee_bps=0.2, slippage_bps=0.3))
    fixed = results["fixed"].summary
    assert list(results) == POLICY_NAMES
    for res in results.values():
        s, trades = res.summary, res.trades
        r = np.array([t.r_multiple for t in trades])
        assert s.trades == len(trades) > 10
        assert s.total_r == pytest.approx(r.sum(), abs=1e-9)
        assert s.total_return == pytest.approx(sum(t.return_pct for t in trades), abs=1e-12)
        assert s.expectancy_r == pytest.approx(r.mean(), abs=1e-12)
        assert s.wins == (r > 0).sum() and s.losses == (r < 0).sum()
        assert s.gross_loss_r == pytest.approx(r[r < 0].sum(), abs=1e-9)
        assert s.avg_loss_r == pytest.approx(r[r < 0].mean(), abs=1e-12)
        assert sum(s.exit_reasons.values()) == s.trades
        assert s.avg_loss_vs_baseline == pytest.approx(
            (r[r < 0].mean() / fixed.avg_loss_r - 1) * 100, abs=1e-9)
        curve = np.concatenate([[0.0], np.cumsum([t.r_multiple for t in sorted(
            trades, key=lambda t: t.exit_pos)])])
        assert s.max_drawdown_r == pytest.approx(
            max(curve[i] - curve[j] for i in range(len(curve))
                for j in range(i, len(curve))), abs=1e-9)
        # one position at a time: each trade starts at or after the previous exit
        for a, b in itertools.pairwise(trades):
            assert b.signal_pos >= a.exit_pos
    assert fixed.avg_loss_vs_baseline == 0.0


@pytest.mark.parametrize(("name", "stop"), [("EURUSD", 2500), ("GOOG", 2148)])
def test_fixed_policy_reproduces_the_triple_barrier_labels(name, stop):
    candles = sample(name).head(stop)
    for strategy, fn in STRATEGIES.items():
        signals = fn(candles)
        labels = triple_barrier(candles, signals)
        trades = run_policy(candles, signals, "fixed", config=BacktestConfig(
            one_position=False))
        assert len(trades) == len(labels) > 0, strategy
        reason = {"take_profit": "take_profit", "stop_loss": "stop_loss",
                  "time": "time_stop"}
        assert [t.signal_pos for t in trades] == labels["pos"].tolist()
        assert [t.exit_pos for t in trades] == labels["exit_pos"].tolist()
        assert [t.exit_price for t in trades] == labels["exit_price"].tolist()
        assert [t.exit_reason for t in trades] == [reason[r] for r in labels["exit_reason"]]
        np.testing.assert_allclose([t.return_pct for t in trades], labels["return"],
                                   rtol=0, atol=1e-15)
        assert [int(t.r_multiple > 0) for t in trades] == labels["label"].tolist()


def test_bad_config_and_entries_name_the_field():
    with pytest.raises(PositionError) as err:
        BacktestConfig(fee_bps=-1)
    assert err.value.field == "fee_bps"
    with pytest.raises(PositionError) as err:
        BacktestConfig(entry="tomorrow")  # type: ignore[arg-type]
    assert err.value.field == "entry"
    candles = with_history(FILLER)
    with pytest.raises(PositionError) as err:
        run_policy(candles, [(SIGNAL, "up")], "fixed")
    assert err.value.field == "entries.side"
