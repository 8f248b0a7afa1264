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
