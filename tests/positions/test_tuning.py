"""Tuning on the first part only, and the selection rule."""

from __future__ import annotations

from backend.positions.backtester import BacktestConfig
from backend.positions.tuning import (
    Market,
    grid_candidates,
    market,
    split_market,
    tune_combined,
)
from tests.utils.market_data import perturb_after, sample

GRID = {"breakeven_r": (None, 1.0), "trail_atr": (None, 2.0),
        "time_stop_bars": (None, 4), "partial_r": (None,)}


def test_grid_drops_knobs_of_switched_off_parts():
    grid = {"breakeven_r": (None, 1.0), "breakeven_offset_r": (0.0, 0.2)}
    # None x two offsets is one candidate, 1.0 x two offsets are two
    assert len(grid_candidates(grid)) == 3


def test_split_keeps_the_tuning_part_before_the_split():
    m = market("GOOG", sample("GOOG"), ["ma_cross", "breakout"])
    tune, rest = split_market(m, 0.5)
    assert len(tune.candles) == 1074
    assert all((e["pos"] < 1074).all() for e in tune.entries.values())
    assert all((e["pos"] >= 1074).all() for e in rest.entries.values())
    assert sum(map(len, tune.entries.values())) + sum(map(len, rest.entries.values())) == \
        sum(map(len, m.entries.values()))


def test_tuning_never_sees_candles_after_the_split():
    candles = sample("EURUSD").head(2000)
    config = BacktestConfig(fee_bps=0.2, slippage_bps=0.3)
    m = market("EURUSD", candles, ["ma_cross"])
    changed = perturb_after(candles, 999, seed=3)
    # same signals (they come from the bars before the split in the tuning part)
    m2 = Market("EURUSD", changed, m.entries)
    a = tune_combined([split_market(m, 0.5)[0]], config, grid=GRID)
    b = tune_combined([split_market(m2, 0.5)[0]], config, grid=GRID)
    assert a.best == b.best and a.rows == b.rows


def test_the_rule_picks_the_best_expectancy_among_candidates_that_meet_the_target():
    m = market("GOOG", sample("GOOG").head(1200), ["ma_cross", "breakout"])
    result = tune_combined([m], BacktestConfig(), grid=GRID, target_loss_cut=10.0)
    candidates = grid_candidates(GRID)
    qualifying = [r for r in result.rows
                  if r["markets"][0]["loss_cut"] >= 10.0
                  and r["markets"][0]["expectancy_r"] >= r["markets"][0]["baseline_expectancy_r"]]
    if qualifying:
        best = max(qualifying, key=lambda r: r["mean_expectancy_r"])
        assert result.meets_target
    else:
        best = max(result.rows, key=lambda r: r["mean_expectancy_r"])
    assert result.best == candidates[best["index"]]
