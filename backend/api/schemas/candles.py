"""Candles in a request body: rows or columns, parsed with numpy (no per-candle models).

The two JSON forms (rows, columns) are described in :mod:`backend.ml.candles_json`.

pydantic only parses the JSON (``CandlesIn`` is ``Any`` with the documented schema: checking
the shape there cost more than the rest of a request's parsing); the routes hand it to
:func:`backend.ml.candles_json.candles_to_arrays`, which checks the shape and every value
rule, raising :class:`CandleError` with the field path (the API maps it to 422).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import WithJsonSchema

from backend.ml.candles import OHLCV
from backend.ml.candles_json import COLUMNS

_TIME_SCHEMA = {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}],
                "description": "Bar open time: epoch seconds or ISO 8601 (naive = UTC)"}
_ROW_SCHEMA = {
    "type": "object",
    "required": list(COLUMNS),
    "properties": {"time": _TIME_SCHEMA, **{c: {"type": "number"} for c in OHLCV}},
}
_COLUMNS_SCHEMA = {
    "type": "object",
    "required": list(COLUMNS),
    "properties": {
        "time": {"type": "array", "items": _TIME_SCHEMA},
        **{c: {"type": "array", "items": {"type": "number"}} for c in OHLCV},
    },
}
CandlesIn = Annotated[
    Any,
    WithJsonSchema({
        "description": "OHLCV candles, oldest first: a list of row objects or one object "
                       "of equal-length columns.",
        "oneOf": [{"type": "array", "items": _ROW_SCHEMA}, _COLUMNS_SCHEMA],
    }),
]
