"""Request/response schemas of /exits/evaluate (exit advice) and /exits (closed trades).

Naive datetimes are taken as UTC. Units: ``return_pct`` is a percentage of the entry
notional (``position_exits.return_pct``); ``realized_return`` on the labelled feature row
and the resolved predictions is the same return as a fraction; R multiples, MFE and MAE
are in R, the initial risk ``|entry_price - initial_stop|``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from backend.api.schemas.candles import CandlesIn
from backend.api.schemas.predict import Name, TradeId
from backend.positions.params import make_params
from backend.positions.policies import DEFAULT_POLICY, POLICIES
from backend.timeutil import as_utc

ExitReasonIn = Literal["stop_loss", "take_profit", "trailing_stop", "breakeven", "time_stop",
                       "partial", "ml_exit", "signal", "manual"]
Price = float
_PRICE = {"gt": 0, "allow_inf_nan": False}

_CANDLES_EXAMPLE = {
    "time": [1700000000 + 3600 * i for i in range(4)],
    "open": [1.0712, 1.0716, 1.0741, 1.0760],
    "high": [1.0719, 1.0745, 1.0766, 1.0771],
    "low": [1.0705, 1.0711, 1.0736, 1.0748],
    "close": [1.0716, 1.0741, 1.0760, 1.0752],
    "volume": [1413, 1241, 1502, 1377],
}


def _stop_side(value: float | None, info: ValidationInfo) -> float | None:
    """A stop must be on the losing side of the entry (below it for a long)."""
    side, entry = info.data.get("side"), info.data.get("entry_price")
    if value is None or side is None or entry is None:  # those fields failed on their own
        return value
    if side == "long" and not value < entry:
        raise ValueError("must be below entry_price for a long")
    if side == "short" and not value > entry:
        raise ValueError("must be above entry_price for a short")
    return value


def _target_side(value: float | None, info: ValidationInfo) -> float | None:
    side, entry = info.data.get("side"), info.data.get("entry_price")
    if value is None or side is None or entry is None:
        return value
    if side == "long" and not value > entry:
        raise ValueError("must be above entry_price for a long")
    if side == "short" and not value < entry:
        raise ValueError("must be below entry_price for a short")
    return value


class ExitEvaluateRequest(BaseModel):
    """An open position and recent candles; the answer is advice for the last close."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=True,  # NaN literals parse; the candle rules name the field
        json_schema_extra={"examples": [{
            "trade_id": "bot1-20240101-0001", "symbol": "EURUSD", "side": "long",
            "entry_time": "2023-11-14T23:13:20Z", "entry_price": 1.0716, "quantity": 10000,
            "initial_stop": 1.0696, "target": 1.0756, "current_stop": 1.0696,
            "policy": "combined", "candles": _CANDLES_EXAMPLE,
        }]},
    )

    trade_id: TradeId
    symbol: Name
    side: Literal["long", "short"]
    entry_time: datetime = Field(description="Fill time. Candles whose open time is at or "
                                             "after it belong to the position; earlier "
                                             "ones are history for the ATR.")
    entry_price: Price = Field(**_PRICE)
    quantity: float = Field(gt=0, allow_inf_nan=False)
    initial_stop: Price = Field(**_PRICE, description="Defines R = |entry - initial_stop|.")
    target: Price | None = Field(default=None, **_PRICE)
    current_stop: Price | None = Field(default=None, **_PRICE,
                                       description="Default: the initial stop.")
    candles: CandlesIn
    policy: str | None = Field(default=None, description=f"One of {', '.join(POLICIES)}; "
                                                         f"default {DEFAULT_POLICY}.")
    params: dict[str, Any] | None = Field(default=None, description="Policy parameters; "
                                          "missing ones take their defaults.")

    @field_validator("entry_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str | None) -> str | None:
        if value is not None and value not in POLICIES:
            raise ValueError(f"unknown policy {value!r} (known: {', '.join(POLICIES)})")
        return value

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any] | None, info: ValidationInfo
                      ) -> dict[str, Any] | None:
        policy = info.data.get("policy") or DEFAULT_POLICY
        if value is not None and policy in POLICIES:
            make_params(policy, value)  # raises PositionError (a ValueError) naming the key
        return value

    _check_initial_stop = field_validator("initial_stop")(_stop_side)
    _check_target = field_validator("target")(_target_side)


class ExitEvaluateResponse(BaseModel):
    trade_id: str
    action: Literal["hold", "exit", "update_stop", "take_partial"]
    reason: str = Field(description="'hold' or the exit reason (stop_loss, take_profit, "
                                    "trailing_stop, breakeven, time_stop, partial, ml_exit)")
    stop: float | None = Field(description="The stop to have in place after this advice.")
    target: float | None
    partial_fraction: float | None = Field(description="Share of the open quantity to "
                                                       "close (take_partial only).")
    r_multiple: float = Field(description="Open profit at the last close, in R.")
    mfe: float = Field(description="Max favourable excursion since entry, in R (>= 0).")
    mae: float = Field(description="Max adverse excursion since entry, in R (>= 0).")
    bars_held: int
    last_close: float
    last_candle_time: datetime
    policy: str
    policy_params: dict[str, Any]


class ExitRecordRequest(BaseModel):
    """A closed position, as the bot reports it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "trade_id": "bot1-20240101-0001", "symbol": "EURUSD", "side": "long",
            "entry_time": "2024-01-01T09:00:00Z", "exit_time": "2024-01-01T14:00:00Z",
            "entry_price": 1.1000, "exit_price": 1.1040, "quantity": 10000,
            "exit_reason": "trailing_stop", "initial_stop": 1.0980, "fees": 0.8,
            "policy_name": "combined", "policy_params": {},
        }]},
    )

    trade_id: TradeId
    symbol: Name
    side: Literal["long", "short"]
    entry_time: datetime
    exit_time: datetime
    entry_price: Price = Field(**_PRICE)
    exit_price: Price = Field(**_PRICE)
    quantity: float = Field(gt=0, allow_inf_nan=False)
    exit_reason: ExitReasonIn
    initial_stop: Price | None = Field(default=None, **_PRICE,
                                       description="Needed for r_multiple.")
    pnl: float | None = Field(default=None, allow_inf_nan=False,
                              description="Net profit. Default: side x (exit - entry) x "
                                          "quantity - fees.")
    fees: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                               description="Only used to compute pnl when pnl is absent.")
    mfe: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    mae: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    policy_name: str | None = Field(default=None, max_length=64)
    policy_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("entry_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("exit_time")
    @classmethod
    def _after_entry(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = as_utc(value)
        entry = info.data.get("entry_time")
        if entry is not None and not value > entry:
            raise ValueError("must be after entry_time")
        return value

    _check_initial_stop = field_validator("initial_stop")(_stop_side)

    @field_validator("policy_params")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        # stored as jsonb and echoed back: JSON's unbounded integers must fit 64 bits
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"cannot be stored: {exc}") from None
        return value


class ExitRecordResponse(BaseModel):
    id: int
    trade_id: str
    symbol: str
    side: str
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float
    exit_reason: str
    pnl: float
    return_pct: float = Field(description="pnl / (entry_price x quantity), in percent.")
    r_multiple: float | None
    mfe: float | None
    mae: float | None
    holding_seconds: float
    policy_name: str | None
    policy_params: dict[str, Any]
    created_at: datetime
    created: bool = Field(description="False when this trade_id was already recorded: "
                                      "the stored row is returned and nothing changed.")
