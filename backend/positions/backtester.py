"""Replay a base strategy's entries over candles, managing each position with a policy.

Rules (docs/positions.md has the rationale):

* Entry at the close of the signal bar (``entry="signal_close"``, the triple-barrier
  labels' convention, so the ``fixed`` policy reproduces the labels) or at the next bar's
  open (``entry="next_open"``). Either way the position's first bar is the one after the
  signal bar, and its ``entry_time`` is that bar's open time.
* Initial stop = entry -/+ ``sl_atr`` x ATR and target = entry +/- ``tp_atr`` x ATR, the
  ATR taken at the signal bar (same defaults as the labels: barriers.py). A short's
  target at or below zero is no target (no price reaches it); a long whose stop would lie
  there is not entered.
* Each bar: first the stop/target in force since the last close are checked intrabar
  (pessimistic: both touched -> stop; a gap through the stop fills at the open); then the
  policy is evaluated at the close and its exit/partial fills at that close.
* Costs: ``slippage_bps`` moves every fill against the trade, ``fee_bps`` is charged on the
  notional of every fill (entry and each exit).
* One position at a time (``one_position=True``): signals while a position is open are
  ignored, including opposite ones. With ``one_position=False`` every signal is managed
  independently (same entries for every policy: a paired comparison).
* Signals whose ``max_bars`` horizon runs past the data end are dropped, as the labels do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import talib

from backend.ml.candles import Candles
from backend.positions.barriers import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_SL_ATR,
    DEFAULT_TP_ATR,
    Side,
    barrier_fill,
)
from backend.positions.policies import get_policy
from backend.positions.report import PolicySummary, summarize
from backend.positions.state import PositionError, PositionState, observe, tighten_stop
from backend.positions.trades import Trade


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Entry, barrier and cost settings shared by every policy of one run."""

    tp_atr: float = DEFAULT_TP_ATR
    sl_atr: float = DEFAULT_SL_ATR
    atr_period: int = DEFAULT_ATR_PERIOD
    fee_bps: float = 0.0
    slippage_bps: float = 0.0
    entry: Literal["signal_close", "next_open"] = "signal_close"
    history_bars: int = 100  # candles before the entry handed to the policy (for its ATR)
    one_position: bool = True

    def __post_init__(self) -> None:
        for name in ("tp_atr", "sl_atr"):
            if not getattr(self, name) > 0:
                raise PositionError(name, "must be > 0")
        for name in ("fee_bps", "slippage_bps"):
            if not 0 <= getattr(self, name) < 10_000:
                raise PositionError(name, "must be in [0, 10000) basis points")
        if self.entry not in ("signal_close", "next_open"):
            raise PositionError("entry", "must be 'signal_close' or 'next_open'")
        if self.atr_period < 1 or self.history_bars < 0:
            raise PositionError("atr_period/history_bars", "must be >= 1 / >= 0")


@dataclass(frozen=True, slots=True)
class PolicyResult:
    name: str
    params: Any
    trades: list[Trade]
    summary: PolicySummary


def entries_from_strategy(candles: Candles, strategy: str, **params: Any) -> pd.DataFrame:
    """Signals of a base strategy from backend.ml.labeling.STRATEGIES."""
    from backend.ml.labeling import STRATEGIES

    if strategy not in STRATEGIES:
        raise PositionError("strategy", f"unknown strategy {strategy!r} "
                            f"(known: {', '.join(sorted(STRATEGIES))})")
    return STRATEGIES[strategy](candles, **params)


def _entry_list(entries: pd.DataFrame | Iterable[tuple[int, str]]) -> list[tuple[int, Side]]:
    if isinstance(entries, pd.DataFrame):
        pairs = zip(entries["pos"].to_numpy(), entries["side"].to_numpy(), strict=True)
    else:
        pairs = iter(entries)
    out: list[tuple[int, Side]] = []
    for pos, side in pairs:
        out.append((int(pos), _side(side)))
    return sorted(out, key=lambda e: e[0])


def _side(value: Any) -> Side:
    """'long'/'short' from the strategies' +1/-1 (or the words themselves)."""
    if value in ("long", 1):
        return "long"
    if value in ("short", -1):
        return "short"
    raise PositionError("entries.side", f"must be 'long'/'short' or +1/-1, got {value!r}")


class _Fills:
    """Exit fills of one trade, in shares of the initial quantity."""

    def __init__(self) -> None:
        self.parts: list[tuple[float, float]] = []  # (share, raw price)

    def add(self, share: float, price: float) -> None:
        self.parts.append((share, price))

    def net_pnl(self, side: Side, entry: float, fee: float, slip: float) -> float:
        """Net profit per unit of initial quantity, after fees and slippage."""
        sign = 1.0 if side == "long" else -1.0
        paid = entry * (1 + sign * slip)
        pnl = -fee * paid
        for share, price in self.parts:
            got = price * (1 - sign * slip)
            pnl += share * (sign * (got - paid) - fee * got)
        return pnl

    def average_price(self) -> float:
        total = sum(s for s, _ in self.parts)
        return sum(s * p for s, p in self.parts) / total


def simulate_trade(candles: Candles, atr: np.ndarray, signal_pos: int, side: Side,
                   policy_name: str, params: Any, config: BacktestConfig) -> Trade | None:
    """Manage one position from ``signal_pos``; None when it cannot be entered (ATR not
    warmed up) or its horizon runs past the data end."""
    _, policy, params = get_policy(policy_name, params)
    first, n = signal_pos + 1, len(candles)
    last = signal_pos + params.max_bars
    risk_atr = float(atr[signal_pos])
    if last >= n or not np.isfinite(risk_atr) or risk_atr <= 0:
        return None
    sign = 1.0 if side == "long" else -1.0
    entry = float(candles.close[signal_pos] if config.entry == "signal_close"
                  else candles.open[first])
    stop = entry - sign * config.sl_atr * risk_atr
    target: float | None = entry + sign * config.tp_atr * risk_atr
    # An ATR of more than half the price (BTCUSD's monthly candles) puts a short's target
    # below zero, where no price goes: the trade has no take-profit. A long's stop there
    # cannot be placed (and R would exceed the entry price): that signal is not entered.
    if stop <= 0:
        return None
    if target is not None and target <= 0:
        target = None
    try:
        state = PositionState(side=side, entry_price=entry,
                              entry_time=int(candles.time[first]), initial_stop=stop,
                              current_stop=stop, target=target)
    except PositionError as exc:
        raise _at_row(exc, candles, signal_pos, side) from exc
    start = max(0, first - config.history_bars)
    fills, share_left, reason, exit_pos = _Fills(), 1.0, "time_stop", last
    mfe, mae = 0.0, 0.0
    for i in range(first, last + 1):
        hit = barrier_fill(side, state.current_stop, state.target, float(candles.open[i]),
                           float(candles.high[i]), float(candles.low[i]))
        if hit is not None:
            price, which = hit
            fills.add(share_left, price)
            reason = state.effective_stop_reason if which == "stop" else "take_profit"
            # the path inside the bar is unknown: count its excursion only up to the fill
            mfe, mae = max(mfe, state.r_at(price)), max(mae, -state.r_at(price))
            exit_pos = i
            break
        window = Candles(*(a[start:i + 1] for a in candles._arrays()))
        try:
            state = observe(state, window)
            mfe, mae = state.mfe, state.mae
            decision = policy(state, window, params)
        except PositionError as exc:
            raise _at_row(exc, candles, i, side) from exc
        close = float(candles.close[i])
        if decision.action == "exit":
            fills.add(share_left, close)
            reason, exit_pos = decision.reason, i
            break
        new_stop = tighten_stop(side, state.current_stop, decision.stop)
        stop_reason = state.stop_reason
        if new_stop != state.current_stop:
            stop_reason = decision.reason if decision.action == "update_stop" else (
                state.effective_stop_reason)
        if decision.action == "take_partial":
            taken = share_left * float(decision.partial_fraction or 0.0)
            fills.add(taken, close)
            share_left -= taken
            state = replace(state, partial_taken=True, quantity=share_left)
        state = replace(state, current_stop=new_stop, target=decision.target,
                        stop_reason=stop_reason)
    pnl = fills.net_pnl(side, entry, config.fee_bps / 1e4, config.slippage_bps / 1e4)
    return Trade(
        side=side, signal_pos=signal_pos, exit_pos=exit_pos,
        entry_time=state.entry_time, exit_time=int(candles.time[exit_pos]),
        entry_price=entry, exit_price=fills.average_price(), initial_stop=state.initial_stop,
        target=state.target if state.target is None else float(state.target),
        exit_reason=reason, r_multiple=pnl / state.risk, return_pct=pnl / entry,
        bars_held=exit_pos - signal_pos, mfe=max(mfe, 0.0), mae=max(mae, 0.0),
        partial_taken=state.partial_taken,
    )


def _at_row(exc: PositionError, candles: Candles, pos: int, side: Side) -> PositionError:
    """The same error, naming the candle row (0-based) and its time: a file of thousands
    of rows is otherwise searched by hand."""
    when = datetime.fromtimestamp(int(candles.time[pos]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return PositionError(exc.field, f"{exc.reason} (the {side} at candle row {pos}, {when})")


def run_policy(candles: Candles, entries: pd.DataFrame | Iterable[tuple[int, str]],
               policy_name: str, params: Any = None, config: BacktestConfig | None = None,
               *, atr: np.ndarray | None = None, horizon: int | None = None) -> list[Trade]:
    """Every trade one policy makes over ``entries`` (see the module rules).

    ``horizon`` (default: the policy's max_bars) drops signals whose horizon runs past the
    data end; run_backtest passes the longest max_bars of its policies so that every
    policy is offered the same signals.
    """
    config = config or BacktestConfig()
    name, _, params = get_policy(policy_name, params)
    if atr is None:
        atr = talib.ATR(candles.high, candles.low, candles.close, timeperiod=config.atr_period)
    horizon = params.max_bars if horizon is None else horizon
    trades: list[Trade] = []
    busy_until = -1
    for pos, side in _entry_list(entries):
        if pos + horizon >= len(candles) or (config.one_position and pos < busy_until):
            continue
        trade = simulate_trade(candles, atr, pos, side, name, params, config)
        if trade is not None:
            trades.append(trade)
            busy_until = trade.exit_pos
    return trades


def run_backtest(candles: Candles, entries: pd.DataFrame | Iterable[tuple[int, str]],
                 policies: Mapping[str, Any], config: BacktestConfig | None = None
                 ) -> dict[str, PolicyResult]:
    """Run each policy (name -> params, None for defaults) plus the ``fixed`` baseline;
    each summary's ``avg_loss_vs_baseline`` compares with that baseline."""
    config = config or BacktestConfig()
    entry_list = _entry_list(entries)
    resolved = {name: get_policy(name, p)[2] for name, p in policies.items()}
    resolved.setdefault("fixed", get_policy("fixed")[2])
    resolved = {"fixed": resolved.pop("fixed"), **resolved}
    horizon = max(p.max_bars for p in resolved.values())
    atr = talib.ATR(candles.high, candles.low, candles.close, timeperiod=config.atr_period)
    results: dict[str, PolicyResult] = {}
    baseline = None
    for name, params in resolved.items():
        trades = run_policy(candles, entry_list, name, params, config, atr=atr,
                            horizon=horizon)
        if name == "fixed":
            baseline = summarize(trades)
        results[name] = PolicyResult(name, params, trades, summarize(trades, baseline=baseline))
    return results
