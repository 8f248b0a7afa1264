"""Create and drop throw-away databases on the test server."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql


def with_dbname(url: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(stmt)
    return with_dbname(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        conn.execute(stmt)


def count_rows(db_url: str, table: str, where: str = "TRUE", params: tuple = ()) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute(f"SELECT count(*) FROM public.{table} WHERE {where}",
                            params).fetchone()[0]


def wait_for_rows(db_url: str, table: str, expected: int, timeout: float = 30.0) -> int:
    """Poll until ``table`` has at least ``expected`` rows (the writer is asynchronous);
    returns the last count, so the caller asserts the exact figure."""
    deadline = time.monotonic() + timeout
    n = count_rows(db_url, table)
    while n < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        n = count_rows(db_url, table)
    return n
