"""position_exits through backend.db.position_exits: stored once per trade_id."""

from __future__ import annotations

import psycopg
import pytest

from backend.db import position_exits
from backend.db.errors import Conflict
from tests.utils.db_factories import exit_row


def test_insert_once_then_return_the_stored_row(conn: psycopg.Connection) -> None:
    row = exit_row(trade_id="t-1", side="short", exit_reason="trailing_stop", pnl=-3.5,
                   r_multiple=None, mfe=None, mae=None, policy_name=None, policy_params={})

    stored, created = position_exits.insert(conn, row)
    retry, created_again = position_exits.insert(conn, row)

    assert created and not created_again
    assert retry == stored  # the first report wins; the retry changed nothing
    assert stored.id is not None and stored.created_at is not None
    for name in ("trade_id", "symbol", "side", "entry_time", "exit_time", "entry_price",
                 "exit_price", "quantity", "exit_reason", "pnl", "return_pct", "r_multiple",
                 "mfe", "mae", "holding_seconds", "policy_name", "policy_params"):
        assert getattr(stored, name) == getattr(row, name), name
    assert position_exits.get(conn, trade_id="t-1") == stored
    assert position_exits.get(conn, trade_id="absent") is None


def test_policy_params_round_trip(conn: psycopg.Connection) -> None:
    params = {"atr_mult": 2.5, "breakeven_at_r": 1.0, "steps": [1, 2]}

    stored, _ = position_exits.insert(conn, exit_row(policy_name="atr_trailing",
                                                      policy_params=params))

    assert (stored.policy_name, stored.policy_params) == ("atr_trailing", params)


def test_another_report_of_a_stored_trade_is_a_conflict_naming_the_stored_exit(
        conn: psycopg.Connection) -> None:
    row = exit_row(trade_id="t-2")
    stored, _ = position_exits.insert(conn, row)
    for change in ({"pnl": 999.0}, {"exit_price": 1.2}, {"exit_reason": "manual"},
                   {"policy_params": {}}, {"mfe": None}):
        with pytest.raises(position_exits.ReportConflict) as err:
            position_exits.insert(conn, exit_row(**{**vars(row), **change}))
        assert isinstance(err.value, Conflict)
        assert err.value.ids == {"exit_id": stored.id, "trade_id": "t-2"}
        assert next(iter(change)) in str(err.value)
    assert position_exits.get(conn, trade_id="t-2") == stored
