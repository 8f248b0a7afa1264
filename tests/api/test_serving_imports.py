"""The serving path (the app started with a model loaded, answering /predict) never loads
the training libraries: the train job imports them when it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.utils.market_slices import predict_body
from tests.utils.pg import create_database, drop_database
from tests.utils.service import BOT_KEY, REPO

# In a fresh interpreter: create the app, run its lifespan against a database with an
# active model, answer one /predict through the whole ASGI stack, report what got imported.
SCRIPT = """
import asyncio, sys
import httpx, orjson
from backend.app import create_app

async def main() -> None:
    app = create_app()
    async with app.router.lifespan_context(app):
        assert app.state.system.predictor.current is not None, "no model loaded"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await http.post("/api/v1/predict", content=sys.stdin.buffer.read(),
                                headers={"X-API-Key": sys.argv[1],
                                         "Content-Type": "application/json"})
            assert r.status_code == 200, r.text
    print(orjson.dumps(sorted(m for m in ("optuna", "sklearn", "tqdm")
                              if m in sys.modules)).decode())

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def loaded(pg_admin_url: str, bootstrap_run: dict[str, str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """The training libraries in sys.modules of a server that served a prediction."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name, template=bootstrap_run["template"])
    data_dir = tmp_path_factory.mktemp("serving")
    env = {**os.environ, "DATABASE_URL": url, "TML_DATA_DIR": str(data_dir),
           "TML_BOT_API_KEYS": BOT_KEY, "TML_ADMIN_API_KEYS": "admin-key-for-this-test",
           "TML_BOOTSTRAP_ON_START": "false",
           "TML_COMPILED_MODEL_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / "tml-test-so")}
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT, BOT_KEY], cwd=REPO, env=env,
                             input=orjson.dumps(predict_body("serving-1")),
                             capture_output=True, timeout=300)
    finally:
        drop_database(pg_admin_url, name)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
    yield set(orjson.loads(out.stdout.splitlines()[-1]))


def test_serving_loads_neither_optuna_nor_tqdm(loaded: set[str]) -> None:
    assert not loaded & {"optuna", "tqdm"}, loaded


def test_the_serve_command_loads_no_training_library() -> None:
    """``python -m backend serve`` goes through the CLI module first: it must not load them
    either (checked up to the point where the server would start)."""
    code = ("import sys, backend.__main__ as cli, backend.app; "
            "print(sorted(m for m in ('optuna', 'sklearn', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.split()[-1] == "[]", out.stdout


def test_serving_loads_no_scikit_learn(loaded: set[str]) -> None:
    """Not even through xgboost and lightgbm, which import it whenever it is installed
    (backend/ml/native_libs.py hides it while they load on the serving path)."""
    assert "sklearn" not in loaded, loaded
