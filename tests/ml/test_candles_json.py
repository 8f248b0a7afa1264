"""candles_to_arrays (backend.ml.candles_json) on JSON parsed by the request schema's
``CandlesIn``: both JSON forms, both time forms, and errors that name the field."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel

from backend.api.schemas.candles import CandlesIn
from backend.ml.candles import CandleError
from backend.ml.candles_json import candles_to_arrays
from tests.utils.market_data import sample
from tests.utils.market_slices import candles_columns, candles_rows


class Body(BaseModel):
    candles: CandlesIn


def _parse(candles) -> object:
    return candles_to_arrays(Body.model_validate_json(orjson.dumps({"candles": candles}))
                             .candles)


def test_rows_columns_and_iso_times_give_the_same_candles():
    real = sample("EURUSD").head(100)
    iso = candles_columns(real)
    iso["time"] = [f"2017-04-19T{9 + i // 60:02d}:{i % 60:02d}:00Z" for i in range(100)]
    by_columns, by_rows = _parse(candles_columns(real)), _parse(candles_rows(real))
    for name in ("time", "open", "high", "low", "close", "volume"):
        assert (getattr(by_columns, name) == getattr(real, name)).all()
        assert (getattr(by_rows, name) == getattr(real, name)).all()
    parsed = _parse(iso)
    assert parsed.time[0] == 1492592400 and (parsed.close == real.close).all()


def test_naive_iso_is_utc_and_float_epochs_are_floored():
    one = {"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [0]}
    assert _parse({**one, "time": ["2017-04-19T09:00:00"]}).time[0] == 1492592400
    assert _parse({**one, "time": ["2017-04-19T11:00:00+02:00"]}).time[0] == 1492592400
    assert _parse({**one, "time": [1492592400.9]}).time[0] == 1492592400


@pytest.mark.parametrize(("candles", "field"), [
    ({"time": [1, 2], "open": [1, 1], "high": [1, 1], "low": [1, 1], "close": [1, 1]},
     "candles.volume"),
    ({"time": [1, 2], "open": [1, "x"], "high": [1, 1], "low": [1, 1], "close": [1, 1],
      "volume": [0, 0]}, "candles[1].open"),
    ({"time": [1, 2], "open": [1, None], "high": [1, 1], "low": [1, 1], "close": [1, 1],
      "volume": [0, 0]}, "candles[1].open"),
    ({"time": [1_700_000_000_000, 1_700_000_001_000], "open": [1, 1], "high": [1, 1],
      "low": [1, 1], "close": [1, 1], "volume": [0, 0]}, "candles.time"),
    ({"time": [1, "yesterday"], "open": [1, 1], "high": [1, 1], "low": [1, 1],
      "close": [1, 1], "volume": [0, 0]}, "candles[1].time"),
    ({"time": [2, 1], "open": [1, 1], "high": [1, 1], "low": [1, 1], "close": [1, 1],
      "volume": [0, 0]}, "candles[1].time"),
    ({"time": [1, 2], "open": [1, 1], "high": [1, 0.5], "low": [1, 1], "close": [1, 1],
      "volume": [0, 0]}, "candles[1].high"),
    ([{"time": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 0},
      {"time": 2, "open": 1, "high": 1, "low": 1, "close": 1}], "candles[1].volume"),
    ([], "candles"),
])
def test_bad_candles_name_the_field(candles, field):
    with pytest.raises(CandleError) as err:
        _parse(candles)
    assert err.value.field == field


def test_too_few_candles():
    one = {"time": [1], "open": [1], "high": [1], "low": [1], "close": [1], "volume": [0]}
    with pytest.raises(CandleError, match="at least 5"):
        candles_to_arrays(one, min_length=5)


@pytest.mark.parametrize(("column", "value"), [
    ("close", "x"), ("open", None), ("open", [1, 2]), ("volume", 10 ** 400), ("low", -1.0),
    ("time", "not a time"), ("high", 1e39), ("close", 1e300),
])
def test_a_defect_is_named_alike_in_both_forms(column: str, value: object) -> None:
    """Index then column (``candles[7].close``), as the value rules name a candle, in the
    rows and the columns form alike (a value beyond float32 included)."""
    import json

    real = sample("EURUSD").head(60)
    cols, rows = candles_columns(real), candles_rows(real)
    cols[column][7] = value
    rows[7][column] = value
    fields = []
    for candles in (cols, rows):
        with pytest.raises(CandleError) as err:  # the stdlib encoder: ints beyond 64 bits
            candles_to_arrays(Body.model_validate_json(json.dumps({"candles": candles}))
                              .candles)
        fields.append(err.value.field)
    assert fields == [f"candles[7].{column}"] * 2
