"""Decode the common /predict body straight into numpy: columnar candles, epoch-second times.

``PredictRequest.model_validate_json`` turns 600 candle numbers into Python objects that are
then copied into numpy, which cost more than the rest of a request's parsing. simdjson
parses the body once and copies each numeric array directly into a buffer of doubles (or
int64 for the times); pydantic then validates the scalar fields, and the candle rules are
the ones every other path uses (``candles_to_arrays`` -> ``candles_from_block``).

The decoder is only ever a shortcut: whenever it is not sure the slow path would read the
body the same way (rows form, ISO or fractional times, a nested array, a duplicate key, NaN
literals, anything simdjson refuses), it returns None and the caller
parses the body the usual way, which also produces the usual 422 details. Tests check the
two paths agree on valid and invalid bodies alike (tests/api/test_fast_decode.py).
"""

from __future__ import annotations

import threading

import numpy as np
import simdjson
from pydantic import ValidationError

from backend.api.schemas.predict import PredictRequest
from backend.ml.candles import OHLCV
from backend.ml.candles_json import DecodedColumns

# The columnar form has exactly six arrays; any other '[' (a nested array, an extra array,
# a bracket inside a string) sends the body to the slow path. simdjson's as_buffer would
# flatten a nested array, so this count is what makes the shortcut strict.
_ARRAYS = 6
_local = threading.local()  # a simdjson parser reuses its buffers: one per thread


def _parser() -> simdjson.Parser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def decode_predict(body: bytes) -> PredictRequest | None:
    """The request, its candles as :class:`DecodedColumns`, or None when the slow path must
    decide. The candle rules run later, in ``candles_to_arrays``, as for any body (before
    the duplicate-trade_id check, which compares the validated request)."""
    if body.count(b"[") != _ARRAYS:
        return None
    try:
        doc = _parser().parse(body)
        keys = list(doc.keys())
        columns = doc["candles"]
        names = list(columns.keys())
        if len(set(keys)) != len(keys) or len(set(names)) != len(names):
            return None  # which duplicate wins differs between parsers
        times = np.frombuffer(columns["time"].as_buffer(of_type="i"), np.int64)
        prices = b"".join([columns[c].as_buffer(of_type="d") for c in OHLCV])
        fields = {k: doc[k] for k in keys if k != "candles"}
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError):
        return None  # not JSON simdjson takes, not an object, a column missing or not numbers
    n = times.shape[0]
    if len(prices) != 5 * 8 * n:
        return None  # unequal column lengths: the slow path names the column
    fields["candles"] = DecodedColumns(times, np.frombuffer(prices, np.float64).reshape(5, n))
    try:
        return PredictRequest.model_validate(fields)
    except ValidationError:
        return None
