"""A restart while the database is down serves the verified local copy of the active model
(issue 12 item 3); a corrupted copy is refused, logged, and the service stays up."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from backend.db import models as models_db
from backend.ml import model_cache
from tests.utils.market_slices import predict_body
from tests.utils.pg import wait_for_rows
from tests.utils.pg_outage import OwnPostgres, copy_active_model
from tests.utils.service import Service, start_service

pytestmark = pytest.mark.server

# a quick start while the database is away (the migration and first load give up sooner)
DOWN = {"TML_DB_CONNECT_TIMEOUT": "1"}

COPY_SQL = """
INSERT INTO ml_models (name, version, algorithm, feature_names, feature_set_version,
    hyperparameters, metrics, training_distribution, train_start, train_end, n_samples,
    artifact, artifact_format, artifact_sha256, notes)
SELECT name, version + 1, algorithm, feature_names, feature_set_version, hyperparameters,
    metrics, training_distribution, train_start, train_end, n_samples, artifact,
    artifact_format, artifact_sha256, 'newer' FROM ml_models WHERE id = %s
RETURNING id
"""


def _served_model(svc: Service, trade_id: str) -> tuple[int, dict]:
    with svc.client(timeout=15) as http:
        r = http.post("/api/v1/predict", json=predict_body(trade_id))
    return r.status_code, r.json()


def _wait_for_model(svc: Service, model_id: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    served = -1
    for i in range(10_000):
        status, body = _served_model(svc, f"w-{model_id}-{i}")
        served = body["model"]["id"] if status == 200 else -1
        if served == model_id or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    return served


def test_restart_during_an_outage_serves_the_local_copy_then_the_watcher_takes_over(
        api_db_url: str, tmp_path: Path):
    pg = OwnPostgres(tmp_path / "own-pg")
    url = pg.start()
    data_dir = tmp_path / "svc"
    try:
        model_id = copy_active_model(api_db_url, url)
        svc = start_service(db_url=url, data_dir=data_dir)
        status, body = _served_model(svc, "c-1")
        svc.stop()
        assert status == 200 and body["model"]["id"] == model_id
        copy = model_cache.copy_path(data_dir, "default")
        assert copy.stat().st_mode & 0o777 == 0o600
        assert copy.parent.stat().st_mode & 0o777 == 0o700

        pg.stop()
        svc2 = start_service(db_url=url, data_dir=data_dir, env=DOWN, timeout=90)
        try:
            status, body = _served_model(svc2, "c-2")
            assert status == 200, body
            assert body["model"]["id"] == model_id
            with svc2.client() as http:
                ready = http.get("/ready").json()
            assert ready["status"] == "degraded" and ready["database"] == "unreachable"
            assert ready["writer"]["queue_depth"] >= 1  # journaled, not lost
            assert "local copy" in svc2.log()

            pg.start()
            assert wait_for_rows(url, "ml_predictions", 2, timeout=60) == 2
            # the watcher takes over: a newer active model replaces the copy
            with psycopg.connect(url, autocommit=True) as conn:
                newer = conn.execute(COPY_SQL, (model_id,)).fetchone()[0]
                models_db.activate(conn, model_id=newer, activated_by="test")
            assert _wait_for_model(svc2, newer) == newer
        finally:
            svc2.stop()
        assert model_cache.read_copy(data_dir, "default").id == newer
    finally:
        pg.stop()


def test_a_corrupted_local_copy_is_refused_and_logged_not_served(
        api_db_url: str, tmp_path: Path):
    pg = OwnPostgres(tmp_path / "own-pg")
    url = pg.start()
    data_dir = tmp_path / "svc"
    try:
        copy_active_model(api_db_url, url)
        start_service(db_url=url, data_dir=data_dir).stop()
    finally:
        pg.stop()
    copy = model_cache.copy_path(data_dir, "default")
    data = bytearray(copy.read_bytes())
    data[-10] ^= 0xFF  # one flipped bit pattern inside the artifact
    copy.write_bytes(bytes(data))
    svc = start_service(db_url=url, data_dir=data_dir, env=DOWN, wait_ready=False, timeout=90)
    try:
        deadline = time.monotonic() + 30
        while "no model loaded" not in svc.log():  # start-up has given the database up
            assert time.monotonic() < deadline, svc.log()
            time.sleep(0.2)
        status, body = _served_model(svc, "x-1")
        assert status == 503 and body["detail"] == "no active model"
        assert svc.proc.poll() is None  # still serving, not crashed
        assert "refusing the local copy" in svc.log()
    finally:
        svc.stop()
