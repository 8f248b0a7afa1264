"""The compiled-model cache loads only libraries this user built, unchanged since: a library
planted by another user, a writable one or one whose sha256 is not the recorded one never
reaches dlopen (issue 12, item 12). The model is real (a small XGBoost booster)."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from backend.db.models import ModelRow
from backend.ml.compiled_trees import library_path
from backend.ml.native_libs import xgboost as xgb
from backend.ml.predictor import LoadedModel, load_model
from backend.ml.trusted_files import digest_path, sha256_of
from tests.utils.planted import NOBODY, planted_library

FEATURES = [f"f{i}" for i in range(4)]


@pytest.fixture(scope="module")
def row() -> ModelRow:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(FEATURES)))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(X, label=y, feature_names=FEATURES), num_boost_round=4)
    artifact = bytes(booster.save_raw(raw_format="ubj"))
    return ModelRow(id=1, name="t", version=1, algorithm="xgboost", status="active",
                    feature_names=FEATURES, feature_set_version="fs1", hyperparameters={},
                    metrics={}, train_start=None, train_end=None, n_samples=400,
                    artifact_format="xgboost-ubj",
                    artifact_sha256=hashlib.sha256(artifact).hexdigest(), notes=None,
                    created_at=datetime.now(UTC), activated_at=None, activated_by=None,
                    training_distribution={}, artifact=artifact)


def _load(row: ModelRow, cache: Path, caplog: pytest.LogCaptureFixture) -> LoadedModel:
    with caplog.at_level(logging.WARNING, logger="backend.ml.predictor"):
        return load_model(row, cache_dir=cache)


def _plant(row: ModelRow, cache: Path, marker: Path, *, record: bool = True) -> Path:
    lib = planted_library(library_path(row, cache), marker)
    if record:  # whoever can write the library can write its record too
        digest_path(lib).write_text(sha256_of(lib) + "\n")
    return lib


def test_a_library_planted_by_another_user_is_never_loaded(
        row: ModelRow, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "constructor-ran"
    cache.mkdir(mode=0o700)
    lib = _plant(row, cache, marker)
    for path in (lib, digest_path(lib)):
        os.chown(path, NOBODY, NOBODY)
    model = _load(row, cache, caplog)
    assert not marker.exists()  # its constructor never ran
    assert not model.compiled  # served by the native booster
    assert f"{lib} belongs to another user (uid {NOBODY})" in caplog.text
    assert lib.stat().st_uid == NOBODY  # refused, left for the operator to see


def test_a_shared_1777_cache_of_another_user_is_refused(
        row: ModelRow, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The issue's reproduction: the cache made by `nobody` with mode 1777."""
    cache, marker = tmp_path / "cache", tmp_path / "constructor-ran"
    cache.mkdir()
    os.chmod(cache, 0o1777)
    os.chown(cache, NOBODY, NOBODY)
    lib = _plant(row, cache, marker)
    os.chown(lib, NOBODY, NOBODY)
    model = _load(row, cache, caplog)
    assert not marker.exists()
    assert not model.compiled
    assert "belongs to another user" in caplog.text


def test_a_group_writable_library_is_refused(
        row: ModelRow, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "constructor-ran"
    cache.mkdir(mode=0o700)
    lib = _plant(row, cache, marker)
    os.chmod(lib, 0o775)
    model = _load(row, cache, caplog)
    assert not marker.exists()
    assert not model.compiled
    assert "is writable by group or others (mode 775)" in caplog.text


def test_a_library_that_differs_from_its_record_is_rebuilt_not_loaded(
        row: ModelRow, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "constructor-ran"
    model = _load(row, cache, caplog)  # built here: library and record
    assert model.compiled
    lib = library_path(row, cache)
    recorded = digest_path(lib).read_text().strip()
    assert recorded == sha256_of(lib)
    planted_library(lib, marker)  # replaced by one of our own uid, record unchanged
    again = _load(row, cache, caplog)
    assert not marker.exists()
    assert again.compiled
    assert sha256_of(lib) == digest_path(lib).read_text().strip()
    for unrecorded in (True, False):  # no record at all: rebuilt too
        planted_library(lib, marker)
        digest_path(lib).unlink(missing_ok=unrecorded)
        assert _load(row, cache, caplog).compiled
        assert not marker.exists()
    x = np.zeros(len(FEATURES))
    assert again.raw_proba(x[None])[0] == pytest.approx(model.raw_proba(x[None])[0])


def test_the_cache_is_made_0700_and_an_open_one_of_ours_is_tightened(
        row: ModelRow, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fresh, opened = tmp_path / "a" / "cache", tmp_path / "open"
    opened.mkdir()
    os.chmod(opened, 0o1777)
    for cache in (fresh, opened):
        assert _load(row, cache, caplog).compiled
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
        lib = library_path(row, cache)
        assert stat.S_IMODE(lib.stat().st_mode) & 0o077 == 0
        assert stat.S_IMODE(digest_path(lib).stat().st_mode) & 0o077 == 0
    assert not [p for p in fresh.iterdir() if p.name.startswith(".")]  # no temporary left
