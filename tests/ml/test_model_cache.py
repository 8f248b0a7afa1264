"""The local copy of the active model: atomic, private, verified on read (issue 12 item 3)."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from backend.ml import model_cache
from backend.ml.model_cache import ModelCopyError
from tests.utils.db_factories import make_model

METRICS = {"model": {"roc_auc": 0.61},
           "calibration": {"method": "isotonic", "x": [0.0, 1.0], "y": [0.1, 0.9]},
           "barrier": {"tp_atr": 3.0, "sl_atr": 1.5, "horizon_bars": 12}}


@pytest.fixture
def row(conn: psycopg.Connection):
    return make_model(conn, metrics=METRICS, activate=True,
                      training_distribution={"rsi_14": {"mean": 50.0}})


def test_round_trip_keeps_every_field_the_predictor_needs(row, tmp_path: Path):
    path = model_cache.write_copy(tmp_path, row)
    assert path == model_cache.copy_path(tmp_path, row.name)
    back = model_cache.read_copy(tmp_path, row.name)
    assert back == row  # artifact bytes, sha256, metrics (calibration, barrier), times
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_copy_is_private(row, tmp_path: Path):
    path = model_cache.write_copy(tmp_path / "data", row)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_no_copy_is_none(tmp_path: Path):
    assert model_cache.read_copy(tmp_path, "default") is None


@pytest.mark.parametrize("offset", [-1, 40, 200])  # artifact, header, metadata
def test_a_corrupted_copy_is_refused(row, tmp_path: Path, offset: int):
    path = model_cache.write_copy(tmp_path, row)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelCopyError):
        model_cache.read_copy(tmp_path, row.name)


def test_tampered_metadata_with_a_matching_artifact_is_refused(row, tmp_path: Path):
    path = model_cache.write_copy(tmp_path, row)
    data = path.read_bytes().replace(b'"tp_atr": 3.0', b'"tp_atr": 9.0')
    assert data != path.read_bytes()
    path.write_bytes(data)
    with pytest.raises(ModelCopyError, match="sha256"):
        model_cache.read_copy(tmp_path, row.name)


def test_a_copy_others_can_write_is_refused(row, tmp_path: Path):
    path = model_cache.write_copy(tmp_path, row)
    os.chmod(path, 0o666)
    with pytest.raises(ModelCopyError, match="writable"):
        model_cache.read_copy(tmp_path, row.name)


def test_rewriting_replaces_the_copy(row, conn: psycopg.Connection, tmp_path: Path):
    model_cache.write_copy(tmp_path, row)
    newer = make_model(conn, metrics=METRICS, activate=True, artifact=b"{}")
    model_cache.write_copy(tmp_path, newer)
    assert model_cache.read_copy(tmp_path, row.name) == newer
