"""position_exits through backend.db.position_exits: stored once per trade_id."""

from __future__ import annotations

import psycopg

from backend.db import position_exits
from tests.utils.db_factories import exit_row


def test_insert_once_then_return_the_stored_row(conn: psycopg.Connection) -> None:
    row = exit_row(trade_id="t-1", side="short", exit_reason="trailing_stop", pnl=-3.5,
                   r_multiple=None, mfe=None, mae=None, policy_name=None, policy_params={})

    stored, created = position_exits.insert(conn, row)
    retry, created_again = position_exits.insert(conn, exit_row(trade_id="t-1", pnl=999.0))

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
