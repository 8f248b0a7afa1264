"""The migration applies to an empty database, is a no-op the second time and is recorded."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from backend.apply_ml_migration import (
    DEFAULT_SQL_PATH,
    MIGRATION_NAME,
    MIGRATION_VERSION,
    apply_migration,
    file_checksum,
    is_applied,
    migration_status,
)
from backend.db.errors import MigrationError
from tests.utils.db_factories import TABLES, VIEWS


def _public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT table_name FROM information_schema.tables "
                         "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
        return {r[0] for r in rows}


def test_applies_to_empty_database_then_is_a_noop(empty_db_url: str) -> None:
    assert _public_tables(empty_db_url) == set()

    first = apply_migration(empty_db_url)
    second = apply_migration(empty_db_url)

    assert first.applied and first.version == MIGRATION_VERSION
    assert first.checksum == file_checksum()
    assert not second.applied and "already applied" in second.message
    with psycopg.connect(empty_db_url) as c:
        recorded = c.execute("SELECT version, name, checksum FROM public.ml_schema_migrations"
                             ).fetchall()
        assert recorded == [(MIGRATION_VERSION, MIGRATION_NAME, file_checksum())]
        assert is_applied(c)


def test_every_table_view_and_index_exists(db_url: str) -> None:
    assert _public_tables(db_url) == TABLES
    with psycopg.connect(db_url) as c:
        views = {r[0] for r in c.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'")}
        # indexes the file creates itself, i.e. not those behind PRIMARY KEY / UNIQUE
        explicit_indexes = {r[0] for r in c.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relnamespace = 'public'::regnamespace "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)")}
        one_active = c.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ml_models_one_active_per_name'"
        ).fetchone()
        trigger = c.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.ml_models'::regclass "
            "AND NOT tgisinternal").fetchall()
    assert views == VIEWS
    assert "ml_models_one_active_per_name" in explicit_indexes
    assert len(explicit_indexes - {"ml_models_one_active_per_name"}) >= 15, explicit_indexes
    assert "UNIQUE" in one_active[0] and "WHERE (status = 'active'::text)" in one_active[0]
    assert trigger == [("ml_models_notify_activated",)]


def test_every_view_can_be_queried_on_an_empty_schema(conn: psycopg.Connection) -> None:
    for view in VIEWS:
        assert conn.execute(f"SELECT * FROM public.{view}").fetchall() == []


def test_status_tracks_the_file_checksum(empty_db_url: str, tmp_path: Path) -> None:
    before = migration_status(empty_db_url)
    assert not before.applied and before.recorded_checksum is None and not before.changed

    apply_migration(empty_db_url)
    after = migration_status(empty_db_url)
    assert after.applied and not after.changed
    assert after.recorded_checksum == after.file_checksum == file_checksum()

    edited = tmp_path / "edited.sql"
    edited.write_text(DEFAULT_SQL_PATH.read_text() + "\n-- a comment added later\n")
    changed = migration_status(empty_db_url, sql_path=edited)
    assert changed.applied and changed.changed
    assert changed.file_checksum == file_checksum(edited) != changed.recorded_checksum


def test_changed_file_is_reapplied_and_its_checksum_recorded(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    edited = tmp_path / "edited.sql"
    edited.write_text(DEFAULT_SQL_PATH.read_text()
                      + "\nCOMMENT ON TABLE public.ml_models IS 'model registry';\n")

    result = apply_migration(db_url, sql_path=edited)

    assert result.applied and "changed" in result.message
    assert any("re-applied" in r.getMessage() for r in caplog.records)
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT checksum FROM public.ml_schema_migrations").fetchone()[0] == (
            file_checksum(edited))
        assert c.execute("SELECT obj_description('public.ml_models'::regclass)"
                         ).fetchone()[0] == "model registry"
    assert not apply_migration(db_url, sql_path=edited).applied


def test_concurrent_starts_apply_once(empty_db_url: str) -> None:
    results = []

    def run() -> None:
        results.append(apply_migration(empty_db_url))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(r.applied for r in results) == [False, False, True]


def test_is_applied_is_false_on_an_empty_database(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url) as c:
        assert not is_applied(c)


def test_records_the_version_for_the_supabase_cli(empty_db_url: str) -> None:
    # The shape the Supabase CLI gives this table (newer CLIs add nullable columns).
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute("CREATE SCHEMA supabase_migrations")
        c.execute("CREATE TABLE supabase_migrations.schema_migrations "
                  "(version text PRIMARY KEY, statements text[], name text)")

    apply_migration(empty_db_url)

    with psycopg.connect(empty_db_url) as c:
        rows = c.execute("SELECT version, name, statements FROM "
                         "supabase_migrations.schema_migrations").fetchall()
    assert [(v, n) for v, n, _ in rows] == [(MIGRATION_VERSION, MIGRATION_NAME)]
    assert rows[0][2] == [DEFAULT_SQL_PATH.read_text()]


# The summary view as migrations before the cv_/holdout_ columns created it (same leading
# columns, then train_*): CREATE OR REPLACE VIEW cannot rename those.
OLD_SUMMARY = """
DROP VIEW public.ml_model_performance_summary;
CREATE VIEW public.ml_model_performance_summary WITH (security_invoker = true) AS
SELECT m.id, m.name, m.version, m.algorithm, m.status, m.created_at, m.activated_at,
       m.n_samples, NULL::double precision AS train_roc_auc,
       NULL::double precision AS train_accuracy, NULL::double precision AS train_precision,
       NULL::double precision AS train_brier, NULL::double precision AS train_log_loss,
       NULL::double precision AS train_base_rate, 0::bigint AS n_predictions
FROM public.ml_models AS m;
UPDATE public.ml_schema_migrations SET checksum = repeat('0', 64);  -- an older file
"""


def _summary_columns(url: str) -> list[str]:
    with psycopg.connect(url) as c:
        return [r[0] for r in c.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "'public' AND table_name = 'ml_model_performance_summary' ORDER BY "
            "ordinal_position").fetchall()]


def test_an_existing_database_gets_the_renamed_view_columns(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(OLD_SUMMARY)
    assert "train_roc_auc" in _summary_columns(db_url)

    assert apply_migration(db_url).applied

    columns = _summary_columns(db_url)
    assert "cv_roc_auc" in columns and "holdout_roc_auc" in columns
    assert not [c for c in columns if c.startswith("train_")]


def test_a_view_of_the_analysts_on_the_summary_stops_the_migration_cleanly(
        db_url: str) -> None:
    """DROP VIEW without CASCADE: an analyst's own view on the summary is never dropped
    silently; the migration fails naming it and changes nothing."""
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(OLD_SUMMARY)
        c.execute("CREATE VIEW public.my_report AS SELECT id, train_roc_auc "
                  "FROM public.ml_model_performance_summary")

    with pytest.raises(MigrationError, match="my_report"):
        apply_migration(db_url)

    assert "train_roc_auc" in _summary_columns(db_url)  # rolled back as a whole
def test_a_database_from_before_request_digests_gets_the_column(db_url: str) -> None:
    """An existing database (its rows kept) gains ml_predictions.request_sha256 when the
    service starts on the new file; its old predictions have none (NULL)."""
    from tests.utils.db_factories import make_model, prediction_row, store_predictions

    with psycopg.connect(db_url, autocommit=True) as c:
        model = make_model(c)
        store_predictions(c, [prediction_row(model.id, trade_id="old-1")])
        c.execute("ALTER TABLE public.ml_predictions DROP COLUMN request_sha256")
        c.execute("UPDATE public.ml_schema_migrations SET checksum = %s", ("0" * 64,))

    assert apply_migration(db_url).applied
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT request_sha256 FROM public.ml_predictions").fetchall() == [
            (None,)]
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("UPDATE public.ml_predictions SET request_sha256 = 'not hex'")
    assert not apply_migration(db_url).applied
