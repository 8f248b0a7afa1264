"""Exit endpoints over HTTP: advice for an open position; recording a closed one labels the
signal and resolves its predictions, once."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.utils.market_slices import candles_columns, predict_body, sample
from tests.utils.pg import count_rows
from tests.utils.service import start_service


def exit_body(trade_id: str, *, exit_price: float = 1.0800, **extra) -> dict:
    return {"trade_id": trade_id, "symbol": "EURUSD", "side": "long",
            "entry_time": "2024-01-01T09:00:00Z", "exit_time": "2024-01-01T15:00:00Z",
            "entry_price": 1.0700, "exit_price": exit_price, "quantity": 10000,
            "exit_reason": "take_profit", "initial_stop": 1.0650, **extra}


def wait_until(fn, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    return fn()


def _labels(db_url: str, trade_id: str):
    with psycopg.connect(db_url) as conn:
        f = conn.execute("SELECT label, realized_pnl FROM ml_trade_features WHERE trade_id = %s",
                         (trade_id,)).fetchone()
        p = conn.execute("SELECT outcome, resolved_at FROM ml_predictions WHERE trade_id = %s",
                         (trade_id,)).fetchall()
    return f, p


def test_recording_an_exit_labels_and_resolves_once(service, api_db_url):
    with service.client() as http:
        assert http.post("/api/v1/predict", json=predict_body("x-1")).status_code == 200
        wait_until(lambda: count_rows(api_db_url, "ml_predictions") == 1)
        first = http.post("/api/v1/exits", json=exit_body("x-1"))
        again = http.post("/api/v1/exits", json=exit_body("x-1"))
        other = http.post("/api/v1/exits", json=exit_body("x-1", exit_price=1.0600))
    assert first.status_code == 201 and first.json()["created"] is True
    assert other.status_code == 409 and other.json()["exit_id"] == first.json()["id"]
    # pnl = (1.08 - 1.07) * 10000 = 100; R = 100 / (0.005 * 10000) = 2
    assert abs(first.json()["pnl"] - 100.0) < 1e-6
    assert abs(first.json()["r_multiple"] - 2.0) < 1e-9
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["exit_price"] == 1.0800
    assert count_rows(api_db_url, "position_exits", "exit_price = 1.08") == 1  # other: no change
    feature, preds = _labels(api_db_url, "x-1")
    assert feature == (1, first.json()["pnl"])
    assert [p[0] for p in preds] == [1] and preds[0][1] is not None
    assert count_rows(api_db_url, "position_exits") == 1


def test_exit_reported_before_the_signal_rows_land_still_labels_them(api_db_url, tmp_path: Path):
    slow = {"TML_WRITER_FLUSH_SECONDS": "3600", "TML_WRITER_BATCH_SIZE": "100000"}
    svc = start_service(db_url=api_db_url, data_dir=tmp_path / "svc", env=slow)
    try:
        with svc.client() as http:
            assert http.post("/api/v1/predict", json=predict_body("x-2")).status_code == 200
            r = http.post("/api/v1/exits", json=exit_body("x-2", exit_price=1.0680))
            assert r.status_code == 201
    finally:
        svc.stop()  # shutdown flushes the queue
    feature, preds = _labels(api_db_url, "x-2")
    assert feature is not None and feature[0] == 0  # a loss
    assert [p[0] for p in preds] == [0]


def test_bad_exit_is_422_and_changes_nothing(service, api_db_url):
    with service.client() as http:
        bad_time = http.post("/api/v1/exits", json=exit_body(
            "x-3", exit_time="2024-01-01T08:00:00Z"))
        bad_reason = http.post("/api/v1/exits", json=exit_body("x-3", exit_reason="panic"))
        bad_price = http.post("/api/v1/exits", json=exit_body("x-3", exit_price=-1))
    for r in (bad_time, bad_reason, bad_price):
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["msg"]
    assert "exit_reason" in bad_reason.json()["detail"][0]["loc"]
    assert count_rows(api_db_url, "position_exits") == 0


def test_exit_advice_on_real_candles(service):
    c = sample("EURUSD").head(1700).tail(130)
    entry_time = int(c.time[100])
    entry = float(c.close[99])
    body = {"trade_id": "x-4", "symbol": "EURUSD", "side": "long",
            "entry_time": entry_time, "entry_price": entry, "quantity": 1000,
            "initial_stop": entry * 0.995, "candles": candles_columns(c)}
    with service.client() as http:
        r = http.post("/api/v1/exits/evaluate", json=body)
        short = http.post("/api/v1/exits/evaluate", json={**body, "side": "short"})
    assert r.status_code == 200, r.text
    advice = r.json()
    assert advice["action"] in {"hold", "exit", "update_stop", "take_partial"}
    assert advice["policy"] == "combined"
    assert advice["stop"] >= body["initial_stop"]  # a stop only ever tightens
    assert advice["mfe"] >= 0 and advice["mae"] >= 0
    assert short.status_code == 422  # a short's stop below its entry is on the wrong side
