"""An open position, the exit decision about it, and the one rule that moves stops.

Conventions
-----------
* Times are epoch seconds (UTC), like :class:`backend.ml.candles.Candles`.
* A candle belongs to the position when its open time is >= ``entry_time``. A fill inside
  a bar therefore starts counting at the next bar: the pre-fill part of that bar is never
  mistaken for the position's excursion (conservative: it can only delay a stop move).
* R is the initial risk ``|entry_price - initial_stop|``; MFE and MAE are in R and >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from backend.ml.candles import Candles
from backend.positions.barriers import Side, direction

EXIT_REASONS: tuple[str, ...] = ("stop_loss", "take_profit", "trailing_stop", "breakeven",
                                 "time_stop", "partial", "ml_exit", "signal", "manual")
StopReason = Literal["stop_loss", "trailing_stop", "breakeven"]
Action = Literal["hold", "exit", "update_stop", "take_partial"]
ACTIONS: tuple[str, ...] = ("hold", "exit", "update_stop", "take_partial")


class PositionError(ValueError):
    """Invalid position state or policy parameters. ``field`` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def tighten_stop(side: Side, current: float, proposed: float | None) -> float:
    """The only place a stop moves: towards the trade (up for a long), never away."""
    if proposed is None or not math.isfinite(proposed):
        return current
    return max(current, proposed) if side == "long" else min(current, proposed)


@dataclass(frozen=True, slots=True)
class PositionState:
    """An open position as the exit policies see it.

    ``stop_reason`` says what put ``current_stop`` where it is (it becomes the exit reason
    when the stop is hit); None means "infer": the initial stop is a stop_loss, a stop at
    the entry price a breakeven, any other a trailing_stop.
    """

    side: Side
    entry_price: float
    entry_time: int
    initial_stop: float
    current_stop: float
    target: float | None = None
    quantity: float = 1.0
    bars_held: int = 0
    mfe: float = 0.0
    mae: float = 0.0
    partial_taken: bool = False
    stop_reason: StopReason | None = None

    def __post_init__(self) -> None:
        if self.side not in ("long", "short"):
            raise PositionError("side", "must be 'long' or 'short'")
        for name in ("entry_price", "initial_stop", "current_stop", "quantity"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise PositionError(name, "must be a finite number > 0")
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise PositionError("target", "must be a finite number > 0")
        sign = direction(self.side)
        if sign * (self.entry_price - self.initial_stop) <= 0:
            where = "below" if self.side == "long" else "above"
            raise PositionError("initial_stop", f"must be {where} the entry for a {self.side}")
        if self.target is not None and sign * (self.target - self.entry_price) <= 0:
            where = "above" if self.side == "long" else "below"
            raise PositionError("target", f"must be {where} the entry for a {self.side}")
        if self.bars_held < 0 or self.mfe < 0 or self.mae < 0:
            raise PositionError("bars_held/mfe/mae", "must be >= 0")

    @property
    def sign(self) -> float:
        return direction(self.side)

    @property
    def risk(self) -> float:
        """R: the initial risk per unit, in price."""
        return abs(self.entry_price - self.initial_stop)

    def r_at(self, price: float) -> float:
        """Open profit at ``price``, in R (negative when losing)."""
        return self.sign * (price - self.entry_price) / self.risk

    def price_at_r(self, r: float) -> float:
        """The price at which the open profit is ``r`` R."""
        return self.entry_price + self.sign * r * self.risk

    @property
    def effective_stop_reason(self) -> StopReason:
        if self.stop_reason is not None:
            return self.stop_reason
        if self.current_stop == self.initial_stop:
            return "stop_loss"
        return "breakeven" if self.current_stop == self.entry_price else "trailing_stop"


@dataclass(frozen=True, slots=True)
class ExitDecision:
    """What to do at the close of the last candle.

    ``stop`` and ``target`` are the levels in force after the decision (unchanged levels
    are repeated, so the caller can always place them); ``partial_fraction`` is the share
    of the current quantity to close when ``action == 'take_partial'``.
    """

    action: Action
    stop: float | None
    target: float | None
    reason: str
    partial_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise PositionError("action", f"must be one of {', '.join(ACTIONS)}")
        if self.reason != "hold" and self.reason not in EXIT_REASONS:
            raise PositionError("reason", f"unknown exit reason {self.reason!r}")
        if (self.action == "hold") != (self.reason == "hold"):
            raise PositionError("reason", "'hold' is the reason of a hold, and only of it")
        if self.action == "take_partial" and not (
            self.partial_fraction is not None and 0 < self.partial_fraction < 1
        ):
            raise PositionError("partial_fraction", "must be in (0, 1) for take_partial")


def bars_in_position(state: PositionState, candles: Candles) -> int:
    """Index of the first candle that belongs to the position (len(candles) if none)."""
    return int(np.searchsorted(candles.time, state.entry_time, side="left"))


def observe(state: PositionState, candles: Candles) -> PositionState:
    """State updated with the candles since entry: bars held, MFE and MAE in R.

    Values already in ``state`` are kept when larger, so a caller that sends only the
    most recent candles of a long-held position loses no history it already knew.
    """
    first = bars_in_position(state, candles)
    held = len(candles) - first
    if held == 0:
        return state
    if state.side == "long":
        best, worst = float(candles.high[first:].max()), float(candles.low[first:].min())
    else:
        best, worst = float(candles.low[first:].min()), float(candles.high[first:].max())
    return replace(
        state,
        bars_held=max(state.bars_held, held),
        mfe=max(state.mfe, state.r_at(best), 0.0),
        mae=max(state.mae, -state.r_at(worst), 0.0),
    )
