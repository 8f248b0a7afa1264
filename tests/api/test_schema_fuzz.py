"""Schemathesis against the live service's OpenAPI schema: no input yields a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.utils.pg import create_database, drop_database
from tests.utils.service import ADMIN_KEY, Service, start_service

pytestmark = pytest.mark.server
schema = schemathesis.pytest.from_fixture("live_schema")


@pytest.fixture(scope="module")
def fuzz_service(pg_admin_url: str, bootstrap_run: dict[str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name, template=bootstrap_run["template"])
    svc = start_service(db_url=url, data_dir=Path(tmp_path_factory.mktemp("fuzz")))
    yield svc
    svc.stop()
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def live_schema(fuzz_service: Service):
    loaded = schemathesis.openapi.from_url(f"{fuzz_service.url}/openapi.json")
    # Training is exercised in test_training_job; fuzzing it would start real jobs.
    return loaded.exclude(path="/api/v1/models/train")


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_input_gives_a_server_error(case) -> None:
    case.call_and_validate(headers={"X-API-Key": ADMIN_KEY}, checks=[not_a_server_error])
