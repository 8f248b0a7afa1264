"""The bootstrap dataset: which context features it can teach, and which it leaves to real
outcomes."""

from __future__ import annotations

import numpy as np

from backend.ml.boosters import predict_booster
from backend.ml.candles import load_candles_file, sample_candles_path
from backend.ml.dataset import build_dataset
from backend.ml.model_trainer import ModelTrainer

BOT_CONTROLLED = ("stop_dist_atr", "target_dist_atr", "reward_risk")


def test_bootstrap_leaves_stop_and_target_features_missing_and_inert() -> None:
    data = build_dataset(load_candles_file(sample_candles_path("GOOG")))
    for name in BOT_CONTROLLED:
        assert data.X[name].isna().all(), name
    assert data.X["signal_strength"].notna().all()
    trainer = ModelTrainer(n_trials=2, n_splits=3, seed=2).fit(data.X, data.y, data.t0, data.t1)
    # whatever stop and target the bot sends, a bootstrap model's answer does not move
    X = data.X.to_numpy(dtype=np.float64)[:50].copy()
    base = predict_booster(trainer.booster_, X)
    cols = [data.X.columns.get_loc(n) for n in BOT_CONTROLLED]
    X[:, cols] = (0.7, 3.1, 3.1 / 0.7)
    np.testing.assert_array_equal(predict_booster(trainer.booster_, X), base)
