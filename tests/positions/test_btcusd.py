"""Issue 12 item 18: the backtest CLI on the shipped BTCUSD sample (monthly candles whose
ATR is up to 2/3 of the price), errors that name their row, and what --chart says."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import talib

from backend.ml.candles import load_candles_file, sample_candles_path
from backend.positions.backtester import BacktestConfig, run_policy, simulate_trade
from backend.positions.cli import BACKTESTABLE, main
from backend.positions.state import PositionError
from backend.positions.tuning import market, walk_forward

BTCUSD = sample_candles_path("BTCUSD")


def test_backtest_runs_on_the_shipped_btcusd_sample(capsys):
    assert main(["--candles", str(BTCUSD), "--strategy", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"fixed", *BACKTESTABLE}
    assert report["fixed"]["summary"]["trades"] > 0


def test_a_short_whose_atr_target_lies_below_zero_trades_without_a_target():
    c = load_candles_file(BTCUSD)
    atr = talib.ATR(c.high, c.low, c.close, timeperiod=14)
    pos = 40  # 2015-05-31: close 231.52, ATR 133.6 -> a 2-ATR short target of -35.6
    assert c.close[pos] - 2 * atr[pos] < 0
    trade = simulate_trade(c, atr, pos, "short", "fixed", None, BacktestConfig())
    assert trade is not None
    assert trade.target is None  # a price cannot reach it: no take-profit, not an error
    assert trade.exit_reason != "take_profit"
    assert trade.initial_stop == pytest.approx(c.close[pos] + atr[pos])


def test_a_long_whose_stop_would_lie_at_or_below_zero_is_not_entered():
    c = load_candles_file(BTCUSD)
    atr = talib.ATR(c.high, c.low, c.close, timeperiod=14)
    pos = 40
    wide = BacktestConfig(sl_atr=float(c.close[pos] / atr[pos]) + 0.5)  # stop below 0
    assert simulate_trade(c, atr, pos, "long", "fixed", None, wide) is None


def test_an_invalid_position_names_its_row_and_time():
    c = load_candles_file(BTCUSD)
    atr = talib.ATR(c.high, c.low, c.close, timeperiod=14)
    close = c.close.copy()
    close[60] = np.nan  # the entry price of a signal at row 60
    broken = replace(c, close=close)
    with pytest.raises(PositionError) as err:
        run_policy(broken, [(60, "long")], "fixed", atr=atr)
    text = str(err.value)
    assert text.startswith("entry_price: ")
    assert "row 60" in text and "2017-01-31" in text and "long" in text


def test_cli_says_where_the_chart_was_written(tmp_path, capsys):
    chart = tmp_path / "charts" / "btc.png"
    assert main(["--candles", str(BTCUSD), "--policies", "fixed", "--json",
                 "--chart", str(chart)]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays one JSON document
    assert f"wrote {chart}" in captured.err
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_split_chart_marks_the_out_of_sample_part():
    from backend.positions.chart import equity_figure

    c = load_candles_file(BTCUSD)
    m = market("btc", c, ["ma_cross", "breakout"])
    results, _ = walk_forward(m, ["fixed", "combined"], BacktestConfig(), split=0.5)
    cut = int(len(c) * 0.5)
    fig = equity_figure(results, out_of_sample_from=int(c.time[cut]))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    oos = [t for t in labels if "out-of-sample" in t]
    assert oos and "2018-" in oos[0]  # the split's date: row 78 of 156, 2018-07-31
    spans = [p for p in ax.patches if p.get_label().startswith("out-of-sample")]
    assert len(spans) == 1
    x0 = spans[0].get_x()
    import matplotlib.dates as mdates
    assert mdates.num2date(x0).date().isoformat() == "2018-07-31"
    fig.clf()
