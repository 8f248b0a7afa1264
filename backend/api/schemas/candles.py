"""Candles in a request body: rows or columns, parsed with numpy (no per-candle models).

The two JSON forms (rows, columns) are described in :mod:`backend.ml.candles_json`.

pydantic only parses the JSON (``CandlesIn`` is ``Any`` with the documented schema: checking
the shape there cost more than the rest of a request's parsing); the routes hand it to
:func:`backend.ml.candles_json.candles_to_arrays`, which checks the shape and every value
rule, raising :class:`CandleError` with the field path (the API maps it to 422).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import WithJsonSchema

from backend.ml.candles import OHLCV
from backend.ml.candles_json import _MAX_EPOCH_SECONDS, _MIN_EPOCH_SECONDS, COLUMNS
from backend.ml.market_features import MIN_CANDLES

# The range candles_json.check_epoch_range enforces, so /docs shows it before a 422 does.
_EPOCH_SCHEMA = {"type": "number", "minimum": _MIN_EPOCH_SECONDS,
                 "exclusiveMaximum": _MAX_EPOCH_SECONDS}
_TIME_SCHEMA = {"oneOf": [_EPOCH_SCHEMA, {"type": "string", "format": "date-time"}],
                "description": "Bar open time: epoch seconds (1900-01-01 up to 1e11 s; a "
                               "larger number is taken for milliseconds and refused) or ISO "
                               "8601 (naive = UTC). Strictly increasing."}

_VALUE_SCHEMAS = {**{c: {"type": "number", "exclusiveMinimum": 0} for c in OHLCV[:4]},
                  "volume": {"type": "number", "minimum": 0}}


def candles_schema(min_items: int, *, what: str = "") -> dict[str, Any]:
    """The JSON schema of candles in either form, at least ``min_items`` of them."""
    columns = {
        "type": "object",
        "required": list(COLUMNS),
        "properties": {
            "time": {"type": "array", "items": _TIME_SCHEMA, "minItems": min_items},
            **{c: {"type": "array", "items": v, "minItems": min_items}
               for c, v in _VALUE_SCHEMAS.items()},
        },
    }
    rows = {"type": "array", "minItems": min_items, "items": {
        "type": "object", "required": list(COLUMNS),
        "properties": {"time": _TIME_SCHEMA, **_VALUE_SCHEMAS}}}
    return {"description": "OHLCV candles, oldest first: a list of row objects or one object "
                           "of equal-length columns. Prices finite and > 0, open and close "
                           f"within [low, high], volume >= 0.{what}",
            "oneOf": [rows, columns]}


CandlesIn = Annotated[Any, WithJsonSchema(candles_schema(1))]
# /predict: the market features need MIN_CANDLES bars up to the signal (fewer: 422).
PredictCandlesIn = Annotated[Any, WithJsonSchema(candles_schema(
    MIN_CANDLES, what=f" /predict needs at least {MIN_CANDLES} candles at or before the "
                      "signal time (the longest indicator window + 1)."))]


def example_candles(n: int, *, start: int = 1_700_000_000, step: int = 3600,
                    base: float = 1.07) -> dict[str, list[float]]:
    """``n`` hourly EURUSD-like candles in the columns form, for the OpenAPI examples (a
    gentle wave, so every indicator is defined and the last close is near ``base``)."""
    close = [round(base + 0.002 * math.sin(i / 6) + 0.00002 * i, 5) for i in range(n)]
    opens = [close[0], *close[:-1]]
    return {"time": [start + step * i for i in range(n)], "open": opens,
            "high": [round(max(o, c) + 0.0006, 5) for o, c in zip(opens, close, strict=True)],
            "low": [round(min(o, c) - 0.0006, 5) for o, c in zip(opens, close, strict=True)],
            "close": close, "volume": [1200 + (37 * i) % 400 for i in range(n)]}
