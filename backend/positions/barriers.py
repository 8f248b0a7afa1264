"""Barrier defaults and the intrabar fill rule, shared by labeling, policies and backtester.

The triple-barrier labels (backend.ml.labeling) and the exit backtester must use the same
barriers, or the model is trained on trades the backtester never simulates; so the
defaults live here, once.
"""

from __future__ import annotations

from typing import Literal

Side = Literal["long", "short"]

DEFAULT_TP_ATR = 2.0  # take-profit distance, in ATR at the signal bar
DEFAULT_SL_ATR = 1.0  # stop-loss distance, in ATR at the signal bar
DEFAULT_MAX_BARS = 24  # time barrier: bars held before the position is closed at a close
DEFAULT_ATR_PERIOD = 14


def direction(side: Side) -> float:
    """+1 for a long, -1 for a short: multiplies price moves into profit."""
    return 1.0 if side == "long" else -1.0


def barrier_fill(
    side: Side, stop: float, target: float | None, open_: float, high: float, low: float
) -> tuple[float, Literal["stop", "target"]] | None:
    """Fill price and barrier hit during one bar, or None when neither was touched.

    The open comes first: an open at or beyond the stop (a gap) fills at the open, worse
    than the stop; an open at or beyond the target fills at the open, as a resting limit
    order would. After the open the path inside the bar is unknown, so the rule is
    pessimistic: a bar whose range touches both the stop and the target is a stop. These are
    the rules of the triple-barrier labels (backend.ml.labeling.triple_barrier).
    """
    if side == "long":
        gap_stop, gap_target = open_ <= stop, target is not None and open_ >= target
        touch_stop, touch_target = low <= stop, target is not None and high >= target
    else:
        gap_stop, gap_target = open_ >= stop, target is not None and open_ <= target
        touch_stop, touch_target = high >= stop, target is not None and low <= target
    if gap_stop:
        return open_, "stop"
    if gap_target:
        return open_, "target"
    if touch_stop:
        return stop, "stop"
    if touch_target:
        return float(target), "target"  # type: ignore[arg-type]
    return None
