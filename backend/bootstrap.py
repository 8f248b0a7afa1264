"""First start: train a model on real sample candles, and tell the user how to call us."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import orjson

from backend.api.auth import KEY_FILE, ApiKeys
from backend.config import Settings
from backend.db.locks import advisory_lock
from backend.ml.candles import load_candles_file, sample_candles_path
from backend.ml.ml_system import MLSystem

log = logging.getLogger(__name__)
BOOTSTRAP_LOCK = 7_315_001  # pg advisory lock key: one replica bootstraps at a time


def bootstrap_model(system: MLSystem) -> None:
    """Train, register and activate a model on the sample candles unless one is active."""
    s = system.settings
    path = s.bootstrap_candles or sample_candles_path(s.bootstrap_symbol)
    with (system.pool.connection() as conn,  # type: ignore[union-attr]
          advisory_lock(conn, key=BOOTSTRAP_LOCK)):
        if system.load_active() is not None:
            return
        print(f"No active model: training a bootstrap model on {Path(path).name} "
              f"({s.bootstrap_trials} Optuna trials)...", file=sys.stderr, flush=True)
        candles = load_candles_file(path)
        data = system.dataset_from_candles(candles, symbol=s.bootstrap_symbol,
                                           timeframe=s.bootstrap_timeframe)
        outcome = system.train(data, trials=s.bootstrap_trials, show_progress=True,
                               notes=f"bootstrap from {Path(path).name}")
        m = outcome.holdout.get("model", {})
        print(f"Bootstrap model v{outcome.version} ({outcome.reason}); held-out ROC AUC "
              f"{m.get('roc_auc')}, log loss {m.get('log_loss')}", file=sys.stderr,
              flush=True)


def example_request(settings: Settings, n: int = 120) -> Path:
    """A ready-to-send /predict body built from the last ``n`` sample candles."""
    c = load_candles_file(sample_candles_path(settings.bootstrap_symbol)).tail(n)
    body = {
        "trade_id": "example-1", "symbol": settings.bootstrap_symbol,
        "timeframe": settings.bootstrap_timeframe, "side": "long", "strategy": "ma_cross",
        "explain": True,
        "candles": {"time": c.time.tolist(), "open": c.open.tolist(), "high": c.high.tolist(),
                    "low": c.low.tolist(), "close": c.close.tolist(),
                    "volume": c.volume.tolist()},
    }
    path = settings.data_dir / "example_request.json"
    path.write_bytes(orjson.dumps(body))
    return path


def announce(settings: Settings, keys: ApiKeys, system: MLSystem) -> None:
    """Print (never log) the generated keys once, and a curl example that works."""
    model = system.predictor.current
    example = example_request(settings)
    if keys.viewer_generated:  # a key file from before the viewer scope
        print(f"Generated a viewer API key (read-only: the dashboard; stored in "
              f"{settings.data_dir / KEY_FILE}; shown only now):\n"
              f"  viewer: {keys.viewer[0].decode()}", file=sys.stderr, flush=True)
    if keys.generated:
        print("Generated API keys (stored with mode 0600 in "
              f"{settings.data_dir / KEY_FILE}; shown only now):\n"
              f"  bot:   {keys.bot[0].decode()}\n  admin: {keys.admin[0].decode()}\n"
              f"  viewer: {keys.viewer[0].decode()}  (read-only: the dashboard)",
              file=sys.stderr, flush=True)
        key_expr = keys.bot[0].decode()
    elif settings.bot_api_keys.get_secret_value():
        key_expr = "$TML_BOT_API_KEYS"
    else:
        key_file = settings.data_dir / KEY_FILE
        key_expr = f"$(python3 -c 'import json;print(json.load(open(\"{key_file}\"))[\"bot\"])')"
    state = (f"serving model {model.name} v{model.version} (id {model.id})" if model
             else "no model loaded yet")
    print(f"Ready: {state}. Try:\n  curl -s -X POST http://{settings.host}:{settings.port}"
          f"/api/v1/predict -H 'Content-Type: application/json' -H \"X-API-Key: {key_expr}\" "
          f"--data @{example}\nDashboard (viewer key): http://{settings.host}:{settings.port}"
          f"/dashboard", file=sys.stderr, flush=True)
