"""One entry signal in, a scored prediction out: the signal, its checks, and the scoring."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

from backend.db.ids import uuid7
from backend.db.records import JournalRecord
from backend.ml.candles import FLOAT32_MAX, CandleError, Candles
from backend.ml.feature_extractor import FeatureExtractor, named_features
from backend.ml.predictor import LoadedModel, Predictor
from backend.ml.signal_context import SignalError

FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between the bot and this service
# The request field to blame when a context feature is beyond float32 (market features:
# the candles).
_FIELD_OF_FEATURE = {"signal_strength": "signal_strength", "stop_dist_atr": "stop_price",
                     "target_dist_atr": "target_price", "reward_risk": "target_price"}


class SignalTimeError(ValueError):
    """A signal time that cannot be right. ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Signal:
    """One entry signal from the bot, candles already validated."""

    trade_id: str
    symbol: str
    timeframe: str
    side: str
    strategy: str
    candles: Candles
    signal_time: datetime
    signal_strength: float | None = None
    stop_price: float | None = None
    target_price: float | None = None
    prefix: str = ""  # put before field names in errors ("signals[3].")
    digest: bytes = b""  # request_digest(): what a repeated trade_id is compared by


@dataclass(slots=True)
class Scored:
    """A served prediction: what the response says and what gets stored."""

    prediction_id: uuid.UUID
    signal: Signal
    model: LoadedModel
    probability: float  # calibrated
    decision: str
    threshold: float  # the probability at or above which this signal is taken
    rule: str  # "expected_value", or "threshold" (TML_DECISION_THRESHOLD set)
    expected_r: float  # p * reward - (1 - p) * risk - costs, in R
    vector: np.ndarray
    contributions: dict[str, float] | None
    latency_ms: float
    created_at: datetime

    def journal_entry(self) -> JournalRecord:
        """The feature row and the prediction to store (the vector kept in memory only)."""
        s = self.signal
        features = named_features(self.model.feature_names, self.vector)
        return JournalRecord(
            vector=self.vector,
            feature={
                "trade_id": s.trade_id, "symbol": s.symbol, "timeframe": s.timeframe,
                "side": s.side, "strategy": s.strategy, "signal_time": s.signal_time,
                "feature_set_version": self.model.feature_set_version, "features": features,
            },
            prediction={
                "id": self.prediction_id, "model_id": self.model.id, "trade_id": s.trade_id,
                "probability": self.probability, "threshold": self.threshold,
                "decision": self.decision, "decision_rule": self.rule,
                "expected_r": self.expected_r, "contributions": self.contributions,
                "latency_ms": self.latency_ms, "created_at": self.created_at,
                "request_sha256": s.digest.hex() or None,
            },
        )


def make_signal(candles: Candles, *, trade_id: str, symbol: str, timeframe: str, side: str,
                strategy: str, signal_time: datetime | None, min_candles: int,
                signal_strength: float | None = None, stop_price: float | None = None,
                target_price: float | None = None, prefix: str = "") -> Signal:
    """A signal from validated candles: the candles after ``signal_time`` are dropped (no
    lookahead), at least ``min_candles`` must remain, and the signal time defaults to the
    last candle's. ``prefix`` is put before the field names in errors (``signals[3].``)."""
    if signal_time is not None:
        if signal_time.tzinfo is None:
            signal_time = signal_time.replace(tzinfo=UTC)
        if signal_time > datetime.now(UTC) + FUTURE_TOLERANCE:
            # a local time sent without its offset, typically: it would outlive its exit
            raise SignalTimeError(f"{prefix}signal_time",
                                  "is in the future (send UTC or an explicit offset)")
        cut = int(signal_time.timestamp())
        keep = int((candles.time <= cut).sum())  # candles after the signal: never used
        candles = candles.head(keep)
    if len(candles) < min_candles:
        raise CandleError(f"{prefix}candles", f"need at least {min_candles} candles up to the "
                                              f"signal time, got {len(candles)}")
    if signal_time is None:
        signal_time = datetime.fromtimestamp(int(candles.time[-1]), UTC)
    _check_stop_and_target(float(candles.close[-1]), side, stop_price, target_price, prefix)
    fields = (trade_id, symbol, timeframe, side, strategy, signal_time.timestamp(),
              *(None if v is None else float(v)
                for v in (signal_strength, stop_price, target_price)))
    return Signal(trade_id=trade_id, symbol=symbol, timeframe=timeframe, side=side,
                  strategy=strategy, candles=candles, signal_time=signal_time,
                  signal_strength=signal_strength, stop_price=stop_price,
                  target_price=target_price, prefix=prefix,
                  digest=request_digest(fields, candles))


def request_digest(fields: Sequence[object], candles: Candles) -> bytes:
    """sha256 of a signal as scored: its fields and the candles up to its time, as numbers,
    so the two JSON candle forms, key order, spacing and the candles after the signal time
    (never used) do not change it, and any value that could change the answer does."""
    h = hashlib.sha256(orjson.dumps(list(fields)))
    # the arrays' own buffers (int64 and float64, contiguous views): no copy, ~2x faster
    for column in (candles.time, candles.open, candles.high, candles.low, candles.close,
                   candles.volume):
        h.update(np.ascontiguousarray(column))
    return h.digest()


def _check_stop_and_target(entry: float, side: str, stop_price: float | None,
                           target_price: float | None, prefix: str) -> None:
    """The stop on the losing side of the last close for the side, the target on the
    winning side: anything else would store a negative distance as a feature and make the
    reward/risk of the decision meaningless."""
    sign = 1.0 if side == "long" else -1.0
    if stop_price is not None and sign * (entry - stop_price) <= 0:
        raise SignalError(f"{prefix}stop_price", f"{stop_price} is not on the losing side of "
                                                 f"the last close {entry} for a {side}")
    if target_price is not None and sign * (target_price - entry) <= 0:
        raise SignalError(f"{prefix}target_price", f"{target_price} is not on the winning "
                                                   f"side of the last close {entry} for a "
                                                   f"{side}")


def _check_representable(signal: Signal, names: Sequence[str], vector: np.ndarray) -> None:
    """Every feature (NaN = missing aside) within float32, which the models compute in: an
    infinite one would be stored as null, break the SHAP of its whole batch, and make
    ``explain`` fail. Raises SignalError naming the request field it comes from."""
    bad = np.abs(vector) > FLOAT32_MAX  # NaN compares False: missing is allowed
    if bad.any():
        i = int(np.argmax(bad))
        field = _FIELD_OF_FEATURE.get(names[i], "candles")
        raise SignalError(f"{signal.prefix}{field}",
                          f"gives the feature {names[i]} = {float(vector[i]):g}, beyond what "
                          f"the model can represent (float32, |x| <= 3.4e38)")


def score(signals: Sequence[Signal], *, extractor: FeatureExtractor, predictor: Predictor,
          top_contributions: int, explain: bool) -> list[Scored]:
    """Features, probability and decision for each signal with the current model.

    The model reference is taken once, so a swap mid-batch cannot mix two models."""
    model = predictor.current
    if model is None:
        raise LookupError("no active model")
    start = time.perf_counter()
    vectors = [
        extractor.signal_vector(
            s.candles, side=s.side, strategy=s.strategy, signal_strength=s.signal_strength,
            stop_price=s.stop_price, target_price=s.target_price)
        for s in signals
    ]
    for s, x in zip(signals, vectors, strict=True):
        _check_representable(s, model.feature_names, x)
    if len(vectors) == 1:
        probs = [model.predict_one(vectors[0])]
    else:
        probs = model.predict_proba(np.vstack(vectors)).tolist()
    decisions = [
        predictor.decide(p, barrier=model.barrier, entry=float(s.candles.close[-1]),
                         side=s.side, stop_price=s.stop_price, target_price=s.target_price)
        for s, p in zip(signals, probs, strict=True)
    ]
    now = datetime.now(UTC)
    latency_ms = (time.perf_counter() - start) * 1000 / len(signals)
    out = []
    for s, x, p, d in zip(signals, vectors, probs, decisions, strict=True):
        contribs = model.top_contributions(x, top_contributions) if explain else None
        out.append(Scored(uuid7(), s, model, float(p), "take" if d.take else "skip",
                          predictor.break_even(d), d.rule, d.expected_r, x, contribs,
                          latency_ms, now))
    return out
