"""Sample weights by average label uniqueness and class balance; the trainer's choice."""

from __future__ import annotations

import numpy as np
import pytest

from backend.ml.boosters import predict_booster
from backend.ml.calibration import Calibration
from backend.ml.model_trainer import ModelTrainer
from backend.ml.weights import average_uniqueness, class_balance, sample_weights
from tests.utils.synthetic import planted_signals

H = np.timedelta64(1, "h")
T = np.datetime64("2024-01-01T00:00", "ns")


def test_uniqueness_by_hand() -> None:
    # A [0, 2] and B [1, 3] share hour 1; C [5, 6] overlaps nobody; D is the instant 5,
    # where C is open too.
    t0 = np.array([T, T + H, T + 5 * H, T + 5 * H])
    t1 = np.array([T + 2 * H, T + 3 * H, T + 6 * H, T + 5 * H])
    np.testing.assert_allclose(average_uniqueness(t0, t1), [0.75, 0.75, 1.0, 0.5])


def test_disjoint_windows_are_unique_and_copies_share() -> None:
    t0 = T + np.arange(5) * 10 * H
    np.testing.assert_allclose(average_uniqueness(t0, t0 + 3 * H), 1.0)
    same = np.array([T, T, T])
    np.testing.assert_allclose(average_uniqueness(same, same + 4 * H), 1 / 3)


def test_class_balance_gives_each_class_half() -> None:
    y = np.array([1, 0, 0, 0])
    w = class_balance(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum()) == pytest.approx(2.0)


def test_sample_weights_combine_and_refuse_unknown_options() -> None:
    t0 = np.array([T, T + H, T + 5 * H, T + 5 * H])
    t1 = np.array([T + 2 * H, T + 3 * H, T + 6 * H, T + 5 * H])
    y = np.array([1, 0, 0, 0])
    assert sample_weights(y, t0, t1, sample_weight="none", class_weight="none") is None
    w = sample_weights(y, t0, t1, sample_weight="uniqueness", class_weight="balanced")
    raw = np.array([0.75, 0.75, 1.0, 0.5]) * class_balance(y)
    np.testing.assert_allclose(w, raw / raw.mean())
    with pytest.raises(ValueError, match=r"^sample_weight"):
        sample_weights(y, t0, t1, sample_weight="time_decay", class_weight="none")
    with pytest.raises(ValueError, match=r"^class_weight"):
        sample_weights(y, t0, t1, sample_weight="none", class_weight="auto")


def test_trainer_chooses_weighting_by_cv_and_reports_it() -> None:
    data = planted_signals(n=300, seed=4)
    trainer = ModelTrainer(n_trials=6, n_splits=3, seed=2).fit(*data)
    tried = {(t.params["sample_weight"], t.params["class_weight"])
             for t in trainer.study_.trials}
    assert len(tried) > 1  # the options are searched, not fixed
    best = trainer.study_.best_trial.params
    assert trainer.weighting_ == {"sample_weight": best["sample_weight"],
                                  "class_weight": best["class_weight"]}
    assert trainer.cv_report_["weighting"] == trainer.weighting_
    assert "sample_weight" not in trainer.booster_params_  # not a booster parameter


def test_trainer_report_carries_calibration_reliability_and_importance() -> None:
    X, y, t0, t1 = planted_signals(n=300, seed=6)
    trainer = ModelTrainer(n_trials=2, n_splits=3).fit(X, y, t0, t1)
    report = trainer.cv_report_
    assert report["tuned_on_these_folds"] is True
    stored = Calibration.from_json(report["calibration"])  # what the registry row keeps
    raw = predict_booster(trainer.booster_, X.to_numpy())
    np.testing.assert_array_equal(stored.apply(raw), trainer.calibration_.apply(raw))
    assert report["calibration_choice"]["method"] == report["calibration"]["method"]
    oof = report["model"]["count"]
    for who in ("model", "model_calibrated"):
        assert sum(b["count"] for b in report["reliability"][who]) == oof
    table = report["feature_importance"]
    assert table[0]["feature"] == "f0"  # the strongest planted feature
    assert sum(r["gain"] for r in table) == pytest.approx(1.0)
    assert all(r["mean_abs_shap"] >= 0 for r in table)
