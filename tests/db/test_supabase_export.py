"""``apply_ml_migration.py --export-supabase DIR``: the Supabase CLI layout, the same SQL."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from backend.apply_ml_migration import (
    DEFAULT_SQL_PATH,
    apply_migration,
    file_checksum,
    main,
    migration_status,
)
from tests.utils.db_factories import TABLES, VIEWS


def test_writes_the_migration_in_the_supabase_cli_layout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--export-supabase", str(tmp_path)]) == 0

    written = list((tmp_path / "supabase" / "migrations").iterdir())
    assert len(written) == 1 and str(written[0]) in capsys.readouterr().out
    match = re.fullmatch(r"(\d{14})_ml_tables\.sql", written[0].name)
    assert match  # <14-digit UTC timestamp>_<name>.sql, what `supabase migration new` makes
    datetime.strptime(match[1], "%Y%m%d%H%M%S")  # a real date and time
    text = written[0].read_text()
    assert text.startswith(DEFAULT_SQL_PATH.read_text().rstrip("\n"))
    assert file_checksum() in text  # recorded with the source file's checksum


def test_the_exported_file_applied_like_supabase_db_push_counts_as_applied(
        empty_db_url: str, tmp_path: Path) -> None:
    main(["--export-supabase", str(tmp_path)])
    exported = next((tmp_path / "supabase" / "migrations").glob("*.sql")).read_text()

    # what the Supabase CLI does with a migration file: its statements in one transaction
    with psycopg.connect(empty_db_url) as conn, conn.transaction():
        conn.execute(exported)

    status = migration_status(empty_db_url)
    assert status.applied and not status.changed
    assert not apply_migration(empty_db_url).applied  # the service will not re-run it
    with psycopg.connect(empty_db_url) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert names >= TABLES | VIEWS


def test_export_needs_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["--export-supabase", str(tmp_path / "out")]) == 0
