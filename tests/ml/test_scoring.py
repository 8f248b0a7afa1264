"""A signal from validated candles: no candle after the signal time, enough candles, a
signal time that is not in the future; fields named with the batch prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.ml.candles import CandleError
from backend.ml.scoring import SignalTimeError, make_signal
from tests.utils.market_slices import sample

FIELDS = {"trade_id": "s-1", "symbol": "EURUSD", "timeframe": "1h", "side": "long",
          "strategy": "ma_cross"}


def test_candles_after_the_signal_time_are_dropped_and_a_naive_time_is_utc():
    c = sample().head(300)
    cut = datetime.fromtimestamp(int(c.time[199]), UTC).replace(tzinfo=None)
    s = make_signal(c, signal_time=cut, min_candles=100, **FIELDS)
    assert len(s.candles) == 200 and int(s.candles.time[-1]) == int(c.time[199])
    assert s.signal_time == cut.replace(tzinfo=UTC)


def test_the_signal_time_defaults_to_the_last_candle():
    c = sample().head(150)
    s = make_signal(c, signal_time=None, min_candles=100, **FIELDS)
    assert len(s.candles) == 150
    assert s.signal_time == datetime.fromtimestamp(int(c.time[-1]), UTC)


def test_a_future_signal_time_and_too_few_candles_name_their_field():
    c = sample().head(150)
    future = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(SignalTimeError) as err:
        make_signal(c, signal_time=future, min_candles=100, prefix="signals[3].", **FIELDS)
    assert err.value.field == "signals[3].signal_time" and "future" in err.value.reason
    with pytest.raises(CandleError) as too_few:
        make_signal(c, signal_time=None, min_candles=200, **FIELDS)
    assert too_few.value.field == "candles"
    assert "at least 200" in too_few.value.reason and "got 150" in too_few.value.reason


def test_the_request_digest_changes_with_anything_that_could_change_the_answer():
    from backend.ml.candles import Candles

    c = sample().head(300)
    cut = datetime.fromtimestamp(int(c.time[249]), UTC)
    base = make_signal(c, signal_time=cut, min_candles=100, stop_price=1.0, **FIELDS)
    # the candles after the signal time are never used: not part of the request's identity
    assert make_signal(c.head(250), signal_time=cut, min_candles=100, stop_price=1.0,
                       **FIELDS).digest == base.digest
    assert len(base.digest) == 32
    close = c.close.copy()
    close[200] += 1e-9
    changed = Candles(c.time, c.open, c.high, c.low, close, c.volume)
    others = [
        make_signal(changed, signal_time=cut, min_candles=100, stop_price=1.0, **FIELDS),
        make_signal(c, signal_time=cut, min_candles=100, stop_price=1.0,
                    **{**FIELDS, "strategy": "breakout"}),
        make_signal(c, signal_time=cut, min_candles=100, **{**FIELDS, "side": "short"}),
        make_signal(c, signal_time=cut, min_candles=100, stop_price=0.99, **FIELDS),
        make_signal(c, signal_time=cut, min_candles=100, **FIELDS),
        make_signal(c, signal_time=cut, min_candles=100, stop_price=1.0,
                    signal_strength=0.5, **FIELDS),
        make_signal(c, signal_time=None, min_candles=100, stop_price=1.0, **FIELDS),
    ]
    assert len({base.digest, *(s.digest for s in others)}) == len(others) + 1


def test_a_feature_beyond_float32_names_the_request_field():
    import numpy as np

    from backend.ml.scoring import _check_representable
    from backend.ml.signal_context import SignalError

    names = ["rsi_14", "signal_strength", "stop_dist_atr", "target_dist_atr", "reward_risk"]
    s = make_signal(sample().head(150), signal_time=None, min_candles=100,
                    prefix="signals[2].", **FIELDS)
    _check_representable(s, names, np.array([50.0, np.nan, 3.4e38, -3.4e38, np.nan]))
    for i, field in enumerate(["candles", "signal_strength", "stop_price", "target_price",
                               "target_price"]):
        vector = np.zeros(len(names))
        vector[i] = -np.inf if i % 2 else 1e39
        with pytest.raises(SignalError) as err:
            _check_representable(s, names, vector)
        assert err.value.field == f"signals[2].{field}" and names[i] in err.value.reason
