"""Typed results. Unknown response fields are kept in ``extra`` (the service may add some)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any], **converted: Any) -> T:
    """``cls`` from a response dict: known fields set, the rest in ``extra``."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in data.items() if k in names and k != "extra"}
    kwargs.update(converted)
    kwargs["extra"] = {k: v for k, v in data.items() if k not in names}
    return cls(**kwargs)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of a 422 ``detail``: ``field`` is the dotted path (``candles.7.high``)."""

    field: str
    reason: str
    type: str = ""
    loc: tuple[str | int, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelRef:
    id: int
    name: str
    version: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prediction:
    """Answer of ``/predict``: follow ``decision`` (``take`` or ``skip``)."""

    prediction_id: str
    trade_id: str
    probability: float
    decision: str
    threshold: float | None
    model: ModelRef
    feature_set_version: str
    contributions: dict[str, float] | None = None
    duplicate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def take(self) -> bool:
        return self.decision == "take"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Prediction:
        return _build(cls, data, model=_build(ModelRef, data["model"]),
                      threshold=data.get("threshold"))


@dataclass(frozen=True, slots=True)
class ExitAdvice:
    """Answer of ``/exits/evaluate``: ``action`` is hold, exit, update_stop or take_partial."""

    trade_id: str
    action: str
    reason: str
    stop: float | None
    target: float | None
    partial_fraction: float | None
    r_multiple: float
    mfe: float
    mae: float
    bars_held: int
    last_close: float
    last_candle_time: datetime
    policy: str
    policy_params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExitAdvice:
        return _build(cls, data, last_candle_time=_time(data["last_candle_time"]))


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """Answer of ``/exits``: ``created`` is False when the trade was already recorded."""

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
    return_pct: float
    r_multiple: float | None
    mfe: float | None
    mae: float | None
    holding_seconds: float
    policy_name: str | None
    policy_params: dict[str, Any]
    created_at: datetime
    created: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExitRecord:
        return _build(cls, data, entry_time=_time(data["entry_time"]),
                      exit_time=_time(data["exit_time"]), created_at=_time(data["created_at"]))


@dataclass(frozen=True, slots=True)
class Retrain:
    """Answer of ``/models/retrain``: ``retrain`` is the ``ml_retrains`` row (a dict)."""

    started: bool
    due: list[str]
    check: dict[str, Any]
    job_id: str | None
    retrain: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return bool(self.retrain and self.retrain.get("promoted"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retrain:
        return _build(cls, data)
