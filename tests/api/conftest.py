"""API fixtures: a database holding an active model trained at first start (the real
bootstrap path, on a slice of real EURUSD candles), cloned for each test, and the real
service running over HTTP against it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.market_slices import write_slice
from tests.utils.pg import create_database, drop_database
from tests.utils.service import Service, start_service


@pytest.fixture(scope="session")
def bootstrap_run(pg_admin_url: str, migrated_template: str,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Start the service once with bootstrap on: it trains, registers and activates a model.
    The database it leaves behind becomes the template of every API test database."""
    name = f"model_tmpl_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name, template=migrated_template)
    data_dir = tmp_path_factory.mktemp("bootstrap")
    candles = write_slice(data_dir / "eurusd_slice.csv", "EURUSD", 0, 2500)
    svc = start_service(db_url=url, data_dir=data_dir, env={
        "TML_BOOTSTRAP_ON_START": "true", "TML_BOOTSTRAP_CANDLES": str(candles),
        "TML_BOOTSTRAP_TRIALS": "2"}, timeout=300)
    log = svc.log()
    svc.stop()
    return {"template": name, "url": url, "log": log}


@pytest.fixture
def api_db_url(pg_admin_url: str, bootstrap_run: dict[str, str]) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name, template=bootstrap_run["template"])
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def service(api_db_url: str, tmp_path: Path) -> Iterator[Service]:
    svc = start_service(db_url=api_db_url, data_dir=tmp_path / "svc")
    yield svc
    svc.stop()



@pytest.fixture(scope="session")
def dashboard_service(pg_admin_url: str, bootstrap_run: dict[str, str],
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A service whose database has two models, predictions, outcomes, exits and daily
    figures, all made through its API (tests/utils/dashboard_data.py); read-only for tests."""
    from tests.utils.dashboard_data import populate

    name = f"dash_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name, template=bootstrap_run["template"])
    svc = start_service(db_url=url, data_dir=tmp_path_factory.mktemp("dashboard"))
    try:
        ids = populate(svc, url)
        yield {"service": svc, "db_url": url, **ids}
    finally:
        svc.stop()
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def empty_service(pg_admin_url: str, migrated_template: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A fresh install: migrated database, no model, nothing served yet."""
    name = f"empty_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name, template=migrated_template)
    svc = start_service(db_url=url, data_dir=tmp_path_factory.mktemp("empty"),
                        wait_ready=False)
    try:
        yield {"service": svc, "db_url": url}
    finally:
        svc.stop()
        drop_database(pg_admin_url, name)
