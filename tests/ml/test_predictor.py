"""Serving path: verified load from the registry, compiled == native, contributions, swap."""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from backend.db import models
from backend.ml.boosters import predict_booster
from backend.ml.candles import load_candles_file, sample_candles_path
from backend.ml.compiled_trees import (
    COMPILED_TOLERANCE,
    _split_values,
    library_path,
    verification_rows,
)
from backend.ml.dataset import Dataset, build_dataset
from backend.ml.model_trainer import ModelTrainer
from backend.ml.predictor import LoadedModel, Predictor, load_model
from backend.ml.registry import ModelIntegrityError, register
from backend.ml.trusted_files import digest_path, sha256_of

ALGORITHMS = ["xgboost", "lightgbm"]


@pytest.fixture(scope="module")
def goog() -> Dataset:
    """Real signals on GOOG daily candles (64 features, NaN where a feature is undefined)."""
    return build_dataset(load_candles_file(sample_candles_path("GOOG")), symbol="GOOG")


@pytest.fixture(scope="module")
def trainers(goog: Dataset) -> dict[str, ModelTrainer]:
    fitted = {
        algorithm: ModelTrainer(algorithm=algorithm, n_trials=2, n_splits=3, seed=0)
        .fit(goog.X, goog.y, goog.t0, goog.t1)
        for algorithm in ALGORITHMS
    }
    # The search space reaches near-constant models; a model without splits would make the
    # compiled-vs-native and contribution tests compare constants.
    for trainer in fitted.values():
        assert len(_split_values(trainer.booster_, trainer.feature_names_)) > 10
    return fitted


def _rows_with_nan(goog: Dataset, share: float = 0.1) -> np.ndarray:
    X = goog.X.to_numpy(dtype=np.float64).copy()
    X[np.random.default_rng(0).random(X.shape) < share] = np.nan
    return X


def _registered(conn: psycopg.Connection, trainer: ModelTrainer) -> models.ModelRow:
    row = register(conn, trainer, name="test", feature_set_version="fs1")
    return models.get(conn, model_id=row.id)  # read back exactly what the database holds


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_registered_model_predicts_like_the_trainer(
    conn: psycopg.Connection, trainers: dict, goog: Dataset, algorithm: str, tmp_path: Path
) -> None:
    trainer = trainers[algorithm]
    row = _registered(conn, trainer)
    X = _rows_with_nan(goog)
    native = load_model(row, compile=False)
    assert not native.compiled
    assert (native.id, native.version, native.sha256) == (row.id, row.version, row.artifact_sha256)
    assert native.feature_names == list(goog.X.columns)
    np.testing.assert_array_equal(native.raw_proba(X), predict_booster(trainer.booster_, X))
    # served probabilities are the trainer's out-of-fold calibration of the trees' output
    np.testing.assert_allclose(
        native.predict_proba(X), trainer.calibration_.apply(predict_booster(trainer.booster_, X)),
        rtol=0, atol=1e-15)
    assert native.calibration == trainer.calibration_
    compiled = load_model(row, cache_dir=tmp_path)
    assert compiled.compiled
    np.testing.assert_allclose(compiled.predict_proba(X), native.predict_proba(X),
                               rtol=0, atol=COMPILED_TOLERANCE)


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compiled_matches_native_on_split_thresholds(
    conn: psycopg.Connection, trainers: dict, algorithm: str, tmp_path: Path
) -> None:
    """Values exactly on, and one ulp either side of, every split threshold, plus NaN: the
    float32 (XGBoost) / float64 (LightGBM) comparisons give the same branch both ways."""
    model = load_model(_registered(conn, trainers[algorithm]), cache_dir=tmp_path)
    assert model.compiled
    rows = verification_rows(model.booster, model.feature_names, n_rows=1000, seed=99)
    assert np.isnan(rows).any()
    gap = np.abs(model.raw_proba(rows) - predict_booster(model.booster, rows))
    assert gap.max() <= COMPILED_TOLERANCE
    # served (calibrated) probabilities: compiled batch and single-row calls match the
    # native booster's output put through the same calibration
    native = model.calibration.apply(predict_booster(model.booster, rows))
    np.testing.assert_allclose(model.predict_proba(rows), native, rtol=0,
                               atol=COMPILED_TOLERANCE)
    singles = [model.predict_one(r) for r in rows[:50]]
    np.testing.assert_allclose(singles, native[:50], rtol=0, atol=COMPILED_TOLERANCE)


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
def test_float64_values_that_alias_missing_are_served_exactly(
    conn: psycopg.Connection, trainers: dict, goog: Dataset, tmp_path: Path
) -> None:
    """tl2cgen marks a missing entry by writing -1 into the low word of the value; a real
    float64 whose low 32 bits are all ones (one ulp off many round numbers) looks the same."""
    model = load_model(_registered(conn, trainers["lightgbm"]), cache_dir=tmp_path)
    assert model.compiled
    X = goog.X.to_numpy(dtype=np.float64)[:60].copy()
    X.view(np.int32)[:, ::2][~np.isnan(X)] = -1  # moves each value by ~1e-16 relative
    native = model.calibration.apply(predict_booster(model.booster, X))
    np.testing.assert_allclose(model.predict_proba(X), native, rtol=0, atol=COMPILED_TOLERANCE)
    np.testing.assert_allclose([model.predict_one(r) for r in X], native,
                               rtol=0, atol=COMPILED_TOLERANCE)


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
def test_tampered_artifact_is_refused(conn: psycopg.Connection, trainers: dict) -> None:
    row = _registered(conn, trainers["xgboost"])
    conn.execute("UPDATE public.ml_models SET artifact = overlay(artifact placing '\\x00'::bytea "
                 "from 100 for 1) WHERE id = %s", (row.id,))
    tampered = models.get(conn, model_id=row.id)
    with pytest.raises(ModelIntegrityError) as info:
        load_model(tampered, compile=False)
    message = str(info.value)
    assert f"id={row.id}" in message and f"v{row.version}" in message
    assert row.artifact_sha256 in message


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
def test_compiled_library_is_cached_by_digest(
    conn: psycopg.Connection, trainers: dict, tmp_path: Path
) -> None:
    row = _registered(conn, trainers["xgboost"])
    load_model(row, cache_dir=tmp_path)
    libraries = list(tmp_path.glob("*.so"))
    assert [p.name.split("-")[0] for p in libraries] == [row.artifact_sha256]
    built = libraries[0].stat().st_mtime_ns
    again = load_model(row, cache_dir=tmp_path)
    assert again.compiled
    assert libraries[0].stat().st_mtime_ns == built  # reused, not rebuilt
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
def test_broken_cached_library_falls_back_to_native(
    conn: psycopg.Connection, trainers: dict, goog: Dataset, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    row = _registered(conn, trainers["xgboost"])
    lib = library_path(row, tmp_path)
    lib.write_bytes(b"not a shared library")  # a corrupt cache entry, recorded as built
    digest_path(lib).write_text(sha256_of(lib))  # (unrecorded, it would just be rebuilt)
    with caplog.at_level(logging.WARNING, logger="backend.ml.predictor"):
        model = load_model(row, cache_dir=tmp_path)
    assert not model.compiled
    assert "native booster" in caplog.text
    X = _rows_with_nan(goog)
    np.testing.assert_array_equal(model.raw_proba(X), predict_booster(model.booster, X))


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_contributions_sum_to_raw_margin(
    conn: psycopg.Connection, trainers: dict, goog: Dataset, algorithm: str
) -> None:
    model = load_model(_registered(conn, trainers[algorithm]), compile=False)
    X = _rows_with_nan(goog)[:40]
    contributions = model.contributions(X)
    assert contributions.shape == (40, model.n_features + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_margin(X), atol=1e-5)
    # the trees' probability = sigmoid(margin) (served: that, calibrated)
    np.testing.assert_allclose(1 / (1 + np.exp(-model.raw_margin(X))), model.raw_proba(X),
                               atol=1e-6)
    top = model.top_contributions(X[0], 5)
    assert len(top) == 5
    magnitudes = [abs(v) for v in top.values()]
    assert magnitudes == sorted(magnitudes, reverse=True)
    by_name = dict(zip(model.feature_names, contributions[0, :-1], strict=True))
    assert all(by_name[name] == pytest.approx(value) for name, value in top.items())
    assert max(magnitudes) == pytest.approx(np.abs(contributions[0, :-1]).max())


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
def test_bad_shapes_name_the_field(conn: psycopg.Connection, trainers: dict) -> None:
    model = load_model(_registered(conn, trainers["xgboost"]), compile=False)
    f = model.n_features
    with pytest.raises(ValueError, match=rf"^X: expected shape \(n, {f}\)"):
        model.predict_proba(np.zeros((2, f - 1)))
    with pytest.raises(ValueError, match=rf"^x: expected shape \({f},\)"):
        model.predict_one(np.zeros(f + 1))
    with pytest.raises(ValueError, match=r"^k:"):
        model.top_contributions(np.zeros(f), 0)


def test_decide_and_threshold() -> None:
    barrier = {"tp_atr": 2.0, "sl_atr": 1.0}
    predictor = Predictor(threshold=0.55)
    assert predictor.current is None
    decide = functools.partial(predictor.decide, barrier=barrier, entry=1.0, side="long")
    assert decide(0.55).take and decide(0.55).rule == "threshold"  # probability >= threshold
    assert not decide(0.5499).take
    with pytest.raises(ValueError, match=r"^threshold:"):
        Predictor(threshold=1.5)


def test_expected_value_rule_by_default() -> None:
    """No threshold: take when p * reward - (1 - p) * risk - costs > margin, with reward/risk
    from the signal's stop and target when given, else from the model's barrier."""
    predictor = Predictor(costs_r=0.1)
    barrier = {"tp_atr": 2.0, "sl_atr": 1.0}  # reward 2 R: break-even p = (1 + 0.1) / 3
    d = predictor.decide(0.37, barrier=barrier, entry=100.0, side="long")
    assert d.take and d.rule == "expected_value"
    assert d.expected_r == pytest.approx(0.37 * 2 - 0.63 - 0.1)
    assert predictor.break_even(d) == pytest.approx(1.1 / 3)
    assert not predictor.decide(0.36, barrier=barrier, entry=100.0, side="long").take
    # the signal's own stop 1 below and target 1 above a short's entry: reward 1 R
    own = predictor.decide(0.5, barrier=barrier, entry=100.0, side="short", stop_price=101.0,
                           target_price=99.0)
    assert (own.reward_r, own.take) == (1.0, False)  # 0.5 - 0.5 - 0.1 < 0
    with pytest.raises(ValueError, match="stop_price"):
        predictor.decide(0.5, barrier=barrier, entry=100.0, side="long", stop_price=101.0,
                         target_price=105.0)


@pytest.mark.slow  # trains on the full GOOG data (the trainers fixture)
def test_swap_while_predicting(
    conn: psycopg.Connection, trainers: dict, goog: Dataset, tmp_path: Path
) -> None:
    loaded: list[LoadedModel] = [
        load_model(_registered(conn, trainers[a]), cache_dir=tmp_path) for a in ALGORITHMS
    ]
    x = _rows_with_nan(goog)[7]
    expected = {m.id: m.predict_one(x) for m in loaded}
    assert len(set(expected.values())) == 2  # the two models are distinguishable
    predictor = Predictor(threshold=0.5)
    predictor.swap(loaded[0])
    results: list[tuple[int, float]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        try:
            while not stop.is_set():
                model = predictor.current  # taken once per request
                results.append((model.id, model.predict_one(x)))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=serve) for _ in range(2)]
    for w in workers:
        w.start()
    for i in range(100):
        previous = predictor.swap(loaded[(i + 1) % 2])
        assert previous is loaded[i % 2]
        seen = len(results)
        while len(results) < seen + 3 and not errors:  # let requests run between swaps
            time.sleep(0.0002)
    stop.set()
    for w in workers:
        w.join()
    assert not errors
    assert {model_id for model_id, _ in results} == set(expected)
    assert all(p == expected[model_id] for model_id, p in results)
