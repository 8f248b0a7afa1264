"""position_exits: one row per closed position (what the bot reports when it exits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from backend.db.bulk import jsonb_param
from backend.db.errors import Conflict, translate

INSERT_COLUMNS = ("trade_id", "symbol", "side", "entry_time", "exit_time", "entry_price",
                  "exit_price", "quantity", "exit_reason", "pnl", "return_pct", "r_multiple",
                  "mfe", "mae", "holding_seconds", "policy_name", "policy_params")

# A repeated report of the same trade (bot retry) stores nothing and returns the first row.
INSERT_SQL = f"""
INSERT INTO public.position_exits ({", ".join(INSERT_COLUMNS)})
VALUES ({", ".join(f"%({c})s" for c in INSERT_COLUMNS)})
ON CONFLICT (trade_id) DO NOTHING
RETURNING *
"""
GET_SQL = "SELECT * FROM public.position_exits WHERE trade_id = %(trade_id)s"


class ReportConflict(Conflict):
    """The trade's exit is already stored with other figures (``ids``: the stored row)."""

    def __init__(self, message: str, *, exit_id: int, trade_id: str) -> None:
        super().__init__(message)
        self.ids = {"exit_id": exit_id, "trade_id": trade_id}


@dataclass
class PositionExitRow:
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
    holding_seconds: float
    r_multiple: float | None = None
    mfe: float | None = None
    mae: float | None = None
    policy_name: str | None = None
    policy_params: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: datetime | None = None


def insert(conn: psycopg.Connection, row: PositionExitRow) -> tuple[PositionExitRow, bool]:
    """Store an exit once per trade_id; returns the stored row and whether it was created.

    Raises
    ------
    ReportConflict
        The trade_id's exit is stored with other figures (a retry must repeat the report:
        a different one would leave the label and the bot's books disagreeing).
    """
    params = {c: getattr(row, c) for c in INSERT_COLUMNS}
    params["policy_params"] = jsonb_param(row.policy_params or {})
    with translate(), conn.cursor(row_factory=class_row(PositionExitRow)) as cur:
        created = cur.execute(INSERT_SQL, params).fetchone()
        if created is not None:
            return created, True
        existing = cur.execute(GET_SQL, {"trade_id": row.trade_id}).fetchone()
    differing = _differing(existing, row)
    if differing:
        raise ReportConflict(
            f"the exit of trade_id {row.trade_id!r} is already recorded (exit {existing.id}) "
            f"with other {', '.join(differing)}", exit_id=existing.id, trade_id=row.trade_id)
    return existing, False


def _differing(stored: PositionExitRow, row: PositionExitRow) -> list[str]:
    """The stored columns a repeated report would change (double precision, timestamptz and
    jsonb give back what was sent, so equality is exact)."""
    return [c for c in INSERT_COLUMNS if getattr(stored, c) != getattr(row, c)]


def get(conn: psycopg.Connection, *, trade_id: str) -> PositionExitRow | None:
    with translate(), conn.cursor(row_factory=class_row(PositionExitRow)) as cur:
        return cur.execute(GET_SQL, {"trade_id": trade_id}).fetchone()
