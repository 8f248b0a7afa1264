"""Connection URL resolution (external or embedded Postgres) and the connection pool."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from backend.config import Settings
from backend.db.embedded import embedded_url
from backend.db.errors import DatabaseUnavailable, translate
from backend.redact import redact

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
            # psycopg quotes the part it could not parse, the password included
            raise DatabaseUnavailable(redact(f"invalid database URL: {exc}", url)) from exc


# Health options for every pool of the service. check: a connection is tested before it
# is handed out, so the dead ones a Postgres restart leaves in the pool are discarded, not
# given to requests. reconnect_timeout: psycopg_pool retries a failed connect with a
# doubling delay until this deadline (default 5 min), so after a long outage the next try
# could come minutes after the database is back; 10 s bounds the delay at 4 s (1, 2, 4),
# then the attempt gives up and the next request starts a fresh one.
POOL_HEALTH: dict[str, Any] = {"check": ConnectionPool.check_connection,
                               "reconnect_timeout": 10.0}


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
        **POOL_HEALTH,
    )


def ping(conn: psycopg.Connection) -> None:
    """A round trip to the server (raises when it does not answer)."""
    conn.execute(PING_SQL)
