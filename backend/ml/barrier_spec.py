"""Barriers set per run: take-profit and stop in ATR, the horizon in bars or as a duration.

A horizon of 24 bars is 2 hours on 5-minute bars and 24 days on daily ones, so a run may
give the horizon as a duration ("2d", "36h") instead; it is turned into bars per timeframe
(rounded down, so a label never looks further than the duration asked for). The resolved
barrier is stored with the model (:meth:`Barrier.record`) so that serving and the exit
policies can read what the labels meant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.positions.barriers import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_MAX_BARS,
    DEFAULT_SL_ATR,
    DEFAULT_TP_ATR,
)

# freqtrade's timeframe units; "M" (months) has no fixed length, so it is refused.
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def duration_seconds(text: str, field: str = "horizon") -> float:
    """Seconds of a duration such as "5m", "36h", "2d", "1w" (units s, m, h, d, w)."""
    match = _DURATION.match(str(text))
    if match is None:
        raise ValueError(f"{field}: {text!r} is not a duration like 36h, 2d or 5m "
                         f"(units {', '.join(UNIT_SECONDS)})")
    seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{field}: {text!r} must be longer than zero")
    return seconds


def timeframe_seconds(timeframe: str) -> int:
    """Bar length of a timeframe such as "5m", "1h", "1d" in seconds."""
    seconds = duration_seconds(timeframe, "timeframe")
    if seconds != int(seconds):
        raise ValueError(f"timeframe: {timeframe!r} is not a whole number of seconds")
    return int(seconds)


def parse_horizon(value: int | str) -> int | str:
    """A horizon as given: an int of bars (also "24"), or a duration string ("2d")."""
    if isinstance(value, bool):
        raise ValueError(f"horizon: must be bars or a duration, got {value!r}")
    if isinstance(value, int):
        bars = value
    elif isinstance(value, str) and value.strip().isdigit():
        bars = int(value.strip())
    elif isinstance(value, str):
        duration_seconds(value)
        return value.strip()
    else:
        raise ValueError(f"horizon: must be bars or a duration, got {value!r}")
    if bars < 1:
        raise ValueError(f"horizon: must be at least 1 bar, got {bars}")
    return bars


def horizon_bars(horizon: int | str, timeframe: str | None) -> int:
    """Bars of `horizon` on `timeframe`: bars as given, a duration divided by the bar length
    (rounded down). A duration needs a timeframe, and must cover at least one bar."""
    horizon = parse_horizon(horizon)
    if isinstance(horizon, int):
        return horizon
    if not timeframe:
        raise ValueError(f"horizon: {horizon!r} is a duration, so the candles need a "
                         "timeframe (from the file name or --timeframe)")
    bars = math.floor(duration_seconds(horizon) / timeframe_seconds(timeframe) + 1e-9)
    if bars < 1:
        raise ValueError(f"horizon: {horizon!r} is shorter than one {timeframe} bar")
    return bars


@dataclass(frozen=True, slots=True)
class Barrier:
    """Triple-barrier settings of one run.

    Attributes
    ----------
    tp_atr, sl_atr : float > 0, take-profit and stop distances in ATR at the signal bar.
    horizon : int (bars) or str (duration such as "2d"; bars per timeframe).
    atr_period : int, the ATR period of the barriers.
    """

    tp_atr: float = DEFAULT_TP_ATR
    sl_atr: float = DEFAULT_SL_ATR
    horizon: int | str = DEFAULT_MAX_BARS
    atr_period: int = DEFAULT_ATR_PERIOD

    def __post_init__(self) -> None:
        for name in ("tp_atr", "sl_atr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "horizon", parse_horizon(self.horizon))
        if isinstance(self.atr_period, bool) or not isinstance(self.atr_period, int) or (
                self.atr_period < 1):
            raise ValueError(f"atr_period: must be a positive integer, got {self.atr_period!r}")

    @classmethod
    def from_values(cls, *, tp_atr: float | None = None, sl_atr: float | None = None,
                    horizon: int | str | None = None,
                    defaults: Any = None) -> Barrier:
        """The given values, else those of `defaults` (e.g. Settings: barrier_tp_atr,
        barrier_sl_atr, barrier_horizon), else the shared defaults."""
        def pick(value: Any, setting: str, fallback: Any) -> Any:
            if value is not None:
                return value
            return getattr(defaults, setting, fallback) if defaults is not None else fallback

        return cls(tp_atr=pick(tp_atr, "barrier_tp_atr", DEFAULT_TP_ATR),
                   sl_atr=pick(sl_atr, "barrier_sl_atr", DEFAULT_SL_ATR),
                   horizon=pick(horizon, "barrier_horizon", DEFAULT_MAX_BARS))

    def bars(self, timeframe: str | None) -> int:
        return horizon_bars(self.horizon, timeframe)

    def record(self, timeframes: Iterable[str | None]) -> dict[str, Any]:
        """What is stored with the model: the settings, the bars per timeframe, and
        ``horizon_bars``/``timeframe`` when the data has one timeframe (else None)."""
        tfs = sorted({tf or "" for tf in timeframes})
        by_tf = {tf: self.bars(tf or None) for tf in tfs}
        single = len(by_tf) == 1
        values = set(by_tf.values())
        return {"tp_atr": self.tp_atr, "sl_atr": self.sl_atr, "atr_period": self.atr_period,
                "horizon": self.horizon,
                "horizon_bars": values.pop() if len(values) == 1 else None,
                "timeframe": (tfs[0] or None) if single else None,
                "horizon_bars_by_timeframe": by_tf}


def merge_records(records: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """One record for datasets pooled together; they must share the barrier settings
    (labels made with other barriers mean something else and are not mixed)."""
    present = [dict(r) for r in records if r]
    if not present:
        return None
    keys = ("tp_atr", "sl_atr", "atr_period", "horizon")
    first = {k: present[0][k] for k in keys}
    for r in present[1:]:
        if {k: r[k] for k in keys} != first:
            raise ValueError(f"barrier: datasets labelled with different barriers "
                             f"({first} and { {k: r[k] for k in keys} }) cannot be pooled")
    by_tf: dict[str, int] = {}
    for r in present:
        by_tf.update(r["horizon_bars_by_timeframe"])
    barrier = Barrier(tp_atr=first["tp_atr"], sl_atr=first["sl_atr"],
                      horizon=first["horizon"], atr_period=first["atr_period"])
    return barrier.record(by_tf)
