"""Registry: register candidates, verify artifacts, promote only on a strict improvement."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg.types.json import Jsonb

from backend.db import models
from backend.ml.boosters import predict_booster
from backend.ml.metrics import classification_metrics
from backend.ml.model_trainer import ModelTrainer
from backend.ml.registry import (
    ModelIntegrityError,
    load_booster,
    promote_if_better,
    register,
)
from backend.ml.validation import holdout_split
from tests.utils.synthetic import planted_signals


@pytest.fixture(scope="module")
def split() -> dict:
    """Planted-signal data cut into a training part and the purged, most recent 25 %."""
    X, y, t0, t1 = planted_signals(n=400, seed=21)
    train, hold = holdout_split(t0, t1, fraction=0.25)
    return {"train": (X.iloc[train], y[train], t0[train], t1[train]),
            "X_hold": X.iloc[hold], "y_hold": y[hold], "hold_start": t0[hold].min()}


@pytest.fixture(scope="module")
def strong(split: dict) -> ModelTrainer:
    return ModelTrainer(n_trials=2, n_splits=3).fit(*split["train"])


@pytest.fixture(scope="module")
def weak(split: dict) -> ModelTrainer:
    """Same features and times, but trained on shuffled labels: no real skill."""
    X, y, t0, t1 = split["train"]
    shuffled = np.random.default_rng(0).permutation(y)
    return ModelTrainer(n_trials=2, n_splits=3).fit(X, shuffled, t0, t1)


def _hand_log_loss(trainer: ModelTrainer, split: dict) -> float:
    """The held-out log loss of what the model serves: its calibrated probabilities."""
    prob = trainer.calibration_.apply(
        predict_booster(trainer.booster_, split["X_hold"].to_numpy(np.float64)))
    return classification_metrics(split["y_hold"], prob)["log_loss"]


def test_register_stores_a_candidate(conn: psycopg.Connection, strong: ModelTrainer) -> None:
    row = register(conn, strong, name="meta", feature_set_version="fs1", notes="first")
    assert (row.status, row.version, row.algorithm, row.notes) == (
        "candidate", 1, "xgboost", "first")
    assert row.metrics == strong.cv_report_  # out-of-sample figures only
    assert row.hyperparameters == strong.booster_params_
    assert row.training_distribution == strong.reference_distribution_
    assert row.feature_names == strong.feature_names_
    assert (row.train_start, row.train_end) == (strong.train_start_, strong.train_end_)
    assert row.n_samples == strong.n_samples_
    assert row.artifact_format == "xgboost-ubj"
    assert row.artifact_sha256 == hashlib.sha256(row.artifact).hexdigest()
    assert register(conn, strong, name="meta", feature_set_version="fs1").version == 2


def test_load_booster_round_trip(conn: psycopg.Connection, strong: ModelTrainer,
                                 split: dict) -> None:
    row = models.get(conn, model_id=register(conn, strong, name="m", feature_set_version="fs1").id)
    X = split["X_hold"].to_numpy(np.float64)
    np.testing.assert_array_equal(predict_booster(load_booster(row), X),
                                  predict_booster(strong.booster_, X))


def test_digest_is_checked_before_parsing(conn: psycopg.Connection, strong: ModelTrainer) -> None:
    row = register(conn, strong, name="m", feature_set_version="fs1")
    # a valid model of other bytes under the old digest: only the digest check can catch it
    other = ModelTrainer(n_trials=1, n_splits=3, seed=5).fit(*planted_signals(n=200, seed=1))
    conn.execute("UPDATE public.ml_models SET artifact = %s WHERE id = %s",
                 (other.to_artifact()[0], row.id))
    tampered = models.get(conn, model_id=row.id)
    with pytest.raises(ModelIntegrityError) as info:
        load_booster(tampered)
    message = str(info.value)
    assert f"model id={row.id} (m v{row.version})" in message
    assert row.artifact_sha256 in message
    assert hashlib.sha256(tampered.artifact).hexdigest() in message


def test_feature_list_must_match(conn: psycopg.Connection, strong: ModelTrainer) -> None:
    row = register(conn, strong, name="m", feature_set_version="fs1")
    renamed = [*strong.feature_names_[:-1], "other"]
    conn.execute("UPDATE public.ml_models SET feature_names = %s WHERE id = %s",
                 (Jsonb(renamed), row.id))
    with pytest.raises(ModelIntegrityError, match="differ from the registry"):
        load_booster(models.get(conn, model_id=row.id))


def test_first_candidate_is_promoted(conn: psycopg.Connection, weak: ModelTrainer,
                                     split: dict) -> None:
    row = register(conn, weak, name="m", feature_set_version="fs1")
    result = promote_if_better(conn, candidate=row, X_holdout=split["X_hold"],
                               y_holdout=split["y_hold"])
    assert result.promoted and result.active_score is None
    assert result.reason == "no active model"
    assert result.candidate_score == pytest.approx(_hand_log_loss(weak, split))
    active = models.get_active(conn, name="m")
    assert active.id == row.id and active.activated_by == "trainer"


def test_better_candidate_replaces_active(conn: psycopg.Connection, weak: ModelTrainer,
                                          strong: ModelTrainer, split: dict) -> None:
    old = models.activate(conn, model_id=register(conn, weak, name="m",
                                                  feature_set_version="fs1").id,
                          activated_by="test")
    new = register(conn, strong, name="m", feature_set_version="fs1")
    result = promote_if_better(conn, candidate=new, X_holdout=split["X_hold"],
                               y_holdout=split["y_hold"], activated_by="ci",
                               holdout_start=pd.Timestamp(split["hold_start"], tz="UTC"))
    # both scored on the same held-out rows, figures recomputed here from the boosters
    assert result.candidate_score == pytest.approx(_hand_log_loss(strong, split))
    assert result.active_score == pytest.approx(_hand_log_loss(weak, split))
    assert result.candidate_score < result.active_score
    assert result.promoted
    assert models.get_active(conn, name="m").id == new.id
    assert models.get(conn, model_id=old.id).status == "retired"


def test_worse_candidate_keeps_active(conn: psycopg.Connection, weak: ModelTrainer,
                                      strong: ModelTrainer, split: dict) -> None:
    active = models.activate(conn, model_id=register(conn, strong, name="m",
                                                     feature_set_version="fs1").id,
                             activated_by="test")
    worse = register(conn, weak, name="m", feature_set_version="fs1")
    result = promote_if_better(conn, candidate=worse, X_holdout=split["X_hold"],
                               y_holdout=split["y_hold"])
    assert not result.promoted
    assert result.reason.startswith("not better")
    assert models.get_active(conn, name="m").id == active.id
    assert models.get(conn, model_id=worse.id).status == "candidate"


def test_tie_keeps_active(conn: psycopg.Connection, strong: ModelTrainer, split: dict) -> None:
    active = models.activate(conn, model_id=register(conn, strong, name="m",
                                                     feature_set_version="fs1").id,
                             activated_by="test")
    twin = register(conn, strong, name="m", feature_set_version="fs1")  # identical model
    result = promote_if_better(conn, candidate=twin, X_holdout=split["X_hold"],
                               y_holdout=split["y_hold"])
    assert result.candidate_score == result.active_score
    assert not result.promoted
    assert models.get_active(conn, name="m").id == active.id


def test_auc_metric_higher_is_better(conn: psycopg.Connection, weak: ModelTrainer,
                                     strong: ModelTrainer, split: dict) -> None:
    models.activate(conn, model_id=register(conn, weak, name="m", feature_set_version="fs1").id,
                    activated_by="test")
    new = register(conn, strong, name="m", feature_set_version="fs1")
    result = promote_if_better(conn, candidate=new, X_holdout=split["X_hold"],
                               y_holdout=split["y_hold"], metric="roc_auc")
    assert result.candidate_score > result.active_score
    assert result.promoted


def test_promotion_refuses_bad_input(conn: psycopg.Connection, strong: ModelTrainer,
                                     split: dict) -> None:
    row = register(conn, strong, name="m", feature_set_version="fs1")
    kwargs = {"candidate": row, "X_holdout": split["X_hold"], "y_holdout": split["y_hold"]}
    with pytest.raises(ValueError, match=r"^metric:"):
        promote_if_better(conn, **kwargs, metric="accuracy")
    with pytest.raises(ValueError, match=r"^y_holdout:"):
        promote_if_better(conn, **(kwargs | {"y_holdout": split["y_hold"][:-1]}))
    with pytest.raises(ValueError, match=r"^X_holdout: lacks features"):
        promote_if_better(conn, **(kwargs | {"X_holdout": split["X_hold"].drop(columns="f0")}))
    # a held-out window that starts before the candidate's training data ended
    with pytest.raises(ValueError, match=r"^holdout_start:"):
        promote_if_better(conn, **kwargs, holdout_start=row.train_start)
    assert models.get_active(conn, name="m") is None  # nothing changed


@pytest.mark.parametrize("first", ["weak", "strong"])
def test_two_promotions_at_once_leave_the_better_model_active(
        db_url: str, conn: psycopg.Connection, weak: ModelTrainer, strong: ModelTrainer,
        split: dict, first: str) -> None:
    """Two trainers finishing together, with no active model yet: under the name lock one
    is promoted first and the other is compared with it, so the better one ends up active
    (without the lock both could see "no active model"; a race, so tried a few times)."""
    import threading

    for attempt in range(4):
        name = f"race-{attempt}"
        rows = {"weak": register(conn, weak, name=name, feature_set_version="fs1"),
                "strong": register(conn, strong, name=name, feature_set_version="fs1")}
        order = [first, "strong" if first == "weak" else "weak"]
        start = threading.Barrier(2)
        results: dict[str, object] = {}

        def promote(which: str, rows: dict = rows, results: dict = results,
                    start: threading.Barrier = start) -> None:
            with psycopg.connect(db_url, autocommit=True) as own:
                start.wait()
                results[which] = promote_if_better(own, candidate=rows[which],
                                                   X_holdout=split["X_hold"],
                                                   y_holdout=split["y_hold"])

        threads = [threading.Thread(target=promote, args=(which,)) for which in order]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert set(results) == {"weak", "strong"}  # neither raised
        assert models.get_active(conn, name=name).id == rows["strong"].id
        active = conn.execute("SELECT count(*) FROM ml_models WHERE name = %s AND "
                              "status = 'active'", (name,)).fetchone()[0]
        assert active == 1
        assert results["strong"].promoted  # first, or as the better one  # type: ignore[attr-defined]
