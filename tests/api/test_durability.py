"""Nothing accepted is lost: a SIGKILL with records queued, and a database outage."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.utils.market_slices import predict_body
from tests.utils.pg import count_rows, wait_for_rows
from tests.utils.pg_outage import OwnPostgres, copy_active_model
from tests.utils.service import BOT_KEY, start_service

KEY = {"X-API-Key": BOT_KEY}  # /ready's details (the writer's queue) need a key


def test_sigkill_with_queued_records_loses_nothing(api_db_url: str, tmp_path: Path):
    data_dir = tmp_path / "svc"
    # A long flush interval keeps every accepted record queued when the process dies.
    slow = {"TML_WRITER_FLUSH_SECONDS": "3600", "TML_WRITER_BATCH_SIZE": "100000"}
    svc = start_service(db_url=api_db_url, data_dir=data_dir, env=slow)
    ids = [f"k-{i}" for i in range(40)]
    with svc.client() as http:
        answers = [http.post("/api/v1/predict", json=predict_body(trade_id, end=1500 + 11 * i))
                   for i, trade_id in enumerate(ids)]
    assert all(a.status_code == 200 for a in answers)
    first_id = answers[0].json()["prediction_id"]
    svc.kill()
    assert count_rows(api_db_url, "ml_predictions") == 0  # still only in the journal
    svc2 = start_service(db_url=api_db_url, data_dir=data_dir)
    try:
        # the journal is replayed, and its answers are remembered for repeated trade_ids
        with svc2.client() as http:
            again = http.post("/api/v1/predict", json=predict_body(ids[0], end=1500)).json()
        assert again["duplicate"] is True and again["prediction_id"] == first_id
        assert wait_for_rows(api_db_url, "ml_predictions", len(ids)) == len(ids)
    finally:
        svc2.stop()
    svc3 = start_service(db_url=api_db_url, data_dir=data_dir)
    svc3.stop()
    assert count_rows(api_db_url, "ml_predictions") == len(ids)
    assert count_rows(api_db_url, "ml_trade_features") == len(ids)
    with psycopg.connect(api_db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT trade_id FROM ml_predictions")}
    assert stored == set(ids)


def test_database_outage_predictions_continue_and_all_land_once(
        api_db_url: str, tmp_path: Path):
    pg = OwnPostgres(tmp_path / "own-pg")
    url = pg.start()
    try:
        copy_active_model(api_db_url, url)
        svc = start_service(db_url=url, data_dir=tmp_path / "svc")
        try:
            with svc.client(timeout=10) as http:
                for i in range(10):
                    assert http.post("/api/v1/predict",
                                     json=predict_body(f"o-{i}", end=1500 + i)).status_code == 200
                assert wait_for_rows(url, "ml_predictions", 10) == 10
                pg.stop()
                started = time.monotonic()
                for i in range(10, 40):
                    r = http.post("/api/v1/predict", json=predict_body(f"o-{i}", end=1500 + i))
                    assert r.status_code == 200, r.text
                outage_seconds = time.monotonic() - started
                # the readiness probe runs every second: it sees the outage within ~2 s
                deadline = time.monotonic() + 5
                while (ready := http.get("/ready", headers=KEY).json())["status"] != "degraded":
                    assert time.monotonic() < deadline, ready
                    time.sleep(0.1)
                assert ready["database"] == "unreachable"
                assert ready["writer"]["queue_depth"] > 0
                pg.start()
                assert wait_for_rows(url, "ml_predictions", 40, timeout=60) == 40
            assert outage_seconds < 10  # predictions did not wait on the database
        finally:
            svc.stop()
        assert count_rows(url, "ml_predictions") == 40
        assert count_rows(url, "ml_trade_features") == 40
        assert count_rows(url, "ml_predictions", "trade_id LIKE 'o-%%'") == 40
    finally:
        pg.stop()




def test_restart_during_an_outage_still_remembers_repeated_trade_ids(
        api_db_url: str, tmp_path: Path):
    """The service restarts while the database is down; once it is back, a repeated
    trade_id still gets its stored answer (the recall is retried by the model watcher)."""
    pg = OwnPostgres(tmp_path / "own-pg")
    url = pg.start()
    data_dir = tmp_path / "svc"
    try:
        copy_active_model(api_db_url, url)
        svc = start_service(db_url=url, data_dir=data_dir)
        with svc.client() as http:
            first = http.post("/api/v1/predict", json=predict_body("rc-1")).json()
        assert wait_for_rows(url, "ml_predictions", 1) == 1
        svc.stop()
        pg.stop()
        svc2 = start_service(db_url=url, data_dir=data_dir, wait_ready=False)
        try:
            pg.start()
            deadline = time.monotonic() + 30
            with svc2.client() as http:
                # "ready", not only 200: degraded (the local model copy) answers 200 too
                while http.get("/ready").json().get("status") != "ready":
                    assert time.monotonic() < deadline, "the service never became ready"
                    time.sleep(0.2)
                again = http.post("/api/v1/predict",
                                  json=predict_body("rc-1")).json()
        finally:
            svc2.stop()
        assert again["duplicate"] is True
        assert again["prediction_id"] == first["prediction_id"]
        assert count_rows(url, "ml_predictions") == 1
    finally:
        pg.stop()
