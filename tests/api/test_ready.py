"""/ready answers at once whatever the database does, recovers right after a restart
(issue 12 item 4), and shows its details only to a key (item 14)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.test_exits import exit_body
from tests.utils.market_slices import predict_body
from tests.utils.pg_outage import OwnPostgres, copy_active_model
from tests.utils.service import BOT_KEY, VIEWER_KEY, Service, start_service

pytestmark = pytest.mark.server

OPEN_FIELDS = {"status", "database", "migration", "model", "writer", "answers_recalled"}
DETAILS = {"queue_depth", "journal_bytes", "rejected", "last_error"}


def _wait_for(svc: Service, field: str, value: str, timeout: float) -> float:
    """Seconds until /ready's ``field`` is ``value`` (polled every 0.1 s)."""
    started = time.monotonic()
    with svc.client(timeout=10) as http:
        while http.get("/ready").json()[field] != value:
            assert time.monotonic() - started < timeout, f"/ready {field} never {value}"
            time.sleep(0.1)
    return time.monotonic() - started


def test_ready_is_ok_after_restarts_and_answers_while_exits_saturate(
        api_db_url: str, tmp_path: Path):
    pg = OwnPostgres(tmp_path / "own-pg")
    url = pg.start()
    try:
        copy_active_model(api_db_url, url)
        svc = start_service(db_url=url, data_dir=tmp_path / "svc")
        try:
            with ThreadPoolExecutor(8) as pool, svc.client(VIEWER_KEY) as http:
                # several pooled connections, every one of them killed by the restart
                grown = list(pool.map(lambda _: http.get("/api/v1/models"), range(24)))
            assert all(r.status_code == 200 for r in grown)
            pg.stop()
            pg.start()
            assert _wait_for(svc, "database", "ok", timeout=5) < 5
            with svc.client(VIEWER_KEY) as http:  # dead pooled connections were discarded
                after = [http.get("/api/v1/models").status_code for _ in range(10)]
            assert after == [200] * 10

            pg.stop()
            _wait_for(svc, "database", "unreachable", timeout=5)
            with svc.client() as http:  # a record for the writer to fail on
                assert http.post("/api/v1/predict", json=predict_body("r-1")).status_code == 200
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            bot = httpx.Client(base_url=svc.url, headers={"X-API-Key": BOT_KEY}, timeout=60,
                               limits=limits)
            with bot, ThreadPoolExecutor(120) as pool:
                exits = [pool.submit(bot.post, "/api/v1/exits", json=exit_body(f"s-{i}"))
                         for i in range(120)]
                time.sleep(1.0)  # every worker thread is now waiting on the database
                in_flight = sum(not f.done() for f in exits)
                started = time.monotonic()
                ready = httpx.get(f"{svc.url}/ready", timeout=30)
                elapsed = time.monotonic() - started
                statuses = [f.result().status_code for f in exits]
            assert in_flight > 40  # more than the thread pool holds: saturated
            assert elapsed < 1.0, f"/ready took {elapsed:.1f} s"
            assert ready.json()["status"] == "degraded"
            assert ready.json()["database"] == "unreachable"
            assert statuses == [503] * 120
            # item 14: the writer's error text (its write of r-1 failed) only behind a key
            with svc.client(VIEWER_KEY) as http:
                deadline = time.monotonic() + 30
                while not (keyed := http.get("/ready").json())["writer"]["last_error"]:
                    assert time.monotonic() < deadline, "the writer never reported an error"
                    time.sleep(0.2)
            with svc.client(key=None) as http:
                anonymous = http.get("/ready")
            for body in (ready.json(), anonymous.json()):
                assert set(body) == OPEN_FIELDS
                assert not DETAILS & set(body["writer"])
            assert keyed["writer"]["last_error"] not in anonymous.text
            assert keyed["database_error"] and keyed["database_error"] not in anonymous.text
            # after that outage the database restarts: ready again within seconds, and
            # the pool serves requests again (its reconnection backoff is bounded)
            pg.start()
            assert _wait_for(svc, "database", "ok", timeout=5) < 5
            assert _wait_for(svc, "status", "ready", timeout=5) < 5
            restarted = time.monotonic()
            with svc.client(VIEWER_KEY) as http:
                while http.get("/api/v1/models").status_code != 200:  # each try waits <= 5 s
                    assert time.monotonic() - restarted < 30, "the pool never reconnected"
                    time.sleep(0.1)
            assert time.monotonic() - restarted < 8, "the pool took more than 8 s to reconnect"
        finally:
            svc.stop()
    finally:
        pg.stop()


def test_ready_details_need_a_key(service: Service):
    with service.client(key=None) as anon, service.client(key="not-a-key-0123456789") as bad:
        open_body, bad_body = anon.get("/ready"), bad.get("/ready")
    with service.client(VIEWER_KEY) as viewer, service.client() as bot:
        keyed = [viewer.get("/ready"), bot.get("/ready")]
    assert open_body.status_code == bad_body.status_code == 200
    for body in (open_body.json(), bad_body.json()):
        assert set(body) == OPEN_FIELDS
        assert body["status"] == "ready" and body["database"] == "ok"
        assert body["migration"] == "applied" and body["model"]["version"] >= 1
        assert body["writer"] == {"alive": True, "healthy": True}
    for r in keyed:
        assert r.status_code == 200
        assert set(r.json()["writer"]) >= DETAILS
        assert r.json()["status"] == "ready"
    assert "last_error" not in json.dumps(open_body.json())
