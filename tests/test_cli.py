"""``python -m backend ...`` run as a real subprocess: real Postgres, real candles, real models.

Every test keeps the data small (1000-1500 EURUSD hours, 1-2 Optuna trials) so the file
runs in well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from backend.positions.cli import BACKTESTABLE
from tests.utils.cli import run_cli
from tests.utils.db_factories import (
    feature_row,
    make_model,
    prediction_row,
    store_features,
    store_predictions,
)
from tests.utils.market_slices import sample, write_slice
from tests.utils.service import start_service

METRICS = {"roc_auc", "log_loss", "brier", "accuracy", "precision", "recall", "base_rate",
           "count"}
# The table `train` prints: one column per metric, in this order (backend/__main__.py).
TABLE_COLUMNS = ("count", "base_rate", "accuracy", "precision", "recall", "roc_auc",
                 "log_loss", "brier")
EVALUATE = ("evaluate", "--trials", "1", "--seed", "3", "--json")
ROWS = 1500


def only_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def eurusd_frame() -> pd.DataFrame:
    """The first ROWS real EURUSD hours, indexed by UTC time, lower-case OHLCV columns."""
    return sample("EURUSD").to_frame().iloc[:ROWS]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same candles in every supported layout."""
    d = tmp_path_factory.mktemp("candles")
    frame = eurusd_frame()
    odd = frame.rename(columns=str.upper).assign(SPREAD=0.5).rename_axis(None)
    paths = {"csv": write_slice(d / "eurusd.csv", "EURUSD", 0, ROWS),
             "parquet": d / "eurusd.parquet", "feather": d / "eurusd.feather",
             "odd_csv": d / "odd.csv", "odd_parquet": d / "odd.parquet"}
    frame.to_parquet(paths["parquet"])
    frame.reset_index().to_feather(paths["feather"])  # feather keeps no index: time a column
    odd.to_csv(paths["odd_csv"])  # the unnamed index becomes an "Unnamed: 0" column
    odd.to_parquet(paths["odd_parquet"])
    return paths


@pytest.fixture(scope="module")
def csv_report(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    proc = run_cli(*EVALUATE, "--candles", str(files["csv"]),
                   data_dir=tmp_path_factory.mktemp("eval"))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---- evaluate ------------------------------------------------------------------------------
@pytest.mark.slow  # trains (Optuna + boosters) in a subprocess on real EURUSD candles
def test_evaluate_json_is_one_object_with_baselines(csv_report: str) -> None:
    assert csv_report.endswith("\n") and csv_report.count("\n") == 1
    report = json.loads(csv_report)
    for who in ("model", "always_take", "logistic"):
        assert set(report[who]) >= METRICS, who
    model, always = report["model"], report["always_take"]
    # All three are scored on the same out-of-sample rows: the folds' test rows.
    assert model["count"] == sum(f["test_size"] for f in report["folds"]) > 0
    assert model["count"] <= report["n_samples"]
    for who in ("always_take", "logistic"):
        assert report[who]["count"] == model["count"]
        assert report[who]["base_rate"] == model["base_rate"]
    # always-take takes every signal: recall 1, precision = accuracy = the base rate.
    assert always["recall"] == 1.0
    assert always["precision"] == pytest.approx(always["base_rate"])
    assert always["accuracy"] == pytest.approx(always["base_rate"])


@pytest.mark.slow  # trains (Optuna + boosters) in a subprocess on real EURUSD candles
def test_evaluate_same_seed_same_json(csv_report: str, files: dict[str, Path],
                                      tmp_path: Path) -> None:
    again = run_cli(*EVALUATE, "--candles", str(files["csv"]), data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == csv_report


@pytest.mark.slow  # trains (Optuna + boosters) in a subprocess on real EURUSD candles
@pytest.mark.parametrize("layout", ["parquet", "feather", "odd_csv", "odd_parquet"])
def test_evaluate_reads_every_file_layout_the_same(layout: str, csv_report: str,
                                                   files: dict[str, Path],
                                                   tmp_path: Path) -> None:
    proc = run_cli(*EVALUATE, "--candles", str(files[layout]), data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(csv_report)


def _missing_file(path: Path) -> Path:
    return path


def _no_volume_csv(path: Path) -> Path:
    eurusd_frame().drop(columns="volume").to_csv(path)
    return path


def _unsorted_csv(path: Path) -> Path:
    frame = eurusd_frame()
    order = list(range(ROWS))
    order[10], order[11] = 11, 10  # rows 10 and 11 swapped: row 11 goes back in time
    frame.iloc[order].to_csv(path)
    return path


@pytest.mark.parametrize(("make", "problem"), [
    (_missing_file, "file not found"),
    (_no_volume_csv, "missing column(s): volume"),
    (_unsorted_csv, "candles[11].time: timestamps must be sorted"),
], ids=["missing_file", "no_volume", "unsorted"])
def test_bad_candles_exit_2_with_one_line(make: Callable[[Path], Path], problem: str,
                                          tmp_path: Path) -> None:
    path = make(tmp_path / "candles.csv")
    proc = run_cli(*EVALUATE, "--candles", str(path), data_dir=tmp_path)
    assert proc.returncode == 2
    line = only_line(proc.stderr)
    assert line.startswith("error: ") and problem in line
    assert proc.stdout == ""


def test_unknown_strategy_fails_and_names_it(files: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli(*EVALUATE, "--candles", str(files["csv"]), "--strategy", "moon_phase",
                   data_dir=tmp_path)
    assert proc.returncode != 0
    assert "moon_phase" in only_line(proc.stderr)


# ---- train ---------------------------------------------------------------------------------
def _printed_rows(stdout: str, title: str) -> dict[str, list[str]]:
    """The rows of one printed table section: name -> the printed cells."""
    lines = stdout.splitlines()
    start = lines.index(f"{title} (out-of-sample)") + 2  # skip the header line
    rows = {}
    for line in lines[start:]:
        if not line.startswith("  ") or not line.strip():
            break
        name, *cells = line.split()
        rows[name] = cells
    return rows


def _cell(value: Any) -> str:
    return "-" if value is None else str(value) if isinstance(value, int) else f"{value:.4f}"


@pytest.mark.slow  # trains (Optuna + boosters) in a subprocess on real EURUSD candles
def test_train_registers_activates_and_prints_the_stored_figures(
        db_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli("train", "--candles", str(files["csv"]), "--symbol", "EURUSD",
                   "--timeframe", "1h", "--trials", "2", "--seed", "3",
                   data_dir=tmp_path, db_url=db_url, timeout=180)
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id, name, version, status, activated_by, metrics "
                            "FROM ml_models").fetchall()
    assert len(rows) == 1
    model_id, name, version, status, activated_by, metrics = rows[0]
    assert (status, activated_by) == ("active", "trainer")  # none was active before
    assert f"model {name} v{version} (id {model_id}): no active model" in proc.stdout
    assert {"model", "always_take", "logistic", "holdout"} <= set(metrics)
    assert {"model", "always_take"} <= set(metrics["holdout"])
    # The printed tables are exactly the stored out-of-sample figures, baselines included.
    for title, stored in (("cross_validation", metrics), ("holdout", metrics["holdout"])):
        printed = _printed_rows(proc.stdout, title)
        expected = {who: stored[who] for who in ("model", "logistic", "always_take")
                    if who in stored}
        assert set(printed) == set(expected), title
        for who, figures in expected.items():
            assert printed[who] == [_cell(figures[k]) for k in TABLE_COLUMNS], (title, who)


def test_train_on_bad_candles_changes_nothing(db_url: str, tmp_path: Path) -> None:
    path = _unsorted_csv(tmp_path / "u.csv")
    proc = run_cli("train", "--candles", str(path), "--trials", "1", data_dir=tmp_path,
                   db_url=db_url)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: candles[11].time")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ml_models").fetchone()[0] == 0


# ---- track, migrate, backtest ---------------------------------------------------------------
def test_track_prints_the_number_of_rows_it_wrote(conn: psycopg.Connection, db_url: str,
                                                  tmp_path: Path) -> None:
    model = make_model(conn, activate=True)
    now = datetime.now(UTC)
    # Two predictions on two different UTC days, both inside a 2-day window: 2 daily rows.
    days = {"today": now, "yesterday": now - timedelta(days=1)}
    store_features(conn, [feature_row(trade_id=k) for k in days])
    store_predictions(conn, [prediction_row(model.id, trade_id=k, created_at=t)
                             for k, t in days.items()])
    proc = run_cli("track", "--days", "2", data_dir=tmp_path, db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2 daily rows upserted into ml_performance"
    stored = conn.execute("SELECT date, n_predictions FROM ml_performance ORDER BY date")
    assert stored.fetchall() == [(days["yesterday"].date(), 1), (days["today"].date(), 1)]


def test_migrate_status(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    applied = run_cli("migrate", "--status", data_dir=tmp_path, db_url=db_url)
    assert applied.returncode == 0, applied.stderr
    assert ": applied" in applied.stdout
    missing = run_cli("migrate", "--status", data_dir=tmp_path, db_url=empty_db_url)
    assert missing.returncode == 1
    assert "NOT applied" in missing.stdout


def test_backtest_json_has_a_key_per_policy(tmp_path: Path) -> None:
    path = write_slice(tmp_path / "eurusd.csv", "EURUSD", 0, 1000)
    proc = run_cli("backtest", "--candles", str(path), "--json", data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    report = json.loads(proc.stdout)
    assert set(report) == {"fixed", *BACKTESTABLE}
    for name, entry in report.items():
        assert entry["summary"]["trades"] > 0, name


# ---- serve ---------------------------------------------------------------------------------
@pytest.mark.server
def test_serve_starts_not_ready_while_the_database_is_unreachable(tmp_path: Path) -> None:
    svc = start_service(db_url="postgresql://tml:pw@127.0.0.1:1/postgres",
                        data_dir=tmp_path / "svc", env={"TML_DB_CONNECT_TIMEOUT": "1"},
                        wait_ready=False, timeout=60)
    try:
        with svc.client() as http:
            ready = http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["database"] == "unreachable"
        # the key is checked before a connection is taken: no key is 401, not 503
        with svc.client(key=None) as http:
            for path in ("/api/v1/models", "/api/v1/models/1", "/api/v1/performance",
                         "/api/v1/dashboard/models", "/api/v1/models/retrains"):
                assert http.get(path).status_code == 401, path
    finally:
        svc.stop()
