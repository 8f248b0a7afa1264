"""The simdjson shortcut for /predict bodies reads every body exactly as the pydantic path
does, or declines (None) and leaves it to that path."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.exceptions import RequestValidationError

from backend.api.fast_decode import decode_predict
from backend.api.openapi_body import parse_json
from backend.api.schemas.predict import PredictRequest
from backend.ml.candles import OHLCV, CandleError
from backend.ml.candles_json import DecodedColumns, candles_to_arrays
from tests.utils.market_slices import predict_body

COLUMNS = ("time", *OHLCV)


def _outcome(req: PredictRequest | None) -> Any:
    """What a request turns into: its scalar fields and candles, or the candle error."""
    if req is None:
        return None
    fields = req.model_dump(exclude={"candles"})
    try:
        c = candles_to_arrays(req.candles)
    except CandleError as exc:
        return fields, ("error", exc.field, exc.reason)
    return fields, tuple(getattr(c, name).tolist() for name in COLUMNS)


def _slow(body: bytes) -> Any:
    try:
        return _outcome(parse_json(body, PredictRequest))
    except Exception as exc:  # any refusal: the fast path must decline too
        return ("refused", type(exc).__name__)


def _agree(body: bytes) -> bool:
    """Whether the shortcut took the body (asserting it read it as the slow path does)."""
    fast = _outcome(decode_predict(body))
    if fast is not None:
        assert fast == _slow(body), body[:200]
    return fast is not None


def _body(**extra: Any) -> dict[str, Any]:
    return predict_body("fast-1", n=100, **extra)


def test_the_common_body_takes_the_shortcut_with_the_same_result():
    for extra in ({}, {"explain": True, "signal_strength": 0.7, "stop_price": 1.05,
                       "target_price": 1.2, "signal_time": "2017-10-20T12:00:00Z"}):
        body = orjson.dumps(_body(**extra))
        req = decode_predict(body)
        assert req is not None and isinstance(req.candles, DecodedColumns)
        assert _agree(body)


def test_integer_prices_and_volumes_are_read_as_floats():
    body = _body()
    body["candles"]["volume"] = [int(v) for v in body["candles"]["volume"]]
    body["candles"]["open"][3] = 2
    body["candles"]["high"][3] = 3
    assert _agree(orjson.dumps(body))


@pytest.mark.parametrize("case", [
    "rows form", "iso times", "float times", "nested single-element array", "extra array",
    "duplicate top-level key", "duplicate column", "NaN literal", "string price", "bool price",
    "null price", "missing column", "unequal lengths", "unknown field", "bracket in a string",
    "not an object", "invalid JSON", "time beyond int64",
])
def test_bodies_the_shortcut_declines(case: str):
    body = _body()
    c = body["candles"]
    raw: bytes | None = None
    if case == "rows form":
        body["candles"] = [{k: c[k][i] for k in COLUMNS} for i in range(100)]
    elif case == "iso times":
        c["time"] = [f"2017-10-{1 + i // 24:02d}T{i % 24:02d}:00:00Z" for i in range(100)]
    elif case == "float times":
        c["time"] = [t + 0.5 for t in c["time"]]
    elif case == "nested single-element array":
        c["close"][7] = [c["close"][7]]
    elif case == "extra array":
        c["extra"] = [1, 2]
    elif case == "duplicate top-level key":
        raw = orjson.dumps(body)[:-1] + b', "side": "short"}'
    elif case == "duplicate column":
        raw = orjson.dumps(body).replace(b'"open":', b'"open": [1.0], "open":', 1)
    elif case == "NaN literal":
        raw = orjson.dumps(body).replace(b'"close":[', b'"close":[NaN,', 1)
    elif case == "string price":
        c["open"][0] = "1.1"
    elif case == "bool price":
        c["high"][0] = True
    elif case == "null price":
        c["low"][0] = None
    elif case == "missing column":
        del c["volume"]
    elif case == "unequal lengths":
        c["open"] = c["open"][:-1]
    elif case == "unknown field":
        body["colour"] = "red"
    elif case == "bracket in a string":
        body["strategy"] = "ma[10]"
    elif case == "not an object":
        raw = orjson.dumps([body])
    elif case == "invalid JSON":
        raw = orjson.dumps(body)[:-1]
    elif case == "time beyond int64":
        raw = orjson.dumps(body).replace(b'"time":[', b'"time":[99999999999999999999,', 1)
    assert decode_predict(raw if raw is not None else orjson.dumps(body)) is None


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda c: c["high"].__setitem__(4, c["low"][4] / 2), "candles[4].high"),
    (lambda c: c["time"].__setitem__(9, c["time"][8]), "candles[9].time"),
    (lambda c: c["time"].__setitem__(9, c["time"][8] - 1), "candles[9].time"),
    (lambda c: c["volume"].__setitem__(2, -1), "candles[2].volume"),
    (lambda c: c["open"].__setitem__(0, 0), "candles[0].open"),
    (lambda c: c.__setitem__("time", [t * 1000 for t in c["time"]]), "candles.time"),
])
def test_candle_rule_errors_are_the_slow_paths(mutate, field: str):
    body = _body()
    mutate(body["candles"])
    raw = orjson.dumps(body)
    assert _agree(raw)  # taken, and the same error
    with pytest.raises(CandleError) as err:
        candles_to_arrays(decode_predict(raw).candles)
    assert err.value.field == field


def test_random_value_mutations_agree():
    """Deterministic fuzz: any JSON value at any place in the body."""
    rng = random.Random(7)
    values: list[Any] = [None, True, False, 0, -1, 1.5, 2**63, -2**70, 1e308, "x", "1.5", [],
                         [1.0], {}, {"a": 1}, "2017-10-20T12:00:00", 1_700_000_000_000]
    base = _body(signal_strength=0.5, stop_price=1.0)
    taken = 0
    for _ in range(400):
        body = orjson.loads(orjson.dumps(base))
        for _ in range(rng.randint(1, 3)):
            candles, column = body["candles"], rng.choice(COLUMNS)
            if rng.random() < 0.6 and isinstance(candles, dict) and column in candles:
                candles[column][rng.randrange(100)] = rng.choice(values)
            else:
                body[rng.choice([*base, "candles"])] = rng.choice(values)
        taken += _agree(json.dumps(body).encode())  # json: orjson refuses ints over 64 bits
    assert taken > 40, taken  # numeric mutations stay on the shortcut


def test_a_decoded_request_is_read_only_numpy():
    req = decode_predict(orjson.dumps(_body()))
    assert req is not None
    assert req.candles.block.shape == (5, 100) and req.candles.time.dtype == np.int64


@pytest.mark.parametrize(("extra", "loc"), [
    ({"signal_strength": 1.5}, ("body", "signal_strength")),
    ({"signal_strength": -1e300}, ("body", "signal_strength")),
    ({"strategy": "SURROGATE"}, ("body",)),
])
def test_out_of_range_strength_and_lone_surrogates_decline_to_the_slow_paths_422(
        extra: dict[str, Any], loc: tuple[str, ...]):
    """The shortcut validates with the same PredictRequest, so it declines and the slow path
    answers its 422 (signal_strength in [0, 1]; a lone surrogate is invalid JSON)."""
    raw = orjson.dumps(_body(**extra)).replace(b"SURROGATE", b"ma\\udc00")
    assert decode_predict(raw) is None
    with pytest.raises(RequestValidationError) as err:
        parse_json(raw, PredictRequest)
    assert err.value.errors()[0]["loc"] == loc
