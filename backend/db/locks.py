"""Session-level advisory locks: one process at a time does a start-up task."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

LOCK_SQL = "SELECT pg_advisory_lock(%s)"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s)"


@contextmanager
def advisory_lock(conn: psycopg.Connection, *, key: int) -> Iterator[None]:
    """Hold the advisory lock ``key`` on ``conn`` (waiting for it) for the block."""
    conn.execute(LOCK_SQL, (key,))
    try:
        yield
    finally:
        conn.execute(UNLOCK_SQL, (key,))
