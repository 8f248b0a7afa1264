"""A training job over the API on real candles: finishes, is activated, serves at once."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.utils.market_slices import predict_body, write_slice
from tests.utils.service import ADMIN_KEY, Service, start_service


def poll_job(http, job_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    progress_seen = []
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        progress_seen.append(job["progress"])
        if job["status"] in {"succeeded", "failed"}:
            job["progress_seen"] = progress_seen
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} still running")


def test_training_job_activates_model_used_by_next_predictions(service: Service,
                                                               api_db_url: str, tmp_path: Path):
    csv = write_slice(tmp_path / "goog.csv", "GOOG", 0, 1400)
    with service.client(key=ADMIN_KEY) as http:
        before = http.post("/api/v1/predict", json=predict_body("tj-0")).json()["model"]
        with open(csv, "rb") as fh:
            r = http.post("/api/v1/models/train",
                          files={"file": ("goog.csv", fh, "text/csv")},
                          data={"trials": "2", "seed": "7", "use_database": "false"})
        assert r.status_code == 202, r.text
        job = poll_job(http, r.json()["job_id"])
        assert job["status"] == "succeeded", job
        assert job["progress_seen"] == sorted(job["progress_seen"])  # monotone progress
        result = job["result"]
        # Every stored figure is out-of-sample and sits beside its baselines.
        for key in ("model", "always_take", "logistic"):
            assert result["metrics"][key]["count"] > 0
        new_id = result["model_id"]
        if not result["promoted"]:  # worse than the active one: the manual override
            act = http.post(f"/api/v1/models/{new_id}/activate")
            assert act.status_code == 200 and act.json()["status"] == "active"
        after = http.post("/api/v1/predict", json=predict_body("tj-1")).json()["model"]
        models = http.get("/api/v1/models").json()
    assert after["id"] == new_id != before["id"]
    assert [m["id"] for m in models["data"] if m["status"] == "active"] == [new_id]
    with psycopg.connect(api_db_url) as conn:
        activated_by = conn.execute("SELECT activated_by FROM ml_models WHERE id = %s",
                                    (new_id,)).fetchone()[0]
    assert activated_by


def test_activation_reaches_another_replica_without_restart(service: Service,
                                                            api_db_url: str, tmp_path: Path):
    """Two replicas on one database: activating on one swaps the model on the other
    (LISTEN/NOTIFY, polling as fallback)."""
    other = start_service(db_url=api_db_url, data_dir=tmp_path / "replica2")
    try:
        with psycopg.connect(api_db_url, autocommit=True) as conn:
            src = conn.execute("SELECT id FROM ml_models WHERE status = 'active'").fetchone()[0]
            cols = ("name, algorithm, feature_names, feature_set_version, hyperparameters, "
                    "metrics, training_distribution, train_start, train_end, n_samples, "
                    "artifact, artifact_format, artifact_sha256")
            new_id = conn.execute(
                f"INSERT INTO ml_models (version, notes, {cols}) SELECT version + 1, "
                f"'copy for the replica test', {cols} FROM ml_models WHERE id = %s "
                "RETURNING id", (src,)).fetchone()[0]
        with service.client(key=ADMIN_KEY) as http:
            assert http.post(f"/api/v1/models/{new_id}/activate").status_code == 200
        deadline = time.monotonic() + 15
        seen = None
        with other.client() as http2:
            while time.monotonic() < deadline:
                seen = http2.post("/api/v1/predict",
                                  json=predict_body(f"rep-{time.monotonic_ns()}")).json()
                if seen["model"]["id"] == new_id:
                    break
                time.sleep(0.2)
        assert seen is not None and seen["model"]["id"] == new_id
    finally:
        other.stop()


def test_a_model_with_other_features_is_refused_not_served(service: Service, api_db_url: str):
    """A model whose feature list differs from what this service computes (another feature
    set, or another order) is never served: activation answers 409 and nothing changes."""
    with psycopg.connect(api_db_url, autocommit=True) as conn:
        src, names = conn.execute(
            "SELECT id, feature_names FROM ml_models WHERE status = 'active'").fetchone()
        cols = ("name, algorithm, feature_set_version, hyperparameters, metrics, "
                "training_distribution, train_start, train_end, n_samples, artifact, "
                "artifact_format, artifact_sha256")
        reordered = list(reversed(names))
        bad_id = conn.execute(
            f"INSERT INTO ml_models (version, feature_names, {cols}) SELECT version + 1, %s, "
            f"{cols} FROM ml_models WHERE id = %s RETURNING id",
            (psycopg.types.json.Jsonb(reordered), src)).fetchone()[0]
    with service.client(key=ADMIN_KEY) as http:
        r = http.post(f"/api/v1/models/{bad_id}/activate")
        served = http.post("/api/v1/predict", json=predict_body("feat-1")).json()["model"]
    assert r.status_code == 409 and "feature" in r.json()["detail"]
    assert served["id"] == src
    with psycopg.connect(api_db_url) as conn:
        assert conn.execute("SELECT status FROM ml_models WHERE id = %s",
                            (bad_id,)).fetchone()[0] == "candidate"


def test_a_json_training_request_is_refused_not_run_on_defaults(service: Service):
    with service.client(key=ADMIN_KEY) as http:
        r = http.post("/api/v1/models/train", json={"sample": "GOOG", "promote": False})
    assert r.status_code == 415
