"""Contributions of stored predictions are computed per row in effect: one row the model
cannot take (a feature beyond float32) costs its batch nothing (issue 12, item 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from backend.ml.contributions import add_contributions
from backend.ml.predictor import LoadedModel
from backend.ml.registry import load_booster
from tests.db.test_write_behind import entries, pool, writer_on  # noqa: F401 - fixture
from tests.db.test_writer_process import NAMES, tiny_booster
from tests.utils.db_factories import make_model


def _model(conn: psycopg.Connection) -> LoadedModel:
    booster = tiny_booster()
    row = make_model(conn, artifact=bytes(booster.save_raw(raw_format="json")),
                     feature_names=NAMES, artifact_format="xgboost-json")
    return LoadedModel(row, load_booster(row), None)


def _batch(model_id: int, n: int = 61, bad: int = 37):
    X = np.random.default_rng(3).normal(size=(n, len(NAMES)))
    X[bad, 1] = -1e300  # a float64 the model's float32 cannot hold
    X[5, 2] = np.nan  # missing is fine
    batch = entries(model_id, n, "c61")
    for r, x in zip(batch, X, strict=True):
        r.prediction["contributions"] = None
        r.vector = x
    return batch


def test_one_row_beyond_float32_leaves_the_other_60_their_contributions(
        conn: psycopg.Connection) -> None:
    model = _model(conn)
    batch = _batch(model.id)
    add_contributions(batch, model, 2)
    got = [r.prediction["contributions"] for r in batch]
    assert got[37] is None
    assert all(isinstance(c, dict) and c for i, c in enumerate(got) if i != 37)
    alone = model.top_contributions(batch[0].vector, 2)  # the batch gives the single answer
    assert got[0] == alone


def test_the_writer_stores_the_other_60_rows_with_their_contributions(
        pool: ConnectionPool, conn: psycopg.Connection, tmp_path: Path) -> None:  # noqa: F811
    model = _model(conn)
    w = writer_on(pool, tmp_path / "journal",
                  enrich=lambda records: add_contributions(records, model, 2))
    for r in _batch(model.id):
        w.submit(r)
    assert w.flush()
    w.close()
    rows = dict(conn.execute("SELECT trade_id, contributions FROM ml_predictions"))
    assert len(rows) == 61
    assert rows.pop("c61-37") is None
    assert all(rows.values())
