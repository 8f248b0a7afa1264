"""Real candles (EURUSD hourly, GOOG daily from the ``backtesting`` package) for API tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.ml.candles import Candles, load_candles_file, sample_candles_path


def sample(name: str = "EURUSD") -> Candles:
    return load_candles_file(sample_candles_path(name))


def write_slice(path: Path, name: str = "EURUSD", start: int = 0, stop: int = 1500) -> Path:
    """Write rows [start, stop) of a sample file as CSV (the CLI/API input format)."""
    frame = sample(name).to_frame().iloc[start:stop]
    frame.to_csv(path)
    return path


def candles_columns(c: Candles) -> dict[str, list[Any]]:
    return {"time": c.time.tolist(), "open": c.open.tolist(), "high": c.high.tolist(),
            "low": c.low.tolist(), "close": c.close.tolist(), "volume": c.volume.tolist()}


def candles_rows(c: Candles) -> list[dict[str, Any]]:
    cols = candles_columns(c)
    return [{k: cols[k][i] for k in cols} for i in range(len(c))]


def predict_body(trade_id: str, *, end: int = 3000, n: int = 120, side: str = "long",
                 name: str = "EURUSD", rows: bool = False, **extra: Any) -> dict[str, Any]:
    """A /predict body with the ``n`` real candles ending before row ``end``."""
    c = sample(name).head(end).tail(n)
    return {"trade_id": trade_id, "symbol": name, "timeframe": "1h", "side": side,
            "strategy": "ma_cross",
            "candles": candles_rows(c) if rows else candles_columns(c), **extra}
