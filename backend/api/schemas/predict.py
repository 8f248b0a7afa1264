"""Request/response schemas of /predict and /predict/batch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.api.schemas.candles import PredictCandlesIn, example_candles

TradeId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
# No control characters: Postgres text cannot hold NUL, and none belongs in a name.
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]

_CANDLE_EXAMPLE = example_candles(60)  # MIN_CANDLES is 50: the example must run
_LAST_CLOSE = _CANDLE_EXAMPLE["close"][-1]
_EXAMPLE = {
    "trade_id": "bot1-20240101-0001", "symbol": "EURUSD", "timeframe": "1h",
    "side": "long", "strategy": "ma_cross", "signal_strength": 0.8,
    "stop_price": round(_LAST_CLOSE - 0.002, 5), "target_price": round(_LAST_CLOSE + 0.004, 5),
    "explain": True, "candles": _CANDLE_EXAMPLE,
}


class PredictRequest(BaseModel):
    # allow_inf_nan: a NaN literal (Python's json.dumps emits one) parses, so the candle
    # rules can name the field instead of a bare "invalid JSON".
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=True,
        json_schema_extra={"examples": [_EXAMPLE]},
    )

    trade_id: TradeId
    symbol: Name
    timeframe: Name
    side: Literal["long", "short"]
    strategy: Name = "unknown"
    signal_time: datetime | None = Field(
        default=None, description="Default: the last candle's time. Candles after it are "
                                  "ignored (no lookahead).")
    signal_strength: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False,
        description="How strong the base strategy rates its signal, 0 (weakest) to 1: the "
                    "scale the bootstrap strategies give and the model is trained on. The "
                    "side carries the direction, so no negative values.")
    stop_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    target_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    explain: bool = Field(default=False, description="Return the top feature contributions.")
    candles: PredictCandlesIn


class PredictBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=True, json_schema_extra={
        "examples": [{"signals": [
            {**_EXAMPLE, "trade_id": "bot1-20240101-0002", "explain": False},
            {**_EXAMPLE, "trade_id": "bot1-20240101-0003", "side": "short",
             "stop_price": round(_LAST_CLOSE + 0.002, 5),
             "target_price": round(_LAST_CLOSE - 0.004, 5), "explain": False}]}]})
    signals: list[PredictRequest] = Field(min_length=1, max_length=500)


class ModelRef(BaseModel):
    id: int
    name: str
    version: int


class PredictResponse(BaseModel):
    prediction_id: str
    trade_id: str
    probability: float = Field(description="Calibrated probability that the trade pays "
                                           "(calibration fitted out-of-fold at training).")
    decision: Literal["take", "skip"]
    threshold: float = Field(description="The probability at or above which this signal is "
                                         "taken: the expected-value rule's break-even "
                                         "(risk + costs + margin) / (reward + risk), or "
                                         "TML_DECISION_THRESHOLD when set.")
    rule: Literal["expected_value", "threshold"] = Field(
        description="What decided: take when p x reward - (1 - p) x "
                                         "risk - costs > margin (in R), or the explicit "
                                         "probability threshold override.")
    expected_r: float | None = Field(
        description="Expected value of taking the signal, in R (multiples "
                                  "of the risk to the stop), after costs. Null on answers "
                                  "stored before the rule existed.")
    model: ModelRef
    feature_set_version: str
    contributions: dict[str, float] | None = None
    duplicate: bool = Field(default=False, description="True when this trade_id was already "
                                                       "scored: the stored answer is returned.")


class PredictBatchResponse(BaseModel):
    data: list[PredictResponse]
    count: int
