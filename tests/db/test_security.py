"""Supabase-clean schema: RLS on every table, security_invoker views, grants by role."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors as pg

from backend.apply_ml_migration import apply_migration
from backend.db import position_exits
from tests.utils.db_factories import TABLES, VIEWS, exit_row, make_model

SUPABASE_ROLES = ("anon", "authenticated", "service_role")


def _rls_and_invoker(conn: psycopg.Connection) -> tuple[dict[str, bool], dict[str, list[str]]]:
    rls = dict(conn.execute(
        "SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r'").fetchall())
    options = dict(conn.execute(
        "SELECT relname, coalesce(reloptions, '{}') FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind = 'v'").fetchall())
    return rls, options


def test_plain_postgres_rls_on_every_table_and_invoker_views(conn: psycopg.Connection) -> None:
    rls, options = _rls_and_invoker(conn)

    assert rls == dict.fromkeys(TABLES, True)
    assert options == {view: ["security_invoker=true"] for view in VIEWS}
    # the grant block creates policies only for a service_role that exists (roles are
    # cluster-wide: a server shared with the Supabase-like tests below may have it)
    has_service_role = conn.execute(
        "SELECT count(*) FROM pg_roles WHERE rolname = 'service_role'").fetchone()[0]
    policies = conn.execute("SELECT count(*) FROM pg_policies").fetchone()[0]
    assert policies == (len(TABLES) if has_service_role else 0)


@pytest.fixture
def supabase_like_url(empty_db_url: str) -> Iterator[str]:
    """A database prepared like Supabase before the migration: its roles exist and default
    privileges grant anon/authenticated everything on new tables in public."""
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        for role in SUPABASE_ROLES:  # cluster-wide: create once, never drop (others may use)
            c.execute(f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                      "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        c.execute("GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role")
        c.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                  "GRANT ALL ON TABLES TO anon, authenticated, service_role")
    apply_migration(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        model = make_model(c)
        position_exits.insert(c, exit_row())
        c.execute("INSERT INTO public.ml_performance (date, model_id, n_predictions, "
                  "n_resolved, n_taken) VALUES ('2026-01-05', %s, 1, 0, 0)", (model.id,))
    yield empty_db_url


def _select_as(url: str, role: str, relation: str) -> list[tuple]:
    with psycopg.connect(url) as c:  # one transaction, rolled back: SET LOCAL ROLE ends with it
        c.execute(f"SET LOCAL ROLE {role}")
        return c.execute(f"SELECT * FROM public.{relation}").fetchall()


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_anon_and_authenticated_cannot_read_anything(supabase_like_url: str, role: str) -> None:
    for relation in sorted(TABLES | VIEWS):
        with pytest.raises(pg.InsufficientPrivilege):
            _select_as(supabase_like_url, role, relation)


def test_rls_hides_rows_even_when_a_grant_slips_through(supabase_like_url: str) -> None:
    with psycopg.connect(supabase_like_url, autocommit=True) as c:
        c.execute("GRANT SELECT ON public.ml_models, public.position_exits TO authenticated")

    assert _select_as(supabase_like_url, "authenticated", "ml_models") == []
    assert _select_as(supabase_like_url, "authenticated", "position_exits") == []


def test_views_check_the_callers_rights_on_the_tables(supabase_like_url: str) -> None:
    with psycopg.connect(supabase_like_url, autocommit=True) as c:
        c.execute("GRANT SELECT ON public.daily_exit_performance TO anon")

    # the view is readable now, but it runs as anon, who may not read position_exits
    with pytest.raises(pg.InsufficientPrivilege, match="position_exits"):
        _select_as(supabase_like_url, "anon", "daily_exit_performance")


def test_service_role_reads_tables_and_views(supabase_like_url: str) -> None:
    assert len(_select_as(supabase_like_url, "service_role", "ml_models")) == 1
    assert len(_select_as(supabase_like_url, "service_role", "position_exits")) == 1
    assert len(_select_as(supabase_like_url, "service_role", "ml_performance")) == 1
    summary = _select_as(supabase_like_url, "service_role", "ml_model_performance_summary")
    daily = _select_as(supabase_like_url, "service_role", "daily_exit_performance")
    assert len(summary) == 1 and len(daily) == 1


def test_service_role_policy_is_created_once(supabase_like_url: str) -> None:
    apply_migration(supabase_like_url)  # no-op (same checksum)
    with psycopg.connect(supabase_like_url) as c:
        c.execute("DELETE FROM public.ml_schema_migrations")  # force a real second run
        c.commit()
    assert apply_migration(supabase_like_url).applied

    with psycopg.connect(supabase_like_url) as c:
        policies = c.execute("SELECT tablename, policyname, roles FROM pg_policies "
                             "ORDER BY tablename").fetchall()
    assert policies == [(t, "service_role_all", ["service_role"]) for t in sorted(TABLES)]
