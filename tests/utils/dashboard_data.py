"""A service with something to show, made through its own API: predictions on real
candles, exits that resolve them, a second model trained and activated, the tracker run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.utils.market_slices import predict_body
from tests.utils.pg import wait_for_rows
from tests.utils.service import ADMIN_KEY, BOT_KEY, Service

# (exit reason, wins?) of the reported trades: several reasons, wins and losses.
EXITS = [("take_profit", True), ("stop_loss", False), ("take_profit", True),
         ("trailing_stop", True), ("stop_loss", False), ("time_stop", False),
         ("take_profit", True), ("manual", True), ("stop_loss", False), ("ml_exit", False)]
N_FIRST = 12  # predictions of the first (bootstrap) model; the first len(EXITS) close
N_SECOND = 3  # predictions of the second model, still open


def _poll_job(http: Any, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} still running")


def _signal(trade_id: str, i: int) -> dict[str, Any]:
    body = predict_body(trade_id, end=1500 + 41 * i, side="short" if i % 3 == 0 else "long",
                        explain=True)
    if i % 4 == 1:
        body["symbol"] = "GBPUSD"  # a second symbol for the filter (same candles)
    return body


def _exit(trade_id: str, i: int, side: str, symbol: str, reason: str, win: bool,
          now: datetime) -> dict[str, Any]:
    entry_time = now - timedelta(days=len(EXITS) - i, hours=3)
    entry, risk = 1.0700, 0.0050
    move = (0.0040 + 0.0010 * i) * (1 if win else -1) * (1 if side == "long" else -1)
    return {"trade_id": trade_id, "symbol": symbol, "side": side,
            "entry_time": entry_time.isoformat(),
            "exit_time": (entry_time + timedelta(hours=2 + i)).isoformat(),
            "entry_price": entry, "exit_price": round(entry + move, 5), "quantity": 10000,
            "exit_reason": reason,
            "initial_stop": entry - risk if side == "long" else entry + risk}


def populate(svc: Service, db_url: str, *, second_model: bool = True) -> dict[str, Any]:
    """Fill the service's database through its API; returns the trade ids and model ids."""
    now = datetime.now(UTC)
    first = [f"dash-a-{i}" for i in range(N_FIRST)]
    with svc.client(BOT_KEY, timeout=120) as bot, svc.client(ADMIN_KEY, timeout=120) as admin:
        bodies = [_signal(t, i) for i, t in enumerate(first)]
        for body in bodies:
            r = bot.post("/api/v1/predict", json=body)
            assert r.status_code == 200, r.text
        wait_for_rows(db_url, "ml_predictions", N_FIRST)
        wait_for_rows(db_url, "ml_trade_features", N_FIRST)
        for i, (reason, win) in enumerate(EXITS):
            b = bodies[i]
            r = bot.post("/api/v1/exits", json=_exit(b["trade_id"], i, b["side"], b["symbol"],
                                                     reason, win, now))
            assert r.status_code == 201, r.text
        assert admin.post("/api/v1/performance/refresh").status_code == 200
        ids: dict[str, Any] = {"first": first, "second": []}
        if second_model:
            r = admin.post("/api/v1/models/train", data={
                "sample": "GOOG", "trials": "1", "seed": "3", "use_database": "false",
                "promote": "false"})
            assert r.status_code == 202, r.text
            job = _poll_job(admin, r.json()["job_id"])
            assert job["status"] == "succeeded", job
            new_id = job["result"]["model_id"]
            r = admin.post(f"/api/v1/models/{new_id}/activate")
            assert r.status_code == 200, r.text
            ids["second"] = [f"dash-b-{i}" for i in range(N_SECOND)]
            for i, t in enumerate(ids["second"]):
                r = bot.post("/api/v1/predict", json=_signal(t, N_FIRST + i))
                assert r.status_code == 200, r.text
                assert r.json()["model"]["id"] == new_id, r.json()
            wait_for_rows(db_url, "ml_predictions", N_FIRST + N_SECOND)
            assert admin.post("/api/v1/performance/refresh").status_code == 200
            ids["second_model_id"] = new_id
    return ids
