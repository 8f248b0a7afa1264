"""Exit policies: pure functions ``fn(state, candles, params) -> ExitDecision``.

The same functions answer ``POST /api/v1/exits/evaluate`` and drive the backtester. A
policy is evaluated at the close of the last candle in ``candles``. ``candles`` may (and
for ATR-based rules should) start before the entry: bars with an open time before
``state.entry_time`` are history, used only for ATR; bars from ``entry_time`` on are the
position's own (see :mod:`backend.positions.state`). ATR is TA-Lib's Wilder ATR over all
the candles passed; with too few candles for one ATR value (fewer than period + 1), the
initial risk R stands in for it (the default initial stop is itself 1 ATR at entry).

Every policy goes through :func:`_decide`, which applies one precedence: a barrier touched
by the last bar, then the time barrier (``max_bars``), then the policy's own exit, then a
stop move (tightened by :func:`backend.positions.state.tighten_stop`; a new stop at or
beyond the last close exits at once), then a partial, else hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import talib

from backend.ml.candles import Candles
from backend.positions.barriers import barrier_fill
from backend.positions.params import (
    AtrTrailingParams,
    BreakevenParams,
    CombinedParams,
    FixedParams,
    MlExitParams,
    PartialParams,
    PositionError,
    TimeStopParams,
    make_params,
)
from backend.positions.state import (
    ExitDecision,
    PositionState,
    StopReason,
    bars_in_position,
    observe,
    tighten_stop,
)

StopProposal = tuple[float, StopReason]
Policy = Callable[[PositionState, Candles, Any], ExitDecision]


def atr_last(candles: Candles, period: int, fallback: float) -> float:
    """ATR(period) at the last candle, or ``fallback`` when there are too few candles."""
    if len(candles) <= period:
        return fallback
    value = talib.ATR(candles.high, candles.low, candles.close, timeperiod=period)[-1]
    return float(value) if np.isfinite(value) else fallback


def _decide(
    state: PositionState,
    candles: Candles,
    *,
    max_bars: int,
    proposals: tuple[StopProposal, ...] = (),
    exit_reason: str | None = None,
    partial_fraction: float | None = None,
) -> ExitDecision:
    """The shared precedence of every policy (see the module docstring)."""
    stop, target = state.current_stop, state.target
    if bars_in_position(state, candles) < len(candles):  # the last bar is the position's
        o, h, lo = float(candles.open[-1]), float(candles.high[-1]), float(candles.low[-1])
        hit = barrier_fill(state.side, stop, target, o, h, lo)
        if hit is not None:
            reason = state.effective_stop_reason if hit[1] == "stop" else "take_profit"
            return ExitDecision("exit", stop, target, reason)
    if state.bars_held >= max_bars:
        return ExitDecision("exit", stop, target, "time_stop")
    if exit_reason is not None:
        return ExitDecision("exit", stop, target, exit_reason)
    new_stop, stop_reason = stop, state.effective_stop_reason
    for price, reason in proposals:
        tightened = tighten_stop(state.side, new_stop, price)
        if tightened != new_stop:
            new_stop, stop_reason = tightened, reason
    if new_stop != stop and state.sign * (float(candles.close[-1]) - new_stop) <= 0:
        return ExitDecision("exit", new_stop, target, stop_reason)
    if partial_fraction is not None:
        return ExitDecision("take_partial", new_stop, target, "partial", partial_fraction)
    if new_stop != stop:
        return ExitDecision("update_stop", new_stop, target, stop_reason)
    return ExitDecision("hold", stop, target, "hold")


# --- building blocks: each returns a proposal/exit/partial or None ----------------------

def _breakeven_stop(state: PositionState, trigger_r: float, offset_r: float
                    ) -> StopProposal | None:
    if state.mfe >= trigger_r:
        return state.price_at_r(offset_r), "breakeven"
    return None


def _chandelier_stop(state: PositionState, candles: Candles, atr_mult: float, period: int,
                     activation_r: float) -> StopProposal | None:
    first = bars_in_position(state, candles)
    if first >= len(candles) or state.mfe < activation_r:
        return None
    atr = atr_last(candles, period, fallback=state.risk)
    if state.side == "long":
        return float(candles.high[first:].max()) - atr_mult * atr, "trailing_stop"
    return float(candles.low[first:].min()) + atr_mult * atr, "trailing_stop"


def _no_progress(state: PositionState, bars: int, min_mfe_r: float) -> bool:
    return state.bars_held >= bars and state.mfe < min_mfe_r


def _partial_due(state: PositionState, candles: Candles, trigger_r: float) -> bool:
    return (not state.partial_taken and state.bars_held > 0
            and state.r_at(float(candles.close[-1])) >= trigger_r)


def _proposals(*items: StopProposal | None) -> tuple[StopProposal, ...]:
    return tuple(p for p in items if p is not None)


# --- the policies ----------------------------------------------------------------------

def fixed(state: PositionState, candles: Candles, params: FixedParams) -> ExitDecision:
    """Baseline: the initial stop and target, exits when touched or after max_bars."""
    state = observe(state, candles)
    return _decide(state, candles, max_bars=params.max_bars)


def atr_trailing(state: PositionState, candles: Candles, params: AtrTrailingParams
                 ) -> ExitDecision:
    """Chandelier: highest high since entry - k*ATR for a long (lowest low + k*ATR short)."""
    state = observe(state, candles)
    trail = _chandelier_stop(state, candles, params.atr_mult, params.atr_period,
                             params.activation_r)
    return _decide(state, candles, max_bars=params.max_bars, proposals=_proposals(trail))


def breakeven(state: PositionState, candles: Candles, params: BreakevenParams
              ) -> ExitDecision:
    """Stop to entry (+ offset R) once the MFE reaches trigger_r R (>=, exactly at k R)."""
    state = observe(state, candles)
    be = _breakeven_stop(state, params.trigger_r, params.offset_r)
    return _decide(state, candles, max_bars=params.max_bars, proposals=_proposals(be))


def time_stop(state: PositionState, candles: Candles, params: TimeStopParams
              ) -> ExitDecision:
    """Exit at the close after ``bars`` bars held with the MFE below ``min_mfe_r`` R."""
    state = observe(state, candles)
    stale = _no_progress(state, params.bars, params.min_mfe_r)
    return _decide(state, candles, max_bars=params.max_bars,
                   exit_reason="time_stop" if stale else None)


def partial(state: PositionState, candles: Candles, params: PartialParams) -> ExitDecision:
    """Take ``fraction`` off at the first close at least ``trigger_r`` R in profit."""
    state = observe(state, candles)
    due = _partial_due(state, candles, params.trigger_r)
    return _decide(state, candles, max_bars=params.max_bars,
                   partial_fraction=params.fraction if due else None)


def combined(state: PositionState, candles: Candles, params: CombinedParams
             ) -> ExitDecision:
    """Breakeven + chandelier trailing + time stop (+ partial), each optional."""
    state = observe(state, candles)
    be = trail = None
    if params.breakeven_r is not None:
        be = _breakeven_stop(state, params.breakeven_r, params.breakeven_offset_r)
    if params.trail_atr is not None:
        trail = _chandelier_stop(state, candles, params.trail_atr, params.atr_period,
                                 params.trail_activation_r)
    stale = params.time_stop_bars is not None and _no_progress(
        state, params.time_stop_bars, params.time_stop_min_mfe_r)
    due = params.partial_r is not None and _partial_due(state, candles, params.partial_r)
    return _decide(state, candles, max_bars=params.max_bars, proposals=_proposals(be, trail),
                   exit_reason="time_stop" if stale else None,
                   partial_fraction=params.partial_fraction if due else None)


def ml_exit(state: PositionState, candles: Candles, params: MlExitParams) -> ExitDecision:
    """Fixed stop/target, plus an exit when the injected probability is below threshold."""
    if params.provider is None:
        raise PositionError("params.provider", "ml_exit needs a probability provider")
    state = observe(state, candles)
    low = state.bars_held > 0 and float(params.provider(state, candles)) < params.threshold
    return _decide(state, candles, max_bars=params.max_bars,
                   exit_reason="ml_exit" if low else None)


POLICIES: dict[str, Policy] = {
    "fixed": fixed,
    "atr_trailing": atr_trailing,
    "breakeven": breakeven,
    "time_stop": time_stop,
    "partial": partial,
    "combined": combined,
    "ml_exit": ml_exit,
}
DEFAULT_POLICY = "combined"


def get_policy(name: str | None, params: Any = None, *,
               max_bars: int | None = None) -> tuple[str, Policy, Any]:
    """(name, function, params) for a policy name (None = the default) and its params,
    given as a params dataclass, a mapping (JSON) or None (defaults); `max_bars` replaces
    the default time barrier of a mapping or None (see params.model_max_bars)."""
    name = name or DEFAULT_POLICY
    if name not in POLICIES:
        raise PositionError("policy", f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    if params is None or isinstance(params, dict):
        params = make_params(name, params, max_bars=max_bars)
    return name, POLICIES[name], params
