"""Exit advice for open positions and recording of closed ones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from backend.api.deps import BotScope, PoolDep, WriterDep
from backend.api.openapi_body import body_openapi, parse_body
from backend.api.responses import ERROR_RESPONSES, FastJSONResponse
from backend.api.schemas.exits import (
    ExitEvaluateRequest,
    ExitEvaluateResponse,
    ExitRecordRequest,
    ExitRecordResponse,
)
from backend.db.errors import translate
from backend.ml.candles import Candles
from backend.ml.ml_system import MLSystem
from backend.positions import service
from backend.positions.state import PositionState

router = APIRouter(prefix="/api/v1/exits", tags=["exits"])



@router.post("/evaluate", response_model=ExitEvaluateResponse, responses=ERROR_RESPONSES,
             openapi_extra=body_openapi(ExitEvaluateRequest))
async def evaluate_exit(request: Request, _: BotScope) -> FastJSONResponse:
    """Hold, exit, move the stop or take a partial: advice at the last candle's close."""
    req = await parse_body(request, ExitEvaluateRequest)
    advice = service.evaluate(req, probability_provider=_ml_provider(request.app.state.system))
    return FastJSONResponse(advice.model_dump(mode="json"))


@router.post("", response_model=ExitRecordResponse, responses=ERROR_RESPONSES, status_code=201)
def record_exit(req: ExitRecordRequest, pool: PoolDep, writer: WriterDep, _: BotScope,
                response: Response) -> ExitRecordResponse:
    """Record a closed position; label its signal and resolve its predictions (idempotent:
    201 when stored, 200 with `created: false` when it already was)."""
    # Not needed for correctness (rows that land later are labelled from the stored exit),
    # but labels the signal at once when its rows are still queued. Before taking a
    # connection, so waiting holds none.
    writer.flush(timeout=1.0)
    with translate(), pool.connection() as conn:
        row, created = service.record_exit(conn, req)
    if not created:
        response.status_code = 200
    return service.record_response(row, created)


def _ml_provider(system: MLSystem) -> Any:
    """The active model's probability that the open position still pays (ml_exit policy)."""

    def probability(state: PositionState, candles: Candles) -> float:
        model = system.predictor.current
        if model is None or len(candles) < system.extractor.min_candles:
            return 1.0  # no opinion: never forces an exit
        x = system.extractor.signal_vector(candles, side=state.side, strategy="other")
        return model.predict_one(x)

    return probability
