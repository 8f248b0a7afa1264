"""ml_schema_migrations: which version of the migration file is applied (and its sha256).

Read by /ready and by the migration script (``backend/apply_ml_migration.py``), which
applies the file and records it here.
"""

from __future__ import annotations

import psycopg

from backend.db.errors import translate

MIGRATION_VERSION = "20261124000000"  # Supabase CLI style: <UTC timestamp>_<name>.sql
MIGRATION_NAME = "ml_tables"

TABLE_EXISTS_SQL = "SELECT to_regclass('public.ml_schema_migrations') IS NOT NULL"
RECORDED_CHECKSUM_SQL = "SELECT checksum FROM public.ml_schema_migrations WHERE version = %s"


def recorded_checksum(conn: psycopg.Connection) -> str | None:
    """The checksum recorded for this migration version, or None (not applied, or no
    migrations table yet)."""
    if not conn.execute(TABLE_EXISTS_SQL).fetchone()[0]:
        return None
    row = conn.execute(RECORDED_CHECKSUM_SQL, (MIGRATION_VERSION,)).fetchone()
    return row[0] if row else None


def is_applied(conn: psycopg.Connection) -> bool:
    """Whether this migration's version is recorded (used by /ready)."""
    with translate():
        return recorded_checksum(conn) is not None
