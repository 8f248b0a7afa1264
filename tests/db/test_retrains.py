"""The retrain policy's check on a real database: outcomes counted from the active model's
training end (then from the newest outcome the last retrain saw), hours on the outcomes'
own clock, drift from the tracker's figure (counted once), and the ml_retrains record."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from backend.db import performance, retrains
from backend.ml.feature_extractor import FEATURE_SET_VERSION
from backend.ml.retrain_policy import RetrainPolicy, check
from tests.utils.db_factories import T0, feature_row, make_model, performance_row, store_closed


def _closed(conn: psycopg.Connection, hours: list[float]) -> None:
    """Labelled outcomes closing ``hours`` after T0 (the model's train_end)."""
    store_closed(conn, features=[
        feature_row(feature_set_version=FEATURE_SET_VERSION, label=i % 2,
                    signal_time=T0 + timedelta(hours=h - 1),
                    closed_at=T0 + timedelta(hours=h)) for i, h in enumerate(hours)])


def test_outcomes_and_hours_count_from_the_training_end_then_the_last_retrain(
        conn: psycopg.Connection) -> None:
    model = make_model(conn, activate=True, train_end=T0)
    # one labelled row before the training end: not new
    _closed(conn, [-5, 1, 2, 30])
    policy = RetrainPolicy(after_outcomes=3, every_hours=24)
    found = check(conn, policy, model_name="default")
    assert found.reasons == ["outcomes", "hours"]
    assert found.n_outcomes == 3 and found.hours == 30 and found.since == T0
    assert found.active_model_id == model.id
    assert not check(conn, RetrainPolicy(after_outcomes=4, every_hours=31),
                     model_name="default").reasons

    row = retrains.insert(conn, model_name="default", reason="outcomes",
                          details=found.details, active_model_id=model.id,
                          n_outcomes=found.n_outcomes, outcomes_until=found.outcomes_until,
                          requested_by="policy")
    assert row.status == "running" and row.details["n_outcomes"] == 3
    # a rejected candidate leaves train_end where it was: counting restarts at what it saw
    after = check(conn, policy, model_name="default")
    assert after.reasons == [] and after.n_outcomes == 0 and after.since == T0 + timedelta(
        hours=30)
    _closed(conn, [31, 40, 60])
    again = check(conn, policy, model_name="default")
    assert again.reasons == ["outcomes", "hours"] and again.n_outcomes == 3
    assert again.hours == 30

    done = retrains.finish(conn, retrain_id=row.id, status="succeeded",
                           candidate_model_id=model.id, promoted=False,
                           result={"reason": "not better"})
    assert done is not None and done.promoted is False and done.finished_at is not None
    listed, count = retrains.list_retrains(conn, model_name="default")
    assert count == 1 and listed == [done] and retrains.get(conn, retrain_id=row.id) == done
    assert retrains.last(conn, model_name="other") is None


def test_drift_above_the_threshold_triggers_once(conn: psycopg.Connection) -> None:
    model = make_model(conn, activate=True, train_end=T0)
    policy = RetrainPolicy(max_psi=0.2)
    performance.upsert_many(conn, [performance_row(model.id, drift_psi=0.1)])
    assert check(conn, policy, model_name="default").reasons == []
    performance.upsert_many(conn, [performance_row(model.id, drift_psi=0.35)])
    found = check(conn, policy, model_name="default")
    assert found.reasons == ["drift"] and found.drift_psi == 0.35
    retrains.insert(conn, model_name="default", reason="drift", details=found.details,
                    active_model_id=model.id, n_outcomes=0, outcomes_until=None,
                    requested_by="policy")
    # the same tracker figure again: already acted on
    assert check(conn, policy, model_name="default").reasons == []


def test_no_active_model_and_an_empty_policy_are_never_due(conn: psycopg.Connection) -> None:
    assert not RetrainPolicy().enabled and RetrainPolicy(every_hours=1).enabled
    found = check(conn, RetrainPolicy(after_outcomes=1), model_name="default")
    assert found.reasons == [] and found.active_model_id is None and found.n_outcomes == 0
