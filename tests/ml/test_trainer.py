"""ModelTrainer: out-of-sample evaluation beside baselines, determinism, shared studies."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import optuna
import pandas as pd
import psycopg
import pytest
import xgboost as xgb
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from backend.ml.boosters import fixed_params, predict_booster, train_booster
from backend.ml.candles import load_candles_file, sample_candles_path
from backend.ml.dataset import build_dataset
from backend.ml.model_trainer import ModelTrainer
from backend.ml.search import journal_storage, suggest_params
from tests.utils.synthetic import planted_signals


@pytest.fixture(scope="module")
def fitted() -> tuple[ModelTrainer, tuple]:
    data = planted_signals()
    return ModelTrainer(n_trials=3, n_splits=4).fit(*data), data


def test_report_is_out_of_sample_and_beside_baselines(fitted: tuple) -> None:
    trainer, (X, _, t0, t1) = fitted
    report = trainer.cv_report_
    assert report["n_splits"] == len(report["folds"]) == 4
    test_sizes = [f["test_size"] for f in report["folds"]]
    # pooled figures cover exactly the test folds, never a training row
    for key in ("model", "always_take", "logistic"):
        assert report[key]["count"] == sum(test_sizes) < len(X)
        assert all(f[key]["count"] == f["test_size"] for f in report["folds"])
    # always-take takes every signal: precision is the test base rate, recall 1
    assert report["always_take"]["n_taken"] == report["always_take"]["count"]
    assert report["always_take"]["precision"] == pytest.approx(report["always_take"]["base_rate"])
    # default embargo = the longest label window
    assert report["embargo_seconds"] == pd.Timedelta((t1 - t0).max()).total_seconds()
    starts = [pd.Timestamp(f["test_start"]) for f in report["folds"]]
    assert starts == sorted(starts)


def test_model_beats_always_take_on_planted_signal(fitted: tuple) -> None:
    trainer, _ = fitted
    report = trainer.cv_report_
    assert report["model"]["log_loss"] < report["always_take"]["log_loss"]
    assert report["model"]["roc_auc"] > 0.6
    importance = trainer.feature_importance_
    assert sum(importance.values()) == pytest.approx(1.0)
    assert max(importance, key=importance.get) == "f0"  # the strongest planted feature


def test_no_skill_claimed_on_noise() -> None:
    trainer = ModelTrainer(n_trials=2, n_splits=4).fit(*planted_signals(strength=0.0))
    auc = trainer.cv_report_["model"]["roc_auc"]
    # ~300 out-of-sample rows: the AUC of a skill-less model has a standard error near 0.035
    assert abs(auc - 0.5) < 0.15
    assert trainer.cv_report_["model"]["log_loss"] > 0.6


def test_fitted_attributes(fitted: tuple) -> None:
    trainer, (X, _, t0, t1) = fitted
    assert isinstance(trainer.booster_, xgb.Booster)
    assert trainer.booster_.feature_names == list(X.columns) == trainer.feature_names_
    assert trainer.booster_params_["nthread"] == 1
    assert trainer.booster_params_["n_estimators"] == trainer.best_params_["n_estimators"]
    assert set(trainer.reference_distribution_) == set(X.columns)
    assert trainer.train_start_ == pd.Timestamp(t0.min(), tz="UTC")
    assert trainer.train_end_ == pd.Timestamp(t1.max(), tz="UTC")
    assert trainer.n_samples_ == len(X)
    # the optimisation reported one value per fold, so the pruner can act between folds
    assert all(len(t.intermediate_values) == 4 for t in trainer.study_.trials)
    data, fmt, sha = trainer.to_artifact()
    assert fmt == "xgboost-ubj"
    assert sha == hashlib.sha256(data).hexdigest()


def test_same_seed_same_data_same_result() -> None:
    data = planted_signals(n=300, seed=3)
    a = ModelTrainer(n_trials=2, n_splits=3, seed=11).fit(*data)
    b = ModelTrainer(n_trials=2, n_splits=3, seed=11).fit(*data)
    assert a.best_params_ == b.best_params_
    assert a.cv_report_ == b.cv_report_
    assert a.to_artifact()[2] == b.to_artifact()[2]


def test_lightgbm_is_deterministic_too() -> None:
    data = planted_signals(n=300, seed=5)
    # 4 trials: with 2 random draws the best can be the near-constant corner of the space
    a = ModelTrainer(algorithm="lightgbm", n_trials=4, n_splits=3).fit(*data)
    b = ModelTrainer(algorithm="lightgbm", n_trials=4, n_splits=3).fit(*data)
    assert a.to_artifact()[1] == "lightgbm-text"
    assert a.cv_report_ == b.cv_report_
    assert a.to_artifact()[2] == b.to_artifact()[2]
    assert a.cv_report_["model"]["log_loss"] < a.cv_report_["always_take"]["log_loss"]


# The most regularised corner of the search space: 20 trees at learning rate 0.005, and
# leaves too heavy for any split of 300 rows (100 hessian units > 300 * 0.32 * 0.68 in
# total; 200 rows a side > 300 / 2), so every tree is a single leaf.
CORNERS = {
    "xgboost": {"max_depth": 1, "subsample": 1.0, "colsample_bytree": 1.0,
                "min_child_weight": 100.0, "reg_lambda": 100.0},
    "lightgbm": {"num_leaves": 2, "bagging_fraction": 1.0, "feature_fraction": 1.0,
                 "min_child_samples": 200, "lambda_l2": 100.0},
}


@pytest.mark.parametrize("algorithm", list(CORNERS))
def test_search_space_reaches_the_base_rate(algorithm: str) -> None:
    """Without signal the search can fall back to always-take's calibration, not overfit."""
    X, _, _, _ = planted_signals(n=300, strength=0.0)
    y = (np.random.default_rng(1).random(300) < 0.3).astype(np.int64)
    trial = optuna.trial.FixedTrial({"n_estimators": 20, "learning_rate": 0.005,
                                     **CORNERS[algorithm]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FixedTrial warns when a value is outside the space
        params = fixed_params(algorithm, seed=0) | suggest_params(trial, algorithm)
    booster = train_booster(algorithm, params, X.to_numpy(), y, list(X.columns))
    # single-leaf trees at the base score, which both libraries set to the label mean
    np.testing.assert_allclose(predict_booster(booster, X.to_numpy()), y.mean(), atol=1e-6)


def test_estimator_contract() -> None:
    trainer = ModelTrainer(algorithm="lightgbm", n_trials=4, seed=1)
    assert trainer.get_params()["n_trials"] == 4
    assert not [k for k in vars(trainer) if k.endswith("_")]  # __init__ stores params only
    assert clone(trainer).get_params() == trainer.get_params()
    with pytest.raises(NotFittedError):
        trainer.to_artifact()


def _bad(**changes: object) -> tuple:
    X, y, t0, t1 = planted_signals(n=120)
    data = {"X": X, "y": y, "t0": t0, "t1": t1}
    data.update(changes)
    return data["X"], data["y"], data["t0"], data["t1"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (_bad(X=np.zeros((120, 3))), "X"),
        (_bad(X=pd.DataFrame({"a": ["x"] * 120})), "X"),
        (_bad(X=pd.DataFrame({"a": [np.inf] + [0.0] * 119})), "X"),
        (_bad(y=np.zeros(119)), "y"),
        (_bad(y=np.full(120, 2)), "y"),
        (_bad(y=np.ones(120)), "y"),
        (_bad(t0=np.arange(120)), "t0"),
        (_bad(t1=np.full(120, np.datetime64("2023-01-01", "ns"))), "t1"),
        (_bad(t1=np.full(119, np.datetime64("2025-01-01", "ns"))), "t1"),
    ],
)
def test_bad_input_names_the_field(args: tuple, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        ModelTrainer(n_trials=1).fit(*args)


def test_unsorted_signals_refused() -> None:
    X, y, t0, t1 = planted_signals(n=120)
    order = np.r_[1, 0, 2:120]
    with pytest.raises(ValueError, match=r"^t0:"):
        ModelTrainer(n_trials=1).fit(X.iloc[order], y[order], t0[order], t1[order])


@pytest.mark.parametrize(
    ("params", "field"),
    [({"algorithm": "catboost"}, "algorithm"), ({"n_trials": 0}, "n_trials"),
     ({"n_trials": None}, "n_trials"), ({"threshold": 2.0}, "threshold")],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        ModelTrainer(**params).fit(*planted_signals(n=120))


def test_progress_bar_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    ModelTrainer(n_trials=2, n_splits=3, show_progress=True).fit(*planted_signals(n=200))
    err = capsys.readouterr().err
    assert "optuna xgboost" in err
    assert "2/2" in err


def test_journal_storage_shares_one_study(tmp_path: Path) -> None:
    data = planted_signals(n=200)
    storage = journal_storage(str(tmp_path / "study.log"))
    first = ModelTrainer(n_trials=2, n_splits=3, storage=storage, study_name="s").fit(*data)
    best_after_first = first.study_.best_value
    assert len(first.study_.trials) == 2
    second_storage = journal_storage(str(tmp_path / "study.log"))  # as another process would
    second = ModelTrainer(n_trials=1, n_splits=3, storage=second_storage, study_name="s")
    trials = second.fit(*data).study_.trials
    assert len(trials) == 3
    assert second.study_.best_value <= best_after_first
    # the joining worker explores a new point instead of replaying the first one
    assert trials[2].params not in (trials[0].params, trials[1].params)


def _as_url(conninfo: str) -> str:
    """The same server as a postgresql:// URL (the form DATABASE_URL usually takes)."""
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    query = urlencode({k: v for k, v in parts.items() if k not in ("user", "password", "dbname")})
    auth = quote(str(parts.get("user", "")), safe="")
    if parts.get("password"):
        auth += ":" + quote(str(parts["password"]), safe="")
    return f"postgresql://{auth}@/{parts['dbname']}?{query}"


@pytest.mark.parametrize("form", ["conninfo", "url"])
def test_postgres_storage_shares_one_study(db_url: str, form: str) -> None:
    storage = db_url if form == "conninfo" else _as_url(db_url)
    data = planted_signals(n=200)
    ModelTrainer(n_trials=1, n_splits=3, storage=storage, study_name="pg").fit(*data)
    second = ModelTrainer(n_trials=1, n_splits=3, storage=storage, study_name="pg").fit(*data)
    assert len(second.study_.trials) == 2
    stored = optuna.load_study(study_name=second.study_.study_name,
                               storage=second.study_._storage)
    assert len(stored.trials) == 2
    assert stored.study_name.startswith("pg-xgboost-")


def test_shared_study_never_mixes_other_data_or_algorithms(tmp_path: Path) -> None:
    """One configured study name, several data sets and algorithms: each run only sees the
    trials of runs on its own data, split and algorithm."""
    storage = journal_storage(str(tmp_path / "study.log"))
    a = ModelTrainer(n_trials=2, n_splits=3, storage=storage, study_name="s").fit(
        *planted_signals(n=200, seed=1))
    b = ModelTrainer(n_trials=1, n_splits=3, storage=storage, study_name="s").fit(
        *planted_signals(n=200, seed=2))
    c = ModelTrainer(algorithm="lightgbm", n_trials=1, n_splits=3, storage=storage,
                     study_name="s").fit(*planted_signals(n=200, seed=1))
    names = {t.study_.study_name for t in (a, b, c)}
    assert len(names) == 3
    assert [len(t.study_.trials) for t in (a, b, c)] == [2, 1, 1]


@pytest.mark.slow
def test_real_goog_signals() -> None:
    """Real daily GOOG signals: figures exist for model and baselines on the same folds."""
    data = build_dataset(load_candles_file(sample_candles_path("GOOG")), symbol="GOOG")
    trainer = ModelTrainer(n_trials=2, n_splits=3).fit(data.X, data.y, data.t0, data.t1)
    report = trainer.cv_report_
    for fold in report["folds"]:
        assert fold["model"]["count"] == fold["always_take"]["count"] == fold["logistic"]["count"]
        # walk-forward: the model trained only on signals before the test fold
        assert pd.Timestamp(fold["test_start"]) > trainer.train_start_
    assert 0.0 < report["model"]["log_loss"] < 2.0
    assert report["always_take"]["base_rate"] == pytest.approx(
        data.y[-report["always_take"]["count"]:].mean())
