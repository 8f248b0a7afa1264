"""Walk-forward evaluation of exit policies: tune ``combined`` on the first part of the
data, report every policy on the rest.

The split is by bar: the tuning part sees only candles before ``split`` (so a tuning trade
never peeks past it); the report part trades only signals at or after ``split``, with the
earlier candles available as history (for ATR), which is the past, not lookahead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from backend.ml.candles import Candles
from backend.positions.backtester import (
    BacktestConfig,
    PolicyResult,
    entries_from_strategy,
    run_backtest,
    run_policy,
)
from backend.positions.barriers import DEFAULT_MAX_BARS
from backend.positions.params import CombinedParams, params_to_dict
from backend.positions.report import summarize
from backend.positions.state import PositionError
from backend.positions.trades import Trade

TARGET_LOSS_CUT = 15.0  # the product promise: average loss at least 15 % smaller

# Small on purpose: every extra knob is one more way to fit the tuning part's noise.
DEFAULT_GRID: dict[str, Sequence[Any]] = {
    "breakeven_r": (None, 1.0, 1.5),
    "breakeven_offset_r": (0.0, 0.2),
    "trail_atr": (None, 1.5, 2.0),
    "trail_activation_r": (0.0, 1.0),
    "time_stop_bars": (None, 4, 8, 12),
    "time_stop_min_mfe_r": (0.25, 0.5),
    "partial_r": (None, 1.0),
}
_DEFAULTS = {f.name: f.default for f in fields(CombinedParams)}
# a component's secondary knobs only matter when its first knob is on
_SWITCHES = {"breakeven_offset_r": "breakeven_r", "trail_activation_r": "trail_atr",
             "time_stop_min_mfe_r": "time_stop_bars", "partial_fraction": "partial_r"}


@dataclass(frozen=True, slots=True)
class Market:
    """One data set: candles and the entry signals of each base strategy."""

    name: str
    candles: Candles
    entries: Mapping[str, pd.DataFrame]  # strategy -> signals


def market(name: str, candles: Candles, strategies: Iterable[str]) -> Market:
    return Market(name, candles, {s: entries_from_strategy(candles, s) for s in strategies})


def split_market(m: Market, split: float) -> tuple[Market, Market]:
    """(tuning part: candles before the split, report part: signals from the split on)."""
    if not 0 < split < 1:
        raise PositionError("split", "must be strictly between 0 and 1")
    cut = int(len(m.candles) * split)
    head = m.candles.head(cut)
    tune = Market(f"{m.name}[:{cut}]", head,
                  {s: e[e["pos"] < cut] for s, e in m.entries.items()})
    rest = Market(f"{m.name}[{cut}:]", m.candles,
                  {s: e[e["pos"] >= cut] for s, e in m.entries.items()})
    return tune, rest


def backtest_market(m: Market, policies: Mapping[str, Any], config: BacktestConfig
                    ) -> dict[str, PolicyResult]:
    """Each strategy run on its own (one position at a time within a strategy), then the
    trades pooled per policy; ``avg_loss_vs_baseline`` compares with the pooled fixed."""
    pooled: dict[str, list[Trade]] = {}
    params: dict[str, Any] = {}
    for entries in m.entries.values():
        for name, res in run_backtest(m.candles, entries, policies, config).items():
            pooled.setdefault(name, []).extend(res.trades)
            params[name] = res.params
    base = summarize(pooled["fixed"])
    return {name: PolicyResult(name, params[name], trades, summarize(trades, baseline=base))
            for name, trades in pooled.items()}


def grid_candidates(grid: Mapping[str, Sequence[Any]] | None = None) -> list[CombinedParams]:
    """Every distinct CombinedParams of the grid (knobs of a switched-off part dropped)."""
    grid = dict(DEFAULT_GRID if grid is None else grid)
    known = {f.name for f in fields(CombinedParams)}
    for key in grid:
        if key not in known:
            raise PositionError(f"grid.{key}", "not a CombinedParams field")
    seen: dict[tuple, CombinedParams] = {}
    for values in itertools.product(*grid.values()):
        chosen = dict(zip(grid, values, strict=True))
        for knob, switch in _SWITCHES.items():
            if knob in chosen and chosen.get(switch, "on") is None:
                chosen[knob] = _DEFAULTS[knob]  # irrelevant: one candidate, not many
        try:
            candidate = CombinedParams(**chosen)
        except PositionError:
            continue
        seen.setdefault(tuple(sorted(chosen.items(), key=lambda kv: kv[0])), candidate)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class TuningResult:
    best: CombinedParams
    meets_target: bool
    rows: list[dict[str, Any]]  # per candidate: params, per-market loss cut and expectancy


def tune_combined(markets: Sequence[Market], config: BacktestConfig, *,
                  grid: Mapping[str, Sequence[Any]] | None = None,
                  target_loss_cut: float = TARGET_LOSS_CUT) -> TuningResult:
    """Pick CombinedParams on the given (tuning) markets only.

    Rule: among candidates that cut the average loss by at least ``target_loss_cut`` %
    and keep the expectancy (R) at least at the fixed baseline's on every market, the one
    with the highest mean expectancy; if none qualifies, the highest mean expectancy among
    those that cut the loss enough; failing that, the highest mean expectancy.
    """
    candidates = grid_candidates(grid)
    baselines = {m.name: backtest_market(m, {"fixed": None}, config)["fixed"].summary
                 for m in markets}
    rows: list[dict[str, Any]] = []
    for i, cand in enumerate(candidates):
        per_market = []
        for m in markets:
            base = baselines[m.name]
            trades = [t for entries in m.entries.values()
                      for t in run_policy(m.candles, entries, "combined", cand, config,
                                          horizon=max(cand.max_bars, DEFAULT_MAX_BARS))]
            got = summarize(trades, baseline=base)
            per_market.append({
                "market": m.name, "loss_cut": -(got.avg_loss_vs_baseline or 0.0),
                "expectancy_r": got.expectancy_r or 0.0,
                "baseline_expectancy_r": base.expectancy_r or 0.0,
            })
        rows.append({"index": i, "params": params_to_dict(cand), "markets": per_market,
                     "mean_expectancy_r": sum(p["expectancy_r"] for p in per_market)
                     / len(per_market)})

    def cuts(row: dict[str, Any]) -> bool:
        return all(p["loss_cut"] >= target_loss_cut for p in row["markets"])

    def keeps(row: dict[str, Any]) -> bool:
        return all(p["expectancy_r"] >= p["baseline_expectancy_r"] for p in row["markets"])

    for pool in ([r for r in rows if cuts(r) and keeps(r)], [r for r in rows if cuts(r)],
                 rows):
        if pool:
            best = max(pool, key=lambda r: r["mean_expectancy_r"])
            return TuningResult(candidates[best["index"]], cuts(best) and keeps(best), rows)
    raise PositionError("grid", "no candidate parameters")


def walk_forward(m: Market, policies: Sequence[str], config: BacktestConfig, *,
                 split: float | None = None,
                 grid: Mapping[str, Sequence[Any]] | None = None,
                 ) -> tuple[dict[str, PolicyResult], TuningResult | None]:
    """Backtest ``policies`` on ``m``. With ``split``, ``combined`` is first tuned on the
    part before the split and every policy is reported on the rest only; without it the
    shipped defaults run over everything."""
    wanted: dict[str, Any] = {name: None for name in policies}
    if split is None:
        return backtest_market(m, wanted, config), None
    tune_part, report_part = split_market(m, split)
    tuning = None
    if "combined" in wanted:
        tuning = tune_combined([tune_part], config, grid=grid)
        wanted["combined"] = tuning.best
    return backtest_market(report_part, wanted, config), tuning
