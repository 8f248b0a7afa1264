"""Connection URL resolution (external or embedded Postgres) and the connection pool."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from backend.config import Settings
from backend.db.embedded import embedded_url
from backend.db.errors import DatabaseUnavailable, translate

__all__ = ["connect", "connect_kwargs", "create_pool", "database_url", "embedded_url", "ping"]

PING_SQL = "SELECT 1"


def database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set, else the embedded server's URL (starting it if needed)."""
    if settings.database_url is not None and settings.database_url.get_secret_value():
        return settings.database_url.get_secret_value()
    return embedded_url(settings.pg_data_dir)


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "prepare_threshold": settings.db_prepare_threshold,
        "connect_timeout": max(1, int(settings.db_connect_timeout)),
    }


def connect(url: str, settings: Settings | None = None, **kwargs: Any) -> psycopg.Connection:
    """One connection, with psycopg errors translated (bad URL, server down)."""
    extra = connect_kwargs(settings) if settings else {"connect_timeout": 5}
    extra.update(kwargs)
    with translate():
        try:
            return psycopg.connect(url, **extra)
        except psycopg.ProgrammingError as exc:  # malformed conninfo
            raise DatabaseUnavailable(f"invalid database URL: {exc}") from exc


def create_pool(url: str, settings: Settings) -> ConnectionPool:
    """A pool created closed; the app lifespan opens it (no database work at import)."""
    return ConnectionPool(
        url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        kwargs=connect_kwargs(settings),
        timeout=settings.db_connect_timeout,
        open=False,
        name="tml",
    )


def ping(conn: psycopg.Connection) -> None:
    """A round trip to the server (raises when it does not answer)."""
    conn.execute(PING_SQL)
