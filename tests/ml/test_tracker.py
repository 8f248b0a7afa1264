"""Performance tracker: daily figures equal a hand computation from the literal inputs."""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from backend.db import performance
from backend.db.predictions import PredictionRow
from backend.ml.metrics import PSI_FLOOR
from backend.ml.performance_tracker import compute_daily, track, window_start
from tests.utils.db_factories import feature_row, make_model, report_exit, store_closed

TODAY = datetime.now(UTC).date()
DAY1, DAY2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
# reference bins: rsi split at 50 (half each side, never missing); atr split at 1.0, 20 % missing
REFERENCE = {
    "rsi": {"edges": [50.0], "proportions": [0.5, 0.5], "nan_share": 0.0, "count": 100},
    "atr": {"edges": [1.0], "proportions": [0.5, 0.5], "nan_share": 0.2, "count": 100},
}
# (utc day, hh:mm:ss, probability, outcome, realized return, rsi, atr); threshold 0.5
DAY1_ROWS = [
    (DAY1, "09:00:00", 0.8, 1, 0.02, 60.0, 0.5),
    (DAY1, "10:00:00", 0.6, 0, -0.01, 55.0, 2.0),
    (DAY1, "11:00:00", 0.3, 0, -0.005, 40.0, 0.7),
    (DAY1, "12:00:00", 0.4, 1, 0.025, None, 3.0),
    (DAY1, "23:59:59", 0.7, None, None, 70.0, 1.5),  # not resolved yet
]
DAY2_ROWS = [
    (DAY2, "00:00:00", 0.9, 1, 0.03, 45.0, 0.2),
    (DAY2, "23:59:59", 0.55, 1, 0.01, 52.0, None),
]


def _at(day: date, hms: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hms), tzinfo=UTC)


def _store(conn: psycopg.Connection, model_id: int, rows: list[tuple]) -> None:
    features, preds = [], []
    for day, hms, prob, outcome, ret, rsi, atr in rows:
        trade = feature_row(features={"rsi": rsi, "atr": atr})
        features.append(trade)
        created = _at(day, hms)
        preds.append(PredictionRow(
            id=uuid.uuid4(), model_id=model_id, trade_id=trade.trade_id, probability=prob,
            threshold=0.5, decision="take" if prob >= 0.5 else "skip", contributions=None,
            latency_ms=0.1, created_at=created, outcome=outcome, realized_return=ret,
            resolved_at=None if outcome is None else created + timedelta(hours=1)))
    store_closed(conn, features=features, predictions=preds)


def _psi(pairs: list[tuple[float, float]]) -> float:
    return sum((a - e) * math.log(a / e) for a, e in pairs)


def test_daily_figures_match_hand_computation(conn: psycopg.Connection) -> None:
    model = make_model(conn, training_distribution=REFERENCE)
    other = make_model(conn, name="other")
    _store(conn, model.id, DAY1_ROWS + DAY2_ROWS)
    _store(conn, other.id, DAY1_ROWS[:2])
    _store(conn, model.id, [(TODAY - timedelta(days=10), "12:00:00", 0.9, 1, 0.1, 50.0, 1.0)])
    # the session time zone must not move a prediction to another day
    conn.execute("SET TimeZone = 'Asia/Tokyo'")

    # days=4 covers DAY1 with a day to spare (a run across midnight UTC); the -10 day row is out
    assert track(conn, model_ids=[model.id], days=4) == 2
    day1, day2 = performance.list_performance(conn, model_id=model.id)

    # day 1: resolved rows 0-3 with y = [1, 0, 0, 1], taken (p >= 0.5) = rows 0, 1
    assert (day1.date, day1.n_predictions, day1.n_resolved, day1.n_taken) == (DAY1, 5, 4, 3)
    assert day1.accuracy == pytest.approx(2 / 4)  # rows 0 (take, won) and 2 (skip, lost)
    assert day1.precision == pytest.approx(1 / 2)
    assert day1.recall == pytest.approx(1 / 2)
    assert day1.base_rate == pytest.approx(2 / 4)
    assert day1.mean_probability == pytest.approx((0.8 + 0.6 + 0.3 + 0.4) / 4)
    assert day1.brier == pytest.approx((0.2**2 + 0.6**2 + 0.3**2 + 0.6**2) / 4)
    assert day1.log_loss == pytest.approx(
        -(math.log(0.8) + math.log(0.4) + math.log(0.7) + math.log(0.4)) / 4)
    assert day1.roc_auc == pytest.approx(3 / 4)  # 0.8>0.6, 0.8>0.3, 0.4>0.3; not 0.4>0.6
    assert day1.return_taken == pytest.approx((0.02 - 0.01) / 2)
    assert day1.return_skipped == pytest.approx((-0.005 + 0.025) / 2)
    # drift over all 5 rows. rsi: <=50 {40}, >50 {60, 55, 70}, missing 1 -> [.2, .6, .2]
    # against [.5, .5, 0 -> floor]; atr: <=1 {0.5, 0.7}, >1 {2, 3, 1.5} -> [.4, .6, 0]
    # against [.5 * .8, .5 * .8, .2]
    rsi = _psi([(0.2, 0.5), (0.6, 0.5), (0.2, PSI_FLOOR)])
    atr = _psi([(0.4, 0.4), (0.6, 0.4), (PSI_FLOOR, 0.2)])
    assert day1.drift == pytest.approx({"rsi": rsi, "atr": atr})
    assert day1.drift_psi == pytest.approx(max(rsi, atr))

    # day 2: both taken and won; only one class, so no AUC and nothing skipped
    assert (day2.date, day2.n_predictions, day2.n_resolved, day2.n_taken) == (DAY2, 2, 2, 2)
    assert (day2.accuracy, day2.precision, day2.recall, day2.roc_auc) == (1.0, 1.0, 1.0, None)
    assert day2.brier == pytest.approx((0.1**2 + 0.45**2) / 2)
    assert day2.return_taken == pytest.approx((0.03 + 0.01) / 2)
    assert day2.return_skipped is None
    rsi2 = _psi([(0.5, 0.5), (0.5, 0.5), (PSI_FLOOR, PSI_FLOOR)])  # 45 and 52
    atr2 = _psi([(0.5, 0.4), (PSI_FLOOR, 0.4), (0.5, 0.2)])  # 0.2 and missing
    assert day2.drift == pytest.approx({"rsi": rsi2, "atr": atr2})


def test_track_is_idempotent_and_covers_every_model(conn: psycopg.Connection) -> None:
    model = make_model(conn, training_distribution=REFERENCE)
    other = make_model(conn, name="other", training_distribution={})
    _store(conn, model.id, DAY1_ROWS + DAY2_ROWS)
    _store(conn, other.id, DAY2_ROWS)
    assert track(conn, days=4) == 3  # model_ids=None: both models, 2 + 1 days

    def snapshot() -> list[dict]:
        return [{k: v for k, v in asdict(r).items() if k not in ("id", "updated_at")}
                for r in performance.list_performance(conn)]

    first = snapshot()
    assert track(conn, days=4) == 3
    assert snapshot() == first
    assert len(first) == 3
    other_row = next(r for r in first if r["model_id"] == other.id)
    assert other_row["drift"] == {} and other_row["drift_psi"] is None


def test_compute_daily_refuses_foreign_predictions(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    stranger = PredictionRow(id=uuid.uuid4(), model_id=model.id + 1, trade_id="t",
                             probability=0.5, threshold=0.5, decision="take",
                             contributions=None, latency_ms=None, created_at=_at(DAY1, "10:00:00"))
    with pytest.raises(ValueError, match=r"^records:"):
        compute_daily([(stranger, {})], model=model)
    assert compute_daily([], model=model) == []


def test_window_is_whole_utc_days() -> None:
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    assert window_start(1, now=now) == datetime(2026, 3, 10, tzinfo=UTC)
    assert window_start(30, now=now) == datetime(2026, 2, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"^days:"):
        window_start(0)


def test_an_outcome_that_arrives_after_its_day_left_the_window_still_counts(
        conn: psycopg.Connection) -> None:
    """Three predictions 29 days ago; one stop-out resolves at once, the two winners only
    when the day has left a 28-day window. The day's row must end with all three."""
    model = make_model(conn, training_distribution={})
    created = datetime.now(UTC) - timedelta(days=29)
    rows, features = [], []
    for outcome in (0, None, None):
        feature = feature_row()
        features.append(feature)
        rows.append(PredictionRow(
            id=uuid.uuid4(), model_id=model.id, trade_id=feature.trade_id, probability=0.6,
            threshold=0.5, decision="take", contributions=None, latency_ms=0.1,
            created_at=created, outcome=outcome,
            realized_return=None if outcome is None else -0.01,
            resolved_at=None if outcome is None else created + timedelta(days=1)))
    store_closed(conn, features=features, predictions=rows)
    track(conn, model_ids=[model.id], days=30)
    [before] = performance.list_performance(conn, model_id=model.id)
    assert (before.n_resolved, before.base_rate) == (1, 0.0)
    for r in rows[1:]:
        report_exit(conn, r.trade_id, pnl=1.0, return_pct=2.0, exit_time=datetime.now(UTC))
    assert track(conn, model_ids=[model.id], days=28) == 1
    [after] = performance.list_performance(conn, model_id=model.id)
    assert after.date == before.date
    # by hand: 3 resolved, 2 of them winners
    assert (after.n_predictions, after.n_resolved) == (3, 3)
    assert after.base_rate == pytest.approx(2 / 3)
