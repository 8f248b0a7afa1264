"""Continual learning driven by a freqtrade backtest (``retrain: true``): after every 3
outcomes the bot reports, the service retrains (with the bootstrap candles) and the bot
waits; each retrain is recorded with its reason, and every entry asked afterwards is
answered by the model active at that moment (the promoted candidate, or the one kept)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.integrations.freqtrade_run import backtest
from tests.utils.market_slices import write_slice
from tests.utils.service import ADMIN_KEY, start_service

EVERY = 3


def test_the_bot_learns_from_its_outcomes(api_db_url, freqtrade_python, ft_datadir,
                                          tmp_path: Path):
    candles = write_slice(tmp_path / "eurusd.csv", "EURUSD", 0, 2500)  # the bootstrap's
    svc = start_service(db_url=api_db_url, data_dir=tmp_path / "svc", env={
        "TML_RETRAIN_AFTER_OUTCOMES": str(EVERY), "TML_RETRAIN_WITH_BOOTSTRAP": "true",
        "TML_BOOTSTRAP_CANDLES": str(candles), "TML_RETRAIN_TRIALS": "2"})
    try:
        with psycopg.connect(api_db_url) as conn:
            bootstrap = conn.execute("SELECT id FROM ml_models WHERE status = 'active'"
                                     ).fetchone()[0]
        # observe: every entry is taken, so every signal becomes an outcome
        run = backtest(freqtrade_python, tmp_path / "ft", ft_datadir,
                       tml={"url": svc.url, "entry": "observe", "retrain": True},
                       env={"TML_ADMIN_API_KEY": ADMIN_KEY}, timeout=900)
        with psycopg.connect(api_db_url) as conn:
            rows = conn.execute(
                "SELECT id, reason, n_outcomes, status, promoted, active_model_id, "
                "candidate_model_id, requested_by FROM ml_retrains ORDER BY id").fetchall()
    finally:
        svc.stop()
    assert len(run.exits) >= 2 * EVERY, len(run.exits)
    assert all(e["recorded"] for e in run.exits)
    assert len(rows) == len(run.exits) // EVERY
    assert all(r[1] == "outcomes" and r[2] == EVERY and r[3] == "succeeded" for r in rows)
    # the bot waited for each retrain: the exit that crossed the count logged it
    logged = [e["retrain"] for e in run.exits if e["retrain"] and e["retrain"]["new"]]
    assert [x["id"] for x in logged] == [r[0] for r in rows]
    assert [x["promoted"] for x in logged] == [r[4] for r in rows]
    # every answer came from the model active when it was asked
    active, seen = bootstrap, []
    for event in run.events:
        if event["event"] == "entry":
            assert event["answer"]["model"]["id"] == active, (event, rows)
            seen.append(active)
        elif event["retrain"] and event["retrain"]["new"]:
            retrain = next(r for r in rows if r[0] == event["retrain"]["id"])
            assert retrain[5] == active  # it was compared with the model then active
            if retrain[4]:
                active = retrain[6]
    assert seen[0] == bootstrap
