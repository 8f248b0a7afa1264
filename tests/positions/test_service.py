"""The exit service is pure: plain objects in (any that fit its protocols), advice and rows
out, no database and no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.positions.service import evaluate, exit_row
from backend.positions.state import PositionError
from tests.utils.paths import entry_time, with_history

ENTRY = datetime.fromtimestamp(entry_time(), UTC)


@dataclass
class Open:
    side: str = "long"
    entry_time: datetime = ENTRY
    entry_price: float = 100.0
    quantity: float = 1.0
    initial_stop: float = 98.0
    target: float | None = 104.0
    current_stop: float | None = None


@dataclass
class Closed:
    trade_id: str = "t-1"
    symbol: str = "EURUSD"
    side: str = "long"
    entry_time: datetime = datetime(2026, 1, 5, 10, tzinfo=UTC)
    exit_time: datetime = datetime(2026, 1, 5, 15, tzinfo=UTC)
    entry_price: float = 1.1
    exit_price: float = 1.105
    quantity: float = 1000.0
    exit_reason: str = "take_profit"
    initial_stop: float | None = 1.098
    pnl: float | None = None
    fees: float | None = 0.5
    mfe: float | None = None
    mae: float | None = None
    policy_name: str | None = None
    policy_params: dict[str, Any] = field(default_factory=dict)


def test_evaluate_takes_plain_objects() -> None:
    candles = with_history([(100.5, 101.0, 99.5, 100.5), (100.5, 102.0, 100.0, 101.5)])
    a = evaluate(Open(), candles, policy="breakeven", params={"trigger_r": 1.0})
    # high 102 = +1 R (R = 2): stop to the entry; close 101.5 = +0.75 R
    assert (a.decision.action, a.decision.stop, a.decision.reason) == (
        "update_stop", 100.0, "breakeven")
    assert (a.r_multiple, a.state.mfe, a.state.mae, a.state.bars_held) == (0.75, 1.0, 0.25, 2)
    assert (a.last_close, a.policy, a.policy_params["trigger_r"]) == (101.5, "breakeven", 1.0)
    assert a.last_candle_time == datetime.fromtimestamp(int(candles.time[-1]), UTC)


def test_evaluate_refuses_an_entry_after_every_candle() -> None:
    candles = with_history([(100.5, 101.0, 99.5, 100.5)])
    last = datetime.fromtimestamp(int(candles.time[-1]), UTC)
    with pytest.raises(PositionError) as err:
        evaluate(Open(entry_time=last + timedelta(seconds=1)), candles, policy=None,
                 params=None)
    assert err.value.field == "entry_time" and "after" in err.value.reason
    at_last = evaluate(Open(entry_time=last), candles, policy=None, params=None)
    assert at_last.state.bars_held == 1  # the last candle opened at the fill: it counts


def test_evaluate_refuses_ml_exit_without_a_provider() -> None:
    with pytest.raises(PositionError, match=r"^params\.provider"):
        evaluate(Open(), with_history([(100.5, 101.0, 99.5, 100.5)]), policy="ml_exit",
                 params=None)


def test_exit_row_figures() -> None:
    row = exit_row(Closed())
    pnl = (1.105 - 1.1) * 1000.0 - 0.5
    assert row.pnl == pytest.approx(pnl, abs=1e-9)
    assert row.return_pct == pytest.approx(pnl / 1100.0 * 100, abs=1e-9)
    assert row.r_multiple == pytest.approx(pnl / 2.0, abs=1e-9)
    assert row.holding_seconds == timedelta(hours=5).total_seconds()
    assert exit_row(Closed(initial_stop=None)).r_multiple is None


def test_a_figure_that_is_not_finite_names_the_field_to_blame() -> None:
    with pytest.raises(PositionError) as err:
        exit_row(Closed(quantity=5e-324, pnl=1.0))  # the notional underflows to 0
    assert err.value.field == "quantity"
    with pytest.raises(PositionError) as err:
        exit_row(Closed(initial_stop=1.1 - 1e-300, pnl=1e300))
    assert err.value.field == "initial_stop"
