"""Exit advice and exit recording: the logic behind /exits/evaluate and /exits.

``evaluate`` is pure (candles in, advice out). ``record_exit`` writes in one transaction:
the position_exits row (once per trade_id), the label on the trade's ml_trade_features row
and the outcome on its ml_predictions, so a reported exit is either fully applied or not
at all, and reporting it again changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from backend.api.schemas.candles import candles_to_arrays
from backend.api.schemas.exits import (
    ExitEvaluateRequest,
    ExitEvaluateResponse,
    ExitRecordRequest,
    ExitRecordResponse,
)
from backend.db import position_exits, predictions, trade_features
from backend.db.position_exits import PositionExitRow
from backend.positions.params import ProbabilityProvider, model_max_bars, params_to_dict
from backend.positions.policies import get_policy
from backend.positions.state import PositionError, PositionState, observe


def evaluate(req: ExitEvaluateRequest, *,
             probability_provider: ProbabilityProvider | None = None,
             model_barrier: Mapping[str, Any] | None = None) -> ExitEvaluateResponse:
    """Advice for the open position at the close of the last candle.

    With `model_barrier` (the barrier stored with the model in use), ``max_bars`` defaults
    to the model's horizon in bars of the candles sent, so the exit follows the labels.

    Raises
    ------
    CandleError
        Invalid candles (field path under ``candles``).
    PositionError
        Invalid policy parameters, or ``ml_exit`` without a probability provider.
    """
    candles = candles_to_arrays(req.candles, field="candles")
    max_bars = None
    if model_barrier is not None:
        spacing = float(np.median(np.diff(candles.time))) if len(candles) > 1 else None
        max_bars = model_max_bars(model_barrier, bar_seconds=spacing)
    name, policy, params = get_policy(req.policy, req.params, max_bars=max_bars)
    if name == "ml_exit" and probability_provider is not None:
        params = type(params)(**{**params_to_dict(params), "provider": probability_provider})
    state = PositionState(
        side=req.side, entry_price=req.entry_price, entry_time=int(req.entry_time.timestamp()),
        initial_stop=req.initial_stop, current_stop=req.current_stop or req.initial_stop,
        target=req.target, quantity=req.quantity,
    )
    state = observe(state, candles)
    decision = policy(state, candles, params)
    last_close = float(candles.close[-1])
    return ExitEvaluateResponse(
        trade_id=req.trade_id, action=decision.action, reason=decision.reason,
        stop=decision.stop, target=decision.target,
        partial_fraction=decision.partial_fraction, r_multiple=state.r_at(last_close),
        mfe=state.mfe, mae=state.mae, bars_held=state.bars_held, last_close=last_close,
        last_candle_time=datetime.fromtimestamp(int(candles.time[-1]), UTC),
        policy=name, policy_params=params_to_dict(params),
    )


def exit_row(req: ExitRecordRequest) -> PositionExitRow:
    """The position_exits row of a report: pnl (net), return_pct (%), R multiple."""
    sign = 1.0 if req.side == "long" else -1.0
    notional = req.entry_price * req.quantity
    pnl = req.pnl if req.pnl is not None else (
        sign * (req.exit_price - req.entry_price) * req.quantity - (req.fees or 0.0))
    r_multiple = None
    if req.initial_stop is not None:
        risk = abs(req.entry_price - req.initial_stop) * req.quantity
        r_multiple = pnl / risk if risk > 0 else math.inf
    return_pct = pnl / notional * 100.0 if notional > 0 else math.inf
    figures = {"pnl": pnl, "quantity": return_pct,
               "initial_stop": r_multiple if r_multiple is not None else 0.0}
    for field, value in figures.items():
        if not math.isfinite(value):  # e.g. a quantity of 5e-324 underflows the notional
            raise PositionError(field, "too small or too large to compute pnl, return and R")
    return PositionExitRow(
        trade_id=req.trade_id, symbol=req.symbol, side=req.side,
        entry_time=req.entry_time, exit_time=req.exit_time, entry_price=req.entry_price,
        exit_price=req.exit_price, quantity=req.quantity, exit_reason=req.exit_reason,
        pnl=pnl, return_pct=return_pct, r_multiple=r_multiple,
        mfe=req.mfe, mae=req.mae,
        holding_seconds=(req.exit_time - req.entry_time).total_seconds(),
        policy_name=req.policy_name, policy_params=req.policy_params,
    )


def record_exit(conn: psycopg.Connection, req: ExitRecordRequest
                ) -> tuple[PositionExitRow, bool]:
    """Store the exit, label the trade's feature row and resolve its predictions, in one
    transaction. The same trade_id again returns the stored row and ``False`` and writes
    nothing (a retried report is harmless). Label = 1 when the net pnl is > 0.

    Raises
    ------
    backend.db.errors.DatabaseError
        (InvalidData, DatabaseUnavailable, ...) after rolling everything back.
    """
    row = exit_row(req)
    with conn.transaction():
        # The write-behind batch carrying this trade's rows takes the same lock.
        trade_features.lock_trades(conn, trade_ids=[row.trade_id])
        stored, created = position_exits.insert(conn, row)
        # One labelling rule, in SQL, for both orders of arrival (label = net pnl > 0): it
        # labels what is stored now; rows still in the write-behind queue are labelled by
        # the same statements when they land. A retried report repairs anything left open.
        trade_features.label_from_exits(conn, trade_ids=[stored.trade_id])
        predictions.resolve_from_exits(conn, trade_ids=[stored.trade_id])
    return stored, created


def record_response(row: PositionExitRow, created: bool) -> ExitRecordResponse:
    """The HTTP answer for a recorded exit."""
    return ExitRecordResponse(
        id=row.id, trade_id=row.trade_id, symbol=row.symbol, side=row.side,
        entry_time=row.entry_time, exit_time=row.exit_time, entry_price=row.entry_price,
        exit_price=row.exit_price, quantity=row.quantity, exit_reason=row.exit_reason,
        pnl=row.pnl, return_pct=row.return_pct, r_multiple=row.r_multiple, mfe=row.mfe,
        mae=row.mae, holding_seconds=row.holding_seconds, policy_name=row.policy_name,
        policy_params=row.policy_params, created_at=row.created_at, created=created,
    )
