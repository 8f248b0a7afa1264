"""Pure translations between freqtrade's world and the service's (no I/O, no freqtrade)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")
# freqtrade ExitType values -> the service's exit reasons
_EXIT_REASONS = {
    "roi": "take_profit",
    "stop_loss": "stop_loss",
    "stoploss_on_exchange": "stop_loss",
    "liquidation": "stop_loss",
    "trailing_stop_loss": "trailing_stop",
    "exit_signal": "signal",
    "custom_exit": "signal",
    "partial_exit": "partial",
    "force_exit": "manual",
    "emergency_exit": "manual",
    "sold_on_exchange": "manual",
}
SERVICE_REASONS = frozenset({"stop_loss", "take_profit", "trailing_stop", "breakeven",
                             "time_stop", "partial", "ml_exit", "signal", "manual"})
ADVICE_PREFIX = "tml_"  # custom_exit reasons the mixin returns: tml_<service reason>


def symbol_of(pair: str, symbols: Mapping[str, str]) -> str:
    """``EUR/USD`` -> ``EURUSD`` (``BTC/USDT:USDT`` -> ``BTCUSDT``) unless mapped."""
    if pair in symbols:
        return symbols[pair]
    base, _, quote = pair.split(":")[0].partition("/")
    return base + quote


def trade_id(prefix: str, pair: str, side: str, signal_time: datetime) -> str:
    """Deterministic id of one signal: the same candle, pair and side give the same id, so a
    rerun (or a retry) finds the stored answer instead of scoring twice."""
    stamp = signal_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _UNSAFE.sub("_", f"{prefix}-{pair}-{side}-{stamp}")[:128]


def exit_reason(freqtrade_reason: str | None) -> str:
    """freqtrade's exit reason (an ExitType value or a custom tag) as the service's."""
    reason = (freqtrade_reason or "").strip()
    if reason.startswith(ADVICE_PREFIX):
        advised = reason[len(ADVICE_PREFIX):]
        return advised if advised in SERVICE_REASONS else "ml_exit"
    if reason in _EXIT_REASONS:
        return _EXIT_REASONS[reason]
    return "signal"  # an exit tag or custom_exit string of the strategy itself


def stop_and_target(rate: float, side: str, stoploss: float,
                    minimal_roi: Mapping[Any, float] | None) -> tuple[float, float | None]:
    """Absolute stop and target of an entry at ``rate`` from the strategy's relative
    ``stoploss`` (negative) and the ROI table's first step (None when ROI is disabled)."""
    sign = 1.0 if side == "long" else -1.0
    stop = rate * (1.0 - sign * abs(stoploss))
    roi0 = None
    if minimal_roi:
        roi0 = dict(sorted(((int(k), float(v)) for k, v in minimal_roi.items()))).get(0)
    target = rate * (1.0 + sign * roi0) if roi0 is not None and 0 < roi0 < 1 else None
    return stop, target


def excursions_r(side: str, entry: float, stop: float | None, max_rate: float | None,
                 min_rate: float | None) -> tuple[float | None, float | None]:
    """MFE and MAE in R (``|entry - stop|``) from the trade's highest and lowest rates."""
    if stop is None or max_rate is None or min_rate is None or stop == entry:
        return None, None
    risk = abs(entry - stop)
    up, down = (max_rate - entry) / risk, (entry - min_rate) / risk
    favourable, adverse = (up, down) if side == "long" else (down, up)
    return max(favourable, 0.0), max(adverse, 0.0)


def candles_of(frame: Any, start: int = 0) -> dict[str, list[float]]:
    """Columns of a freqtrade dataframe (``date`` + OHLCV) from row ``start`` on, as the
    service takes them: epoch seconds and floats."""
    part = frame.iloc[start:]
    times = part["date"].astype("int64").to_numpy()
    # freqtrade stores datetime64[ms|ns, UTC]: scale to seconds whatever the unit
    unit = {"datetime64[ns, UTC]": 10**9, "datetime64[us, UTC]": 10**6,
            "datetime64[ms, UTC]": 10**3, "datetime64[s, UTC]": 1}.get(str(part["date"].dtype))
    if unit is None:
        raise ValueError(f"unexpected date dtype {part['date'].dtype}")
    return {"time": (times // unit).tolist(),
            **{c: part[c].astype("float64").tolist()
               for c in ("open", "high", "low", "close", "volume")}}
