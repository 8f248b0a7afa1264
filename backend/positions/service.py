"""Exit advice and the figures of a reported exit: the logic behind /exits/evaluate and
/exits, pure (no database, no HTTP).

The inputs are described by protocols, so the request schemas (backend.api.schemas.exits)
are passed as they are and nothing here imports the API. Storing an exit is the route's
transaction (backend.api.routes.exits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np

from backend.db.position_exits import PositionExitRow
from backend.ml.candles import Candles
from backend.positions.params import ProbabilityProvider, model_max_bars, params_to_dict
from backend.positions.policies import get_policy
from backend.positions.state import ExitDecision, PositionError, PositionState, observe


class OpenPosition(Protocol):
    """An open position as the bot describes it (times aware)."""

    side: Literal["long", "short"]
    entry_time: datetime
    entry_price: float
    quantity: float
    initial_stop: float
    target: float | None
    current_stop: float | None  # None: the initial stop


class ClosedPosition(Protocol):
    """A closed position as the bot reports it (times aware)."""

    trade_id: str
    symbol: str
    side: Literal["long", "short"]
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float
    exit_reason: str
    initial_stop: float | None
    pnl: float | None  # None: computed from the prices, quantity and fees
    fees: float | None
    mfe: float | None
    mae: float | None
    policy_name: str | None
    policy_params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExitAdvice:
    """A policy's decision at the last close, with the position as observed up to it."""

    decision: ExitDecision
    state: PositionState
    last_close: float
    last_candle_time: datetime
    policy: str
    policy_params: dict[str, Any]

    @property
    def r_multiple(self) -> float:
        """Open profit at the last close, in R."""
        return self.state.r_at(self.last_close)


def evaluate(position: OpenPosition, candles: Candles, *, policy: str | None,
             params: dict[str, Any] | None,
             probability_provider: ProbabilityProvider | None = None,
             model_barrier: Mapping[str, Any] | None = None) -> ExitAdvice:
    """Advice for the open position at the close of the last candle.

    With `model_barrier` (the barrier stored with the model in use), ``max_bars`` defaults
    to the model's horizon in bars of the candles sent, so the exit follows the labels.

    Raises
    ------
    PositionError
        Invalid policy parameters or position, an entry after the last candle's open time,
        or ``ml_exit`` without a probability provider.
    """
    entry = int(position.entry_time.timestamp())
    if len(candles) and entry > int(candles.time[-1]):
        # no candle belongs to the position yet: "hold, 0 bars" would be advice about nothing
        raise PositionError("entry_time", "is after the open time of the last candle: send "
                                          "the candles since the entry (at least one)")
    max_bars = None
    if model_barrier is not None:
        spacing = float(np.median(np.diff(candles.time))) if len(candles) > 1 else None
        max_bars = model_max_bars(model_barrier, bar_seconds=spacing)
    name, policy_fn, policy_params = get_policy(policy, params, max_bars=max_bars)
    if name == "ml_exit" and probability_provider is not None:
        policy_params = type(policy_params)(**{**params_to_dict(policy_params),
                                               "provider": probability_provider})
    state = PositionState(
        side=position.side, entry_price=position.entry_price,
        entry_time=entry, initial_stop=position.initial_stop,
        current_stop=position.current_stop or position.initial_stop, target=position.target,
        quantity=position.quantity,
    )
    state = observe(state, candles)
    return ExitAdvice(
        decision=policy_fn(state, candles, policy_params), state=state,
        last_close=float(candles.close[-1]),
        last_candle_time=datetime.fromtimestamp(int(candles.time[-1]), UTC),
        policy=name, policy_params=params_to_dict(policy_params),
    )


def exit_row(report: ClosedPosition) -> PositionExitRow:
    """The position_exits row of a report: pnl (net), return_pct (%), R multiple.

    Raises
    ------
    PositionError
        A figure that is not finite, naming the input field to blame.
    """
    sign = 1.0 if report.side == "long" else -1.0
    notional = report.entry_price * report.quantity
    pnl = report.pnl if report.pnl is not None else (
        sign * (report.exit_price - report.entry_price) * report.quantity
        - (report.fees or 0.0))
    r_multiple = None
    if report.initial_stop is not None:
        risk = abs(report.entry_price - report.initial_stop) * report.quantity
        r_multiple = pnl / risk if risk > 0 else math.inf
    return_pct = pnl / notional * 100.0 if notional > 0 else math.inf
    # each computed figure, keyed by the input field an error names when it is not finite
    figure_by_blamed_field = {"pnl": pnl, "quantity": return_pct,
                              "initial_stop": r_multiple if r_multiple is not None else 0.0}
    for field, value in figure_by_blamed_field.items():
        if not math.isfinite(value):  # e.g. a quantity of 5e-324 underflows the notional
            raise PositionError(field, "too small or too large to compute pnl, return and R")
    return PositionExitRow(
        trade_id=report.trade_id, symbol=report.symbol, side=report.side,
        entry_time=report.entry_time, exit_time=report.exit_time,
        entry_price=report.entry_price, exit_price=report.exit_price,
        quantity=report.quantity, exit_reason=report.exit_reason,
        pnl=pnl, return_pct=return_pct, r_multiple=r_multiple,
        mfe=report.mfe, mae=report.mae,
        holding_seconds=(report.exit_time - report.entry_time).total_seconds(),
        policy_name=report.policy_name, policy_params=report.policy_params,
    )
