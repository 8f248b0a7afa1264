"""Barrier fields of a training job over real HTTP: they set the labels and are stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from backend.ml.barrier_spec import Barrier
from backend.ml.candles import load_candles_file
from backend.ml.dataset import build_dataset
from tests.api.test_training_job import poll_job
from tests.utils.market_slices import write_slice
from tests.utils.service import ADMIN_KEY, Service


def test_barrier_fields_change_the_labels_and_are_stored(service: Service, api_db_url: str,
                                                         tmp_path: Path) -> None:
    csv = write_slice(tmp_path / "goog.csv", "GOOG", 0, 1400)
    with service.client(key=ADMIN_KEY) as http:
        bad = http.post("/api/v1/models/train", data={"sample": "GOOG", "horizon": "2d"})
        assert bad.status_code == 422, bad.text  # refused before any job starts
        assert "'2d' is a duration, so the candles need a timeframe" in bad.text
        with open(csv, "rb") as fh:
            r = http.post("/api/v1/models/train", files={"file": ("goog.csv", fh, "text/csv")},
                          data={"trials": "1", "seed": "7", "use_database": "false",
                                "promote": "false", "timeframe": "1d", "tp_atr": "1",
                                "sl_atr": "1", "horizon": "1w"})
        assert r.status_code == 202, r.text
        job = poll_job(http, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["params"]["barrier"] == {"tp_atr": 1.0, "sl_atr": 1.0, "horizon": "1w"}
    expected = build_dataset(load_candles_file(csv), timeframe="1d",
                             barrier=Barrier(1.0, 1.0, "1w"))
    holdout = job["result"]["holdout"]["model"]
    assert holdout["count"] == int(np.ceil(0.2 * len(expected)))
    assert holdout["base_rate"] == pytest.approx(expected.y[-holdout["count"]:].mean())
    default = build_dataset(load_candles_file(csv), timeframe="1d")
    assert default.y.mean() != pytest.approx(expected.y.mean())
    with psycopg.connect(api_db_url) as conn:
        stored = conn.execute("SELECT metrics->'barrier' FROM ml_models WHERE id = %s",
                              (job["result"]["model_id"],)).fetchone()[0]
    assert stored == {"tp_atr": 1.0, "sl_atr": 1.0, "atr_period": 14, "horizon": "1w",
                      "horizon_bars": 7, "timeframe": "1d",
                      "horizon_bars_by_timeframe": {"1d": 7}}


def test_several_files_train_one_pooled_model(service: Service, api_db_url: str,
                                              tmp_path: Path) -> None:
    """Two uploads in one job: symbol and timeframe from each file's name, one dataset,
    the horizon as a duration turned into bars of each file's own timeframe."""
    eurusd = write_slice(tmp_path / "EURUSD-1h.csv", "EURUSD", 0, 1500)
    goog = write_slice(tmp_path / "GOOG-1d.csv", "GOOG", 0, 1400)
    with service.client(key=ADMIN_KEY) as http:
        with open(eurusd, "rb") as fe, open(goog, "rb") as fg:
            r = http.post("/api/v1/models/train",
                          files=[("file", ("EURUSD-1h.csv", fe, "text/csv")),
                                 ("file", ("GOOG-1d.csv", fg, "text/csv"))],
                          data={"trials": "1", "seed": "7", "use_database": "false",
                                "promote": "false", "horizon": "2d"})
        assert r.status_code == 202, r.text
        job = poll_job(http, r.json()["job_id"])
        with open(eurusd, "rb") as fe:  # a name that contradicts the form is refused
            bad = http.post("/api/v1/models/train",
                            files=[("file", ("EURUSD-1h.csv", fe, "text/csv"))],
                            data={"timeframe": "4h", "use_database": "false"})
    assert bad.status_code == 422 and "timeframe" in bad.text, bad.text
    assert job["status"] == "succeeded", job
    assert job["params"]["file"] == ["EURUSD-1h.csv", "GOOG-1d.csv"]
    barrier = Barrier.from_values(horizon="2d")
    parts = [build_dataset(load_candles_file(eurusd), symbol="EURUSD", timeframe="1h",
                           barrier=barrier),
             build_dataset(load_candles_file(goog), symbol="GOOG", timeframe="1d",
                           barrier=barrier)]
    n = sum(len(p) for p in parts)
    holdout = job["result"]["holdout"]["model"]["count"]
    # every signal of both files: the last 20 % held out, the rest (purged) trained on
    assert holdout == int(np.ceil(0.2 * n))
    assert n - holdout - 48 <= job["result"]["n_samples"] <= n - holdout
    with psycopg.connect(api_db_url) as conn:
        stored = conn.execute("SELECT metrics->'barrier' FROM ml_models WHERE id = %s",
                              (job["result"]["model_id"],)).fetchone()[0]
    assert stored["horizon_bars_by_timeframe"] == {"1h": 48, "1d": 2}
