"""One managed position of a backtest: what the backtester produces and the report sums.

A module of its own so that the backtester and the report both import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.positions.barriers import Side


@dataclass(frozen=True, slots=True)
class Trade:
    """One managed position. Prices are raw (before slippage); ``r_multiple`` and
    ``return_pct`` (a fraction of the entry price) are net of fees and slippage, summed
    over every fill weighted by its share of the initial quantity."""

    side: Side
    signal_pos: int
    exit_pos: int
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float  # quantity-weighted average of the exit fills
    initial_stop: float
    target: float | None
    exit_reason: str
    r_multiple: float
    return_pct: float
    bars_held: int
    mfe: float
    mae: float
    partial_taken: bool
