"""One real service (on a clone of the bootstrap-model database) for the client tests: the
client package is imported from client/ (its own pyproject), as a bot installs it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import bootstrap_run  # noqa: F401 - the shared model database
from tests.utils.pg import create_database, drop_database
from tests.utils.service import Service, start_service

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))


@pytest.fixture(scope="module")
def client_db_url(pg_admin_url: str, bootstrap_run: dict[str, str]) -> Iterator[str]:  # noqa: F811
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name, template=bootstrap_run["template"])
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def service(client_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(db_url=client_db_url, data_dir=tmp_path_factory.mktemp("svc"))
    yield svc
    svc.stop()
