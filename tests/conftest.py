"""Shared fixtures: a real PostgreSQL for every test that needs one.

``TEST_DATABASE_URL`` (or ``DATABASE_URL``) names a server to use; otherwise one embedded
server (pgserver) is started for the session in a temporary directory. Each test that asks
for ``db_url`` gets its own freshly created database, cloned from a migrated template, so
tests never see each other's rows.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backend.db.pool import embedded_url
from tests.utils.pg import create_database, drop_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the bootstrapped service (directly or through another fixture)
    starts a server: mark it, so `make test-fast` (-m "not server") leaves it out. Tests
    that start one themselves carry the marker in their module."""
    starts = {"bootstrap_run", "dashboard_service", "empty_service"}  # fixtures that serve
    for item in items:
        if starts & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    # Not under pytest's basetemp: pgserver runs postgres as user 'pgserver', and pytest
    # resets its root-owned temp root to 0700 when another session starts.
    return embedded_url(Path(tempfile.mkdtemp(prefix="tml-pg-")) / "data")


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A new, empty database (no migration applied)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def migrated_template(pg_admin_url: str) -> str:
    from backend.apply_ml_migration import apply_migration

    name = f"tmpl_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name)
    apply_migration(url)
    return name


@pytest.fixture
def db_url(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    """A new database with the migration applied."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name, template=migrated_template)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a migrated database."""
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c
