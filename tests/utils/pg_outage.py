"""A PostgreSQL of a test's own that the test can stop and start (a real outage)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import psycopg

from backend.apply_ml_migration import apply_migration


class OwnPostgres:
    """pgserver in a private data directory; ``stop`` really shuts the server down."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.url: str | None = None

    def start(self) -> str:
        import pgserver
        from pgserver.postgres_server import PostgresServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        PostgresServer._instances.pop(self.data_dir, None)  # force a fresh start
        server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        first = self.url is None
        self.url = server.get_uri()
        if first:
            apply_migration(self.url)
        return self.url

    def stop(self) -> None:
        from pgserver import pg_ctl

        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir,
                   user="pgserver" if _running_as_root() else None)


def _running_as_root() -> bool:
    import os

    return os.geteuid() == 0


def copy_active_model(src_url: str, dst_url: str) -> int:
    """Copy the active model row (artifact included) from one database to another."""
    with psycopg.connect(src_url) as src:
        cur = src.execute("SELECT * FROM ml_models WHERE status = 'active'")
        cols = [d.name for d in cur.description]
        row = cur.fetchone()
    assert row is not None, "source database has no active model"
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    from psycopg.types.json import Jsonb

    values = [Jsonb(v) if isinstance(v, dict | list) else v for v in row]
    with psycopg.connect(dst_url) as dst:
        dst.execute(f"INSERT INTO ml_models ({names}) OVERRIDING SYSTEM VALUE VALUES ({marks})",
                    values)
        dst.execute("SELECT setval(pg_get_serial_sequence('ml_models', 'id'), "
                    "(SELECT max(id) FROM ml_models))")
    return row[cols.index("id")]
