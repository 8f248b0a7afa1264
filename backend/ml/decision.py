"""Take or skip a signal by its expected value in R (multiples of the risk to the stop).

    expected R = p * reward - (1 - p) * risk - costs;   take when expected R > margin

with p the calibrated probability that the trade pays, reward and risk in R (risk is 1 R
by definition; reward = target distance / stop distance from the signal's own prices, or
the training barrier tp_atr / sl_atr when the signal brings none). An explicit probability
threshold (``TML_DECISION_THRESHOLD``) overrides the rule: take when p >= threshold.
Pure functions, numpy only: serving and evaluation run the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

EXPECTED_VALUE = "expected_value"
THRESHOLD = "threshold"


@dataclass(frozen=True)
class Decision:
    """One answer: ``take``, the ``rule`` that decided and the ``expected_r`` of taking."""

    take: bool
    rule: str
    expected_r: float
    reward_r: float
    risk_r: float


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def reward_risk(entry: float, *, side: str | int, stop_price: float | None = None,
                target_price: float | None = None, tp_atr: float = 2.0,
                sl_atr: float = 1.0) -> tuple[float, float]:
    """(reward, risk) in R: from the signal's own stop and target when both are given,
    else from the barrier the model was trained with (tp_atr / sl_atr, risk 1).

    Raises
    ------
    ValueError
        A stop or target on the wrong side of the entry, or non-positive barriers.
    """
    sign = 1.0 if side in ("long", 1) else -1.0 if side in ("short", -1) else None
    if sign is None:
        raise ValueError(f"side: must be 'long'/'short' or +1/-1, got {side!r}")
    if _finite(stop_price) and _finite(target_price):
        risk = sign * (entry - float(stop_price))  # type: ignore[arg-type]
        reward = sign * (float(target_price) - entry)  # type: ignore[arg-type]
        if risk <= 0:
            raise ValueError(f"stop_price: {stop_price} is not on the losing side of {entry}")
        if reward <= 0:
            raise ValueError(f"target_price: {target_price} is not on the winning side of "
                             f"{entry}")
        return reward / risk, 1.0
    if not (tp_atr > 0 and sl_atr > 0):
        raise ValueError(f"tp_atr/sl_atr: must be > 0, got {tp_atr}, {sl_atr}")
    return tp_atr / sl_atr, 1.0


def expected_r(prob: ArrayLike, reward_r: ArrayLike, risk_r: ArrayLike = 1.0,
               costs_r: float = 0.0) -> np.ndarray:
    """p * reward - (1 - p) * risk - costs, elementwise."""
    p = np.asarray(prob, dtype=np.float64)
    return p * np.asarray(reward_r, dtype=np.float64) - (1 - p) * np.asarray(
        risk_r, dtype=np.float64) - costs_r


def break_even_probability(reward_r: float, risk_r: float = 1.0, costs_r: float = 0.0,
                           margin_r: float = 0.0) -> float:
    """The probability above which the expected-value rule takes: (risk + costs + margin)
    / (reward + risk)."""
    return (risk_r + costs_r + margin_r) / (reward_r + risk_r)


def decide_many(prob: ArrayLike, reward_r: ArrayLike, risk_r: ArrayLike = 1.0, *,
                costs_r: float = 0.0, margin_r: float = 0.0,
                threshold: float | None = None) -> tuple[np.ndarray, str, np.ndarray]:
    """Vectorised :func:`decide`: (take mask, rule name, expected R per row)."""
    ev = expected_r(prob, reward_r, risk_r, costs_r)
    if threshold is not None:
        return np.asarray(prob, dtype=np.float64) >= threshold, THRESHOLD, ev
    return ev > margin_r, EXPECTED_VALUE, ev


def decide(prob: float, *, reward_r: float, risk_r: float = 1.0, costs_r: float = 0.0,
           margin_r: float = 0.0, threshold: float | None = None) -> Decision:
    """Take or skip one signal.

    Parameters
    ----------
    prob : float in [0, 1]
        Calibrated probability that the trade pays.
    reward_r, risk_r : float > 0
        Payoff of a win and loss of a loss, in R (see :func:`reward_risk`).
    costs_r : float
        Round-trip costs in R (fees, spread, slippage), subtracted from the expected value.
    margin_r : float
        Expected R a trade must exceed to be taken.
    threshold : float or None
        Explicit probability override; the rule is then "threshold".
    """
    if not 0.0 <= prob <= 1.0 or not math.isfinite(prob):
        raise ValueError(f"prob: must be within [0, 1], got {prob}")
    if not (reward_r > 0 and risk_r > 0):
        raise ValueError(f"reward_r/risk_r: must be > 0, got {reward_r}, {risk_r}")
    ev = float(prob * reward_r - (1 - prob) * risk_r - costs_r)
    if threshold is not None:
        return Decision(prob >= threshold, THRESHOLD, ev, reward_r, risk_r)
    return Decision(ev > margin_r, EXPECTED_VALUE, ev, reward_r, risk_r)
