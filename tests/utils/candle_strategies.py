"""Hypothesis strategies for well-formed request bodies, so a fuzzer gets past the candle
rules (50+ candles for /predict, sorted epoch seconds in range, positive prices inside
[low, high]) and reaches the model.

A series is drawn as a handful of parameters (length, start, step, first price, seed) and
built with numpy: drawing hundreds of floats one by one would make hypothesis slow and
its examples huge, and the seed still shrinks to a small failing series.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import strategies as st

from backend.ml.market_features import MIN_CANDLES

STEPS = (60, 300, 3600, 14_400, 86_400)
# Inside the documented epoch range (1900 to 1e11 s) with room for 200 daily bars.
FIRST_EPOCH = (-2_208_988_800, 90_000_000_000)


def _series(n: int, start: int, step: int, price: float, seed: int, form: str,
            time_as: str) -> dict[str, list] | list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    opens = np.concatenate([[price], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.002, (2, n))) * close
    high = np.maximum(opens, close) + wick[0]
    low = np.maximum(np.minimum(opens, close) - wick[1], np.minimum(opens, close) * 0.5)
    volume = rng.integers(0, 5000, n).astype(float)
    times: list[Any] = [start + step * i for i in range(n)]
    if time_as == "float":
        times = [float(t) for t in times]
    elif time_as == "iso":
        times = [datetime.fromtimestamp(t, UTC).isoformat() for t in times]
    columns = {"time": times, "open": opens.tolist(), "high": high.tolist(),
               "low": low.tolist(), "close": close.tolist(), "volume": volume.tolist()}
    if form == "columns":
        return columns
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def candle_series(min_size: int = MIN_CANDLES, max_size: int = 200) -> st.SearchStrategy:
    """Valid candles in either JSON form (rows or columns), times as int, float or ISO."""
    return st.builds(
        _series, n=st.integers(min_size, max_size), start=st.integers(*FIRST_EPOCH),
        step=st.sampled_from(STEPS), price=st.floats(0.01, 50_000.0),
        seed=st.integers(0, 2**32 - 1), form=st.sampled_from(["columns", "rows"]),
        time_as=st.sampled_from(["int", "int", "float", "iso"]))


def last_close(candles: dict[str, list] | list[dict[str, Any]]) -> float:
    return candles["close"][-1] if isinstance(candles, dict) else candles[-1]["close"]


def with_valid_candles(body: dict[str, Any], draw: st.DrawFn, *,
                       min_size: int = MIN_CANDLES) -> dict[str, Any]:
    """``body`` (a generated /predict signal) with valid candles, no signal_time that cuts
    them, and (most of the time) a stop and a target on the right sides of the last close
    for its side; the other generated fields are left as they are."""
    candles = draw(candle_series(min_size))
    # a trade_id of its own: the fuzzer repeats short ids, and a repeated id with another
    # payload is a 409 by design (tested in test_poisoned_input)
    out = {**body, "candles": candles, "trade_id": f"fuzz-{uuid.uuid4().hex}"}
    out.pop("signal_time", None)
    close = last_close(candles)
    sign = -1.0 if out.get("side") == "short" else 1.0
    if draw(st.integers(0, 9)) < 8:  # 80 %: a stop and a target where they belong
        out["stop_price"] = close * (1 - sign * draw(st.floats(0.001, 0.2)))
        out["target_price"] = close * (1 + sign * draw(st.floats(0.001, 0.5)))
    return out


@st.composite
def valid_signal(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    return with_valid_candles(body, draw)


@st.composite
def valid_batch(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    signals = body.get("signals")
    if not isinstance(signals, list) or not signals:
        return body
    return {**body, "signals": [with_valid_candles(s, draw) if isinstance(s, dict) else s
                                for s in signals[:5]]}


@st.composite
def valid_open_position(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """An /exits/evaluate body whose candles, entry and stops are consistent (80 %: the
    rest keeps what was generated, to fuzz the rules too)."""
    if draw(st.integers(0, 9)) >= 8:
        return body
    candles = draw(candle_series(min_size=20, max_size=120))
    columns = candles if isinstance(candles, dict) else {
        k: [row[k] for row in candles] for k in candles[0]}
    at = draw(st.integers(0, len(columns["close"]) - 1))
    entry = columns["close"][at]
    sign = -1.0 if body.get("side") == "short" else 1.0
    stop = entry * (1 - sign * draw(st.floats(0.001, 0.2)))
    out = {**body, "candles": candles, "entry_price": entry, "initial_stop": stop,
           "current_stop": stop, "target": entry * (1 + sign * draw(st.floats(0.001, 0.5))),
           "entry_time": _iso(columns["time"][at])}
    out.pop("params", None)  # policy parameters are fuzzed by the 20 % left as generated
    return out


def _iso(t: Any) -> str:
    return t if isinstance(t, str) else datetime.fromtimestamp(t, UTC).isoformat()
