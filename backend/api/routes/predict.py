"""POST /predict and /predict/batch: the bot's pre-trade question."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from backend.api.deps import BotScope
from backend.api.errors import BadRequest, ServiceUnavailable
from backend.api.openapi_body import body_openapi, parse_body
from backend.api.responses import ERROR_RESPONSES, FastJSONResponse, render_json
from backend.api.schemas.predict import (
    PredictBatchRequest,
    PredictBatchResponse,
    PredictRequest,
    PredictResponse,
)
from backend.ml.candles import CandleError
from backend.ml.candles_json import candles_to_arrays
from backend.ml.ml_system import MLSystem, Scored, Signal
from backend.ml.ml_system import answer as answer_body

router = APIRouter(prefix="/api/v1", tags=["predict"])
FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between the bot and this service



@router.post("/predict", response_model=PredictResponse, responses=ERROR_RESPONSES,
             openapi_extra=body_openapi(PredictRequest))
async def predict(request: Request, _: BotScope) -> Response:
    """Probability that the signal's trade pays, the take/skip decision and the model."""
    req = await parse_body(request, PredictRequest)
    return Response(answer(request.app.state, req), media_type="application/json")


def answer(state: Any, req: PredictRequest) -> bytes:
    """Score one signal (or return the stored answer for a known trade_id) and journal it;
    the answer as JSON. Shared by this route and the fast path (backend.api.fast_path)."""
    system: MLSystem = state.system
    stored = system.remembered(req.trade_id)
    if stored is not None:
        return render_json({**stored, "duplicate": True})
    signal = _signal(req, system, prefix="candles")
    return _accept(state, _score(system, [signal], explain=req.explain)[0])


@router.post("/predict/batch", response_model=PredictBatchResponse, responses=ERROR_RESPONSES,
             openapi_extra=body_openapi(PredictBatchRequest))
async def predict_batch(request: Request, _: BotScope) -> FastJSONResponse:
    """Many signals in one call; answers in the same order."""
    req = await parse_body(request, PredictBatchRequest)
    system: MLSystem = request.app.state.system
    seen: set[str] = set()
    for i, item in enumerate(req.signals):
        if item.trade_id in seen:
            raise BadRequest(f"signals[{i}].trade_id", "duplicate trade_id within the batch")
        seen.add(item.trade_id)
    answers: list[Any] = [system.remembered(s.trade_id) for s in req.signals]
    todo = [i for i, a in enumerate(answers) if a is None]
    signals = [_signal(req.signals[i], system, prefix=f"signals[{i}].candles") for i in todo]
    if signals:
        explain = any(req.signals[i].explain for i in todo)
        for i, scored in zip(todo, _score(system, signals, explain=explain), strict=True):
            if not req.signals[i].explain:
                scored.contributions = None
            answers[i] = orjson.Fragment(_accept(request.app.state, scored))
    data = [a if i in todo else {**a, "duplicate": True}
            for i, a in enumerate(answers) if a is not None]
    return FastJSONResponse({"data": data, "count": len(data)})


def _signal(req: PredictRequest, system: MLSystem, *, prefix: str) -> Signal:
    candles = candles_to_arrays(req.candles, field=prefix)
    signal_time = req.signal_time
    if signal_time is not None:
        if signal_time.tzinfo is None:
            signal_time = signal_time.replace(tzinfo=UTC)
        if signal_time > datetime.now(UTC) + FUTURE_TOLERANCE:
            # a local time sent without its offset, typically: it would outlive its exit
            raise BadRequest(f"{prefix.rsplit('candles', 1)[0]}signal_time",
                             "is in the future (send UTC or an explicit offset)")
        cut = int(signal_time.timestamp())
        keep = int((candles.time <= cut).sum())  # candles after the signal: never used
        candles = candles.head(keep)
    need = system.extractor.min_candles
    if len(candles) < need:
        raise CandleError(prefix, f"need at least {need} candles up to the signal time, "
                                  f"got {len(candles)}")
    if signal_time is None:
        signal_time = datetime.fromtimestamp(int(candles.time[-1]), UTC)
    return Signal(trade_id=req.trade_id, symbol=req.symbol, timeframe=req.timeframe,
                  side=req.side, strategy=req.strategy, candles=candles,
                  signal_time=signal_time, signal_strength=req.signal_strength,
                  stop_price=req.stop_price, target_price=req.target_price)


def _score(system: MLSystem, signals: list[Signal], *, explain: bool) -> list[Scored]:
    try:
        return system.score(signals, explain=explain)
    except LookupError as exc:
        raise ServiceUnavailable(str(exc)) from None


def _accept(state: Any, scored: Scored) -> bytes:
    """Journal the feature row and prediction, then remember and count the answer."""
    try:
        state.writer.submit(scored.journal_entry())
    except OSError as exc:  # journal not writable: not accepted, nothing promised
        raise ServiceUnavailable(f"cannot journal the prediction: {exc}") from None
    m = scored.model
    response = answer_body(
        prediction_id=scored.prediction_id, trade_id=scored.signal.trade_id,
        probability=scored.probability, decision=scored.decision, threshold=scored.threshold,
        model=m.ref, feature_set_version=m.feature_set_version,
        contributions=scored.contributions)
    state.metrics.count_prediction(scored.decision)
    return state.system.remember(scored.signal.trade_id, response)
