"""A freqtrade backtest (offline runner, the converted EURUSD sample) driving the real
service over HTTP: every entry asked is a prediction row, every closed trade a
position_exits row that labels its signal; the service going away mid-run refuses entries
(fail closed, one warning) or takes them (fail open)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from tests.api.test_training_job import poll_job
from tests.integrations.freqtrade_run import Run, backtest, trade_key
from tests.utils.pg import count_rows
from tests.utils.service import ADMIN_KEY, Service, start_service
from tests.utils.synthetic import rsi_driven_candles

OUTAGE_STRATEGIES = Path(__file__).parent / "strategies"
UNREACHABLE = "TML service unreachable"


def _wait_rows(db_url: str, table: str, n: int, timeout: float = 15.0) -> int:
    import time
    deadline = time.monotonic() + timeout
    while count_rows(db_url, table) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return count_rows(db_url, table)


def _open_time(signal_time: str) -> str:
    """A signal on candle T enters at the open of T + 1h (freqtrade's trade open_date)."""
    opened = datetime.fromisoformat(signal_time) + timedelta(hours=1)
    return opened.strftime("%Y-%m-%d %H:%M:%S+00:00")


def _train_and_activate(svc: Service, tmp_path: Path) -> int:
    """A model that tells signals apart, activated. The sample candles hold no edge, so a
    model trained on them calibrates to one probability for every signal (the bootstrap
    model is constant too); this one learns the planted RSI edge of synthetic candles, and
    its calibrated probabilities on the EURUSD signals of the backtest differ."""
    csv = tmp_path / "rsi_driven.csv"
    rsi_driven_candles(4000, seed=11).to_frame().to_csv(csv)
    with svc.client(key=ADMIN_KEY, timeout=120) as http:
        with open(csv, "rb") as fh:
            r = http.post("/api/v1/models/train", files={"file": ("rsi.csv", fh, "text/csv")},
                          data={"trials": "3", "seed": "5", "use_database": "false",
                                "promote": "false"})
        assert r.status_code == 202, r.text
        job = poll_job(http, r.json()["job_id"])
        assert job["status"] == "succeeded", job
        model_id = job["result"]["model_id"]
        assert http.post(f"/api/v1/models/{model_id}/activate").status_code == 200
    return model_id


def test_backtest_with_the_service_in_the_loop(api_db_url, freqtrade_python, ft_datadir,
                                               tmp_path: Path):
    # 0.3: inside the spread of this model's calibrated probabilities on these signals
    # (0.25-0.31, seeded), so it takes some and skips some
    svc = start_service(db_url=api_db_url, data_dir=tmp_path / "svc",
                        env={"TML_DECISION_THRESHOLD": "0.3"})
    try:
        model_id = _train_and_activate(svc, tmp_path)
        tml = {"url": svc.url}
        first = backtest(freqtrade_python, tmp_path / "run1", ft_datadir, tml=tml)
        base = backtest(freqtrade_python, tmp_path / "base", ft_datadir,
                        tml={"entry": "off", "report_exits": False})
        asked = {e["trade_id"] for e in first.entries}
        assert len(first.entries) >= 3 and len(asked) == len(first.entries)
        assert all(e["answer"]["model"]["id"] == model_id for e in first.entries)
        decisions = [e["decision"] for e in first.entries]
        assert set(decisions) == {"take", "skip"}, decisions
        assert not base.events  # the base strategy alone never calls the service
        # every entry freqtrade asked about has a prediction row
        assert _wait_rows(api_db_url, "ml_predictions", len(asked)) == len(asked)
        with psycopg.connect(api_db_url) as conn:
            predicted = {r[0] for r in conn.execute("SELECT trade_id FROM ml_predictions")}
            exits = conn.execute(
                "SELECT trade_id, exit_reason, entry_price, exit_price, mfe, mae "
                "FROM position_exits").fetchall()
            labelled = conn.execute(
                "SELECT f.trade_id FROM ml_trade_features f JOIN ml_predictions p "
                "USING (trade_id) WHERE f.label IS NOT NULL AND p.outcome IS NOT NULL "
                "AND p.resolved_at IS NOT NULL").fetchall()
        assert predicted == asked
        # skipped entries are not in freqtrade's trade list; taken ones are its trades
        taken = [e for e in first.entries if e["taken"]]
        assert {_open_time(e["signal_time"]) for e in taken} == {
            t["open_date"] for t in first.trades}
        skipped = {_open_time(e["signal_time"]) for e in first.entries if not e["taken"]}
        assert not skipped & {t["open_date"] for t in first.trades}
        assert all(e["decision"] == "take" for e in taken)
        # every closed trade is one position_exits row, labelled and resolved
        reported = {e["trade_id"] for e in first.exits}
        assert len(exits) == len(first.trades) == len(reported)
        assert {r[0] for r in exits} == reported == {e["trade_id"] for e in taken}
        assert {r[0] for r in labelled} == reported
        by_open = {t["open_date"]: t for t in first.trades}
        for e in first.exits:
            trade = by_open[_open_time(next(x["signal_time"] for x in taken
                                            if x["trade_id"] == e["trade_id"]))]
            assert abs(e["entry_price"] - trade["open_rate"]) < 1e-12
            assert abs(e["exit_price"] - trade["close_rate"]) < 1e-12
        assert all(r[4] is not None and r[5] is not None for r in exits)  # MFE/MAE sent
        # a rerun gives the same trades and stores nothing new
        again = backtest(freqtrade_python, tmp_path / "run2", ft_datadir, tml=tml)
        assert [trade_key(t) for t in again.trades] == [trade_key(t) for t in first.trades]
        assert [e["answer"]["duplicate"] for e in again.entries] == [True] * len(asked)
        assert count_rows(api_db_url, "position_exits") == len(exits)
        assert count_rows(api_db_url, "ml_predictions") == len(asked)
        assert UNREACHABLE not in first.log + again.log
    finally:
        svc.stop()


def _outage_run(api_db_url: str, python: Path, datadir: Path, workdir: Path, *,
                fail_open: bool) -> tuple[Run, int]:
    svc = start_service(db_url=api_db_url, data_dir=workdir / "svc")
    stop_at = 3  # the service is stopped just before freqtrade's 3rd entry question
    try:
        run = backtest(python, workdir / "ft", datadir, strategy="OutageStrategy",
                       strategy_path=OUTAGE_STRATEGIES,
                       tml={"url": svc.url, "fail_open": fail_open},
                       env={"TML_TEST_STOP_AT": str(stop_at),
                            "TML_TEST_SERVICE_PID": str(svc.proc.pid),
                            "TML_TEST_SERVICE_PORT": svc.url.rsplit(":", 1)[1]})
    finally:
        svc.stop()
    assert svc.proc.returncode is not None
    return run, stop_at - 1


def test_service_stopped_mid_backtest_fails_closed(api_db_url, freqtrade_python, ft_datadir,
                                                   tmp_path: Path):
    run, answered = _outage_run(api_db_url, freqtrade_python, ft_datadir, tmp_path,
                                fail_open=False)
    before, during = run.entries[:answered], run.entries[answered:]
    assert all(e["decision"] is not None for e in before)
    assert len(during) >= 2 and all(e["decision"] is None for e in during)
    assert not any(e["taken"] for e in during)  # no entry while it is down
    opened = {t["open_date"] for t in run.trades}
    assert opened == {_open_time(e["signal_time"]) for e in before if e["taken"]}
    assert run.log.count(UNREACHABLE) == 1, run.log[-3000:]
    assert "NO entries are taken until it answers (fail closed)" in run.log


def test_service_stopped_mid_backtest_fail_open_takes_entries(api_db_url, freqtrade_python,
                                                              ft_datadir, tmp_path: Path):
    run, answered = _outage_run(api_db_url, freqtrade_python, ft_datadir, tmp_path,
                                fail_open=True)
    during = run.entries[answered:]
    assert len(during) >= 2 and all(e["decision"] is None and e["taken"] for e in during)
    opened = {t["open_date"] for t in run.trades}
    assert {_open_time(e["signal_time"]) for e in during} <= opened
    assert run.log.count(UNREACHABLE) == 1, run.log[-3000:]
    assert "entries are TAKEN without its judgement (fail_open)" in run.log
