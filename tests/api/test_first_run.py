"""First start on an empty database: a model is trained on real candles, activated, and
the user gets a curl example that works."""

from __future__ import annotations

import os
import re
import subprocess

import psycopg

from tests.utils.service import BOT_KEY, Service


def test_first_start_trains_activates_and_prints_a_working_curl(bootstrap_run, service: Service):
    log = bootstrap_run["log"]
    assert "training a bootstrap model" in log
    assert re.search(r"\d+%\|", log), "a progress bar was shown"
    with psycopg.connect(bootstrap_run["url"]) as conn:
        status, metrics = conn.execute(
            "SELECT status, metrics FROM ml_models ORDER BY id LIMIT 1").fetchone()
    assert status == "active"
    assert {"model", "always_take", "logistic", "holdout"} <= set(metrics)
    curl = next(line.strip() for line in log.splitlines() if line.strip().startswith("curl "))
    # The printed example targets the first run's port: point it at this service instead.
    curl = re.sub(r"http://[^/]+/api/v1/predict", f"{service.url}/api/v1/predict", curl)
    out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30,
                         check=True, env={**os.environ, "TML_BOT_API_KEYS": BOT_KEY})
    assert '"decision"' in out.stdout and '"probability"' in out.stdout
