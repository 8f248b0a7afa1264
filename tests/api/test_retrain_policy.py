"""Continual learning over HTTP (real service, real Postgres, real models): after N
reported outcomes the service retrains on its own; a candidate trained on outcomes with a
planted edge beats the bootstrap model and is promoted, one whose edge flips in the
held-out window is not; the next predictions use the promoted model; every retrain and its
reason are recorded."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from tests.utils.market_slices import predict_body
from tests.utils.pg import count_rows
from tests.utils.service import ADMIN_KEY, BOT_KEY, VIEWER_KEY, Service, start_service

N = 90  # outcomes before the policy retrains
FLIPPED = 25  # the latest outcomes of the "worse" case: the edge inverted (the held-out 20 %)
RETRAIN_ENV = {"TML_RETRAIN_AFTER_OUTCOMES": str(N), "TML_RETRAIN_TRIALS": "3",
               "TML_TRAIN_SEED": "7"}


def _signals(bot: Any) -> list[dict[str, Any]]:
    """N predictions on real EURUSD windows after the bootstrap model's candles (rows
    2600-2960, one every 4 bars), all answered by the bootstrap model."""
    answers = []
    for i in range(N):
        body = predict_body(f"rt-{i:03d}", end=2600 + 4 * i, n=100)
        r = bot.post("/api/v1/predict", json=body)
        assert r.status_code == 200, r.text
        answers.append({**r.json(), "signal_time": body["candles"]["time"][-1]})
    return answers


def _features(db_url: str) -> list[tuple[str, datetime, dict[str, float | None]]]:
    deadline = time.monotonic() + 20
    while count_rows(db_url, "ml_trade_features") < N and time.monotonic() < deadline:
        time.sleep(0.1)
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT trade_id, signal_time, features FROM ml_trade_features "
                            "ORDER BY signal_time").fetchall()


def _wins(rows: list[tuple[str, datetime, dict[str, float | None]]], *,
          flip_latest: int) -> dict[str, bool]:
    """The planted edge: a trade wins when its most varied feature is above the median;
    the ``flip_latest`` latest trades win when it is below."""
    names = [k for k in rows[0][2] if all(r[2].get(k) is not None for r in rows)]
    values = {k: np.array([r[2][k] for r in rows], dtype=float) for k in names}
    feature = max(names, key=lambda k: len(np.unique(values[k])))
    median = float(np.median(values[feature]))
    wins = {}
    for i, (trade_id, _t, feats) in enumerate(rows):
        above = float(feats[feature]) > median  # type: ignore[arg-type]
        wins[trade_id] = above if i < len(rows) - flip_latest else not above
    return wins


def _report_exits(bot: Any, rows: list[tuple[str, datetime, Any]],
                  wins: dict[str, bool]) -> None:
    for trade_id, signal_time, _f in rows:
        entry_time = signal_time.astimezone(UTC) + timedelta(hours=1)
        entry = 1.1000
        exit_price = entry * (1.002 if wins[trade_id] else 0.998)
        r = bot.post("/api/v1/exits", json={
            "trade_id": trade_id, "symbol": "EURUSD", "side": "long",
            "entry_time": entry_time.isoformat(),
            "exit_time": (entry_time + timedelta(hours=2)).isoformat(),
            "entry_price": entry, "exit_price": exit_price, "quantity": 1000,
            "exit_reason": "take_profit" if wins[trade_id] else "stop_loss",
            "initial_stop": entry * 0.996})
        assert r.status_code == 201, r.text


def _retrained(svc: Service) -> dict[str, Any]:
    """Wait for the retrain the last exit started (POST with wait waits for a running one,
    then asks the policy again: not due any more); its record."""
    with svc.client(ADMIN_KEY, timeout=600) as admin:
        r = admin.post("/api/v1/models/retrain", json={"wait": True})
        assert r.status_code == 200, r.text
        answer = r.json()
    assert answer["started"] is False and answer["due"] == [], answer
    assert answer["retrain"] is not None and answer["retrain"]["status"] == "succeeded", answer
    with svc.client(VIEWER_KEY) as viewer:
        listed = viewer.get("/api/v1/models/retrains").json()
    assert listed["count"] == 1, listed
    assert listed["data"][0] == answer["retrain"]
    return answer["retrain"]


def _run(api_db_url: str, tmp_path: Path, *, flip_latest: int) -> tuple[dict, dict, int, Any]:
    svc = start_service(db_url=api_db_url, data_dir=tmp_path / "svc", env=RETRAIN_ENV)
    try:
        with svc.client(BOT_KEY, timeout=60) as bot:
            answers = _signals(bot)
            bootstrap_id = answers[0]["model"]["id"]
            assert {a["model"]["id"] for a in answers} == {bootstrap_id}
            with svc.client(ADMIN_KEY) as admin:  # nothing to retrain on yet
                r = admin.post("/api/v1/models/retrain", json={"wait": True})
                assert r.status_code == 200 and r.json()["started"] is False, r.text
                assert r.json()["check"]["n_outcomes"] == 0
            rows = _features(api_db_url)
            assert len(rows) == N
            _report_exits(bot, rows, _wins(rows, flip_latest=flip_latest))
            record = _retrained(svc)
            after = bot.post("/api/v1/predict", json=predict_body("rt-next", end=2990, n=100))
            assert after.status_code == 200, after.text
            with psycopg.connect(api_db_url) as conn:
                active = conn.execute("SELECT id FROM ml_models WHERE status = 'active'"
                                      ).fetchone()[0]
        return record, after.json(), bootstrap_id, active
    finally:
        svc.stop()


def _check_record(record: dict[str, Any], bootstrap_id: int) -> None:
    assert record["reason"] == "outcomes"
    assert record["requested_by"] == "policy"  # started by the check after the N-th exit
    assert record["n_outcomes"] == N and record["details"]["after_outcomes"] == N
    assert record["active_model_id"] == bootstrap_id
    assert record["candidate_model_id"] not in (None, bootstrap_id)
    assert record["result"]["model_id"] == record["candidate_model_id"]
    assert record["finished_at"] is not None and record["error"] is None


def test_a_better_candidate_is_promoted_and_serves_the_next_predictions(api_db_url,
                                                                        tmp_path: Path):
    record, after, bootstrap_id, active = _run(api_db_url, tmp_path, flip_latest=0)
    _check_record(record, bootstrap_id)
    assert record["promoted"] is True, record["result"]
    assert "better" in record["result"]["reason"]
    assert active == record["candidate_model_id"]
    assert after["model"]["id"] == record["candidate_model_id"]  # the bot's next answer


def test_a_worse_candidate_is_recorded_and_not_promoted(api_db_url, tmp_path: Path):
    record, after, bootstrap_id, active = _run(api_db_url, tmp_path, flip_latest=FLIPPED)
    _check_record(record, bootstrap_id)
    assert record["promoted"] is False, record["result"]
    assert "not better" in record["result"]["reason"]
    assert active == bootstrap_id
    assert after["model"]["id"] == bootstrap_id
