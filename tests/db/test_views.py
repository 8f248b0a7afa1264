"""The three analyst views on small data sets whose figures are worked out by hand here."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from backend.db import position_exits
from tests.utils.db_factories import (
    VIEWS,
    exit_row,
    feature_row,
    make_model,
    prediction_row,
    store_closed,
)


def _view(conn: psycopg.Connection, query: str) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query).fetchall()


def test_daily_exit_performance(conn: psycopg.Connection) -> None:
    day1 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    # (exit_reason, pnl, r_multiple, mfe, mae, holding_seconds)
    stops = [("stop_loss", -10.0, -1.0, 0.2, 1.0, 3600.0),
             ("stop_loss", -20.0, -1.0, 0.5, 1.0, 7200.0),
             ("stop_loss", 5.0, 0.5, 1.0, 0.1, 1800.0)]  # a stop that had locked in profit
    targets = [("take_profit", 30.0, 2.0, 2.0, 0.2, 600.0),
               ("take_profit", 40.0, 2.0, 2.5, 0.4, 900.0)]
    for reason, pnl, r, mfe, mae, held in stops + targets:
        position_exits.insert(conn, exit_row(
            exit_reason=reason, pnl=pnl, r_multiple=r, mfe=mfe, mae=mae, holding_seconds=held,
            entry_time=day1 - timedelta(seconds=held), exit_time=day1))
    # 23:30 in New York on Jan 6 is 04:30 UTC on Jan 7: days are UTC days
    late = datetime(2026, 1, 6, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    position_exits.insert(conn, exit_row(
        exit_reason="time_stop", pnl=0.0, return_pct=0.0, r_multiple=0.0,
        entry_time=late - timedelta(hours=1), exit_time=late))
    conn.execute("SET TimeZone = 'America/New_York'")  # must not move the UTC day

    rows = {(r["exit_date"], r["exit_reason"]): r for r in _view(
        conn, "SELECT * FROM daily_exit_performance")}

    assert set(rows) == {(date(2026, 1, 5), "stop_loss"), (date(2026, 1, 5), "take_profit"),
                         (date(2026, 1, 7), "time_stop")}
    sl = rows[date(2026, 1, 5), "stop_loss"]
    assert (sl["trades"], sl["wins"]) == (3, 1)
    assert sl["win_rate"] == pytest.approx(1 / 3)
    assert sl["avg_win"] == pytest.approx(5.0)
    assert sl["avg_loss"] == pytest.approx((-10.0 - 20.0) / 2)
    assert sl["avg_pnl"] == pytest.approx((-10.0 - 20.0 + 5.0) / 3)
    assert sl["total_pnl"] == pytest.approx(-25.0)
    assert sl["avg_r_multiple"] == pytest.approx((-1.0 - 1.0 + 0.5) / 3)
    assert sl["avg_mfe"] == pytest.approx((0.2 + 0.5 + 1.0) / 3)
    assert sl["avg_mae"] == pytest.approx((1.0 + 1.0 + 0.1) / 3)
    assert sl["avg_holding_seconds"] == pytest.approx((3600 + 7200 + 1800) / 3)
    tp = rows[date(2026, 1, 5), "take_profit"]
    assert (tp["trades"], tp["wins"], tp["win_rate"]) == (2, 2, 1.0)
    assert tp["avg_win"] == pytest.approx(35.0) and tp["avg_loss"] is None
    flat = rows[date(2026, 1, 7), "time_stop"]  # pnl 0 is neither a win nor a loss
    assert (flat["wins"], flat["win_rate"], flat["avg_win"], flat["avg_loss"]) == (
        0, 0.0, None, None)


def test_model_performance_summary(conn: psycopg.Connection) -> None:
    # what training stores (backend/ml/training.py): cross-validation figures at the top,
    # the held-out window under "holdout", each beside the always-take baseline
    trained = {"roc_auc": 0.61, "accuracy": 0.58, "precision": 0.6, "brier": 0.24,
               "log_loss": 0.67, "base_rate": 0.5}
    cv_always = {"brier": 0.25, "log_loss": 0.69}
    held = {"count": 120, "roc_auc": 0.55, "accuracy": 0.52, "precision": 0.54, "brier": 0.26,
            "log_loss": 0.70, "base_rate": 0.48}
    held_always = {"brier": 0.2496, "log_loss": 0.6923}
    model = make_model(conn, name="m", metrics={
        "model": trained, "always_take": cv_always, "logistic": {"roc_auc": 0.53},
        "holdout": {"model": held, "always_take": held_always}})
    recent = datetime.now(UTC) - timedelta(days=1)
    old = datetime.now(UTC) - timedelta(days=40)
    # (decision, outcome, created_at)
    cases = [("take", 1, recent),     # right, a taken win
             ("take", 0, recent),     # wrong, a taken loss
             ("skip", 0, recent),     # right
             ("skip", 1, recent),     # wrong
             ("take", None, recent),  # not resolved yet: counted, not scored
             ("take", 1, old),        # right, a taken win (outside the 30 days)
             ("skip", 0, old)]        # right (outside the 30 days)
    store_closed(conn, predictions=[
        prediction_row(model.id, decision=d, probability=0.7 if d == "take" else 0.3,
                       outcome=o, created_at=t) for d, o, t in cases])
    # a model with no predictions and metrics it cannot read as numbers
    other = make_model(conn, name="other", metrics={"model": {"roc_auc": None,
                                                              "accuracy": "n/a"}})

    rows = {r["id"]: r for r in _view(conn, "SELECT * FROM ml_model_performance_summary")}

    row = rows[model.id]
    assert (row["name"], row["version"], row["status"]) == ("m", 1, "candidate")
    assert {k: row[f"cv_{k}"] for k in trained} == trained
    assert {k: row[f"cv_always_take_{k}"] for k in cv_always} == cv_always
    assert row["cv_logistic_roc_auc"] == 0.53
    assert {k: row[f"holdout_{k}"] for k in held} == held
    assert {k: row[f"holdout_always_take_{k}"] for k in held_always} == held_always
    assert not any(k.startswith("train_") for k in row)  # they held CV figures: renamed
    assert (row["n_predictions"], row["n_resolved"], row["n_taken_resolved"]) == (7, 6, 3)
    assert row["live_accuracy"] == pytest.approx(4 / 6)   # cases 1, 3, 6, 7 right
    assert row["live_precision"] == pytest.approx(2 / 3)  # taken: 1 won, 2 lost, 6 won
    assert row["live_base_rate"] == pytest.approx(3 / 6)  # outcomes 1: cases 1, 4, 6
    assert (row["n_predictions_30d"], row["n_resolved_30d"]) == (5, 4)
    assert row["live_accuracy_30d"] == pytest.approx(2 / 4)
    assert row["live_precision_30d"] == pytest.approx(1 / 2)
    empty = rows[other.id]
    assert (empty["n_predictions"], empty["live_accuracy"], empty["live_precision"]) == (
        0, None, None)
    assert empty["cv_roc_auc"] is None and empty["cv_accuracy"] is None
    assert empty["holdout_roc_auc"] is None and empty["holdout_count"] is None


def test_feature_statistics(conn: psycopg.Connection) -> None:
    store_closed(conn, features=[
        feature_row(feature_set_version="v1", features={"a": 1.0, "b": 10}, label=0),
        feature_row(feature_set_version="v1", features={"a": 3.0, "b": None}, label=1),
        feature_row(feature_set_version="v1", features={"a": 5.0}, label=1),
        feature_row(feature_set_version="v1", features={"a": "x", "b": 20}),  # unlabelled
        feature_row(feature_set_version="v2", features={"a": 100}, label=1),
    ])

    rows = {(r["feature_set_version"], r["feature"]): r for r in _view(
        conn, "SELECT * FROM ml_feature_statistics")}

    assert set(rows) == {("v1", "a"), ("v1", "b"), ("v2", "a")}
    a = rows["v1", "a"]  # numbers 1, 3, 5; "x" is not a number
    assert (a["n"], a["missing"], a["min"], a["max"]) == (3, 1, 1.0, 5.0)
    assert a["mean"] == pytest.approx(3.0)
    assert a["stddev"] == pytest.approx(math.sqrt(((1 - 3) ** 2 + 0 + (5 - 3) ** 2) / 2))
    assert (a["n_winners"], a["n_losers"]) == (2, 1)
    assert a["mean_winners"] == pytest.approx((3.0 + 5.0) / 2)
    assert a["mean_losers"] == pytest.approx(1.0)
    b = rows["v1", "b"]  # numbers 10, 20; null in row 2, absent in row 3
    assert (b["n"], b["missing"]) == (2, 2)
    assert b["mean"] == pytest.approx(15.0)
    assert b["stddev"] == pytest.approx(math.sqrt(((10 - 15) ** 2 + (20 - 15) ** 2) / 1))
    assert (b["n_winners"], b["mean_winners"], b["mean_losers"]) == (0, None, 10.0)
    v2 = rows["v2", "a"]  # one value: no sample standard deviation
    assert (v2["n"], v2["missing"], v2["mean"], v2["stddev"]) == (1, 0, 100.0, None)


def test_every_view_and_view_column_has_a_comment(conn: psycopg.Connection) -> None:
    rows = conn.execute("""
        SELECT c.relname, a.attname, a.attnum, d.description
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_description AS d ON d.objoid = c.oid AND d.objsubid = a.attnum
                                     AND d.classoid = 'pg_class'::regclass
        WHERE c.relkind = 'v' AND c.relname = ANY(%s)
        UNION ALL
        SELECT c.relname, NULL, 0, obj_description(c.oid, 'pg_class')
        FROM pg_class AS c WHERE c.relkind = 'v' AND c.relname = ANY(%s)
    """, (list(VIEWS), list(VIEWS))).fetchall()
    assert {r[0] for r in rows} == VIEWS
    missing = [(view, column) for view, column, _n, text in rows if not (text or "").strip()]
    assert missing == []
    assert len(rows) > 40  # the columns were found, not only the views
