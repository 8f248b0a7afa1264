"""Policy parameters: small frozen dataclasses with defaults and validation.

Every policy honours ``max_bars`` (the time barrier of the triple-barrier labels), so the
``fixed`` policy with its defaults manages a trade exactly as the labels were made.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.ml.barrier_spec import duration_seconds, horizon_bars
from backend.ml.candles import Candles
from backend.positions.barriers import DEFAULT_ATR_PERIOD, DEFAULT_MAX_BARS
from backend.positions.state import PositionError, PositionState

ProbabilityProvider = Callable[[PositionState, Candles], float]


_MAX_INTEGER = 1_000_000  # bars or periods: beyond it numpy windows overflow, not a policy


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64 (JSON allows any number of digits)
        return False


def _number(name: str, value: Any, *, low: float, high: float = math.inf,
            low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise PositionError(f"params.{name}", "must be a finite number")
    if value < low or (low_open and value == low) or value > high:
        bound = f"> {low}" if low_open else f">= {low}"
        raise PositionError(f"params.{name}", f"must be {bound}" +
                            (f" and <= {high}" if high != math.inf else ""))


def _integer(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PositionError(f"params.{name}", f"must be an integer >= {low}")
    if value > _MAX_INTEGER:
        raise PositionError(f"params.{name}", f"must be an integer <= {_MAX_INTEGER}")


@dataclass(frozen=True, slots=True)
class FixedParams:
    """Initial stop and target, untouched; exit after ``max_bars`` bars at the close."""

    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        _integer("max_bars", self.max_bars, low=1)


@dataclass(frozen=True, slots=True)
class AtrTrailingParams:
    """Chandelier stop: best price since entry minus ``atr_mult`` x ATR(``atr_period``),
    once the MFE reaches ``activation_r`` R (0 = from the first bar)."""

    atr_mult: float = 2.0
    atr_period: int = DEFAULT_ATR_PERIOD
    activation_r: float = 0.0
    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        _number("atr_mult", self.atr_mult, low=0.0, low_open=True)
        _integer("atr_period", self.atr_period, low=1)
        _number("activation_r", self.activation_r, low=0.0)
        _integer("max_bars", self.max_bars, low=1)


@dataclass(frozen=True, slots=True)
class BreakevenParams:
    """Move the stop to entry + ``offset_r`` R once the MFE reaches ``trigger_r`` R."""

    trigger_r: float = 1.0
    offset_r: float = 0.0
    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        _number("trigger_r", self.trigger_r, low=0.0, low_open=True)
        _number("offset_r", self.offset_r, low=0.0)
        if self.offset_r >= self.trigger_r:
            raise PositionError("params.offset_r", "must be below trigger_r")
        _integer("max_bars", self.max_bars, low=1)


@dataclass(frozen=True, slots=True)
class TimeStopParams:
    """Exit at the close once ``bars`` bars are held with an MFE still below
    ``min_mfe_r`` R (the trade has not made progress)."""

    bars: int = 8
    min_mfe_r: float = 0.5
    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        _integer("bars", self.bars, low=1)
        _number("min_mfe_r", self.min_mfe_r, low=0.0, low_open=True)
        _integer("max_bars", self.max_bars, low=1)


@dataclass(frozen=True, slots=True)
class PartialParams:
    """Close ``fraction`` of the position at the close of the first bar whose close is at
    least ``trigger_r`` R in profit (once per position)."""

    trigger_r: float = 1.0
    fraction: float = 0.5
    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        _number("trigger_r", self.trigger_r, low=0.0, low_open=True)
        _number("fraction", self.fraction, low=0.0, high=1.0, low_open=True)
        if self.fraction == 1.0:
            raise PositionError("params.fraction", "must be below 1 (use an exit instead)")
        _integer("max_bars", self.max_bars, low=1)


@dataclass(frozen=True, slots=True)
class CombinedParams:
    """Breakeven + chandelier trailing + time stop (+ optional partial); a component is
    off when its first parameter is None. Defaults: chosen by ``bench/backtest_report.py
    --tune`` on the first half of EURUSD hourly and GOOG daily only (docs/positions.md)."""

    breakeven_r: float | None = 1.5
    breakeven_offset_r: float = 0.0
    trail_atr: float | None = 2.0
    trail_activation_r: float = 0.0
    atr_period: int = DEFAULT_ATR_PERIOD
    time_stop_bars: int | None = 4
    time_stop_min_mfe_r: float = 0.5
    partial_r: float | None = None
    partial_fraction: float = 0.5
    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        if self.breakeven_r is not None:
            _number("breakeven_r", self.breakeven_r, low=0.0, low_open=True)
            _number("breakeven_offset_r", self.breakeven_offset_r, low=0.0)
            if self.breakeven_offset_r >= self.breakeven_r:
                raise PositionError("params.breakeven_offset_r", "must be below breakeven_r")
        if self.trail_atr is not None:
            _number("trail_atr", self.trail_atr, low=0.0, low_open=True)
            _number("trail_activation_r", self.trail_activation_r, low=0.0)
        _integer("atr_period", self.atr_period, low=1)
        if self.time_stop_bars is not None:
            _integer("time_stop_bars", self.time_stop_bars, low=1)
            _number("time_stop_min_mfe_r", self.time_stop_min_mfe_r, low=0.0, low_open=True)
        if self.partial_r is not None:
            _number("partial_r", self.partial_r, low=0.0, low_open=True)
            _number("partial_fraction", self.partial_fraction, low=0.0, high=1.0,
                    low_open=True)
            if self.partial_fraction == 1.0:
                raise PositionError("params.partial_fraction", "must be below 1")
        _integer("max_bars", self.max_bars, low=1)


@dataclass(frozen=True, slots=True)
class MlExitParams:
    """Fixed stop and target, plus an exit when ``provider(state, candles)`` (the model's
    probability that the open trade still pays) falls below ``threshold``. The provider is
    injected so the policy itself stays a pure function."""

    threshold: float = 0.4
    provider: ProbabilityProvider | None = None
    max_bars: int = DEFAULT_MAX_BARS

    def __post_init__(self) -> None:
        _number("threshold", self.threshold, low=0.0, high=1.0)
        if self.provider is not None and not callable(self.provider):
            raise PositionError("params.provider", "must be callable")
        _integer("max_bars", self.max_bars, low=1)


PARAM_TYPES: dict[str, type] = {
    "fixed": FixedParams,
    "atr_trailing": AtrTrailingParams,
    "breakeven": BreakevenParams,
    "time_stop": TimeStopParams,
    "partial": PartialParams,
    "combined": CombinedParams,
    "ml_exit": MlExitParams,
}


def model_max_bars(barrier: Mapping[str, Any] | None, *, timeframe: str | None = None,
                   bar_seconds: float | None = None) -> int:
    """The time barrier of a model's labels in bars of this position's timeframe.

    `barrier` is what the registry stores with the model (``metrics["barrier"]``, see
    backend.ml.barrier_spec.Barrier.record); None (no model, or one trained before barriers
    were stored) gives the shared default. A horizon given as a duration is turned into bars
    of `timeframe`, else of `bar_seconds` (e.g. the spacing of the candles sent)."""
    if not barrier:
        return DEFAULT_MAX_BARS
    by_timeframe = barrier.get("horizon_bars_by_timeframe") or {}
    if timeframe and timeframe in by_timeframe:
        return int(by_timeframe[timeframe])
    horizon = barrier.get("horizon", DEFAULT_MAX_BARS)
    if isinstance(horizon, int):
        return horizon
    if timeframe:
        return horizon_bars(horizon, timeframe)
    if bar_seconds:
        return max(1, math.floor(duration_seconds(horizon) / bar_seconds + 1e-9))
    return int(barrier.get("horizon_bars") or DEFAULT_MAX_BARS)


def make_params(policy: str, values: Mapping[str, Any] | None = None, *,
                max_bars: int | None = None) -> Any:
    """Parameters of ``policy`` from a plain mapping (JSON): defaults for missing keys,
    a :class:`PositionError` naming an unknown key or a bad value. `max_bars`, when given,
    replaces the default time barrier (e.g. :func:`model_max_bars`); a value in `values`
    still wins."""
    cls = PARAM_TYPES.get(policy)
    if cls is None:
        raise PositionError("policy", f"unknown policy {policy!r} "
                            f"(known: {', '.join(PARAM_TYPES)})")
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise PositionError(f"params.{key}", f"unknown parameter for {policy!r} "
                                f"(known: {', '.join(sorted(known))})")
    if max_bars is not None and "max_bars" in known:
        values.setdefault("max_bars", max_bars)
    return cls(**values)


def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready parameters (callables dropped), e.g. for position_exits.policy_params."""
    return {k: v for k, v in dataclasses.asdict(params).items() if not callable(v)}
