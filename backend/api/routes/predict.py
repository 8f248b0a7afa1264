"""POST /predict and /predict/batch: the bot's pre-trade question."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from backend.api.deps import BotScope, PredictionsDep
from backend.api.openapi_body import body_openapi, parse_body
from backend.api.responses import CONFLICT_RESPONSE, ERROR_RESPONSES, FastJSONResponse
from backend.api.schemas.predict import (
    PredictBatchRequest,
    PredictBatchResponse,
    PredictRequest,
    PredictResponse,
)

router = APIRouter(prefix="/api/v1", tags=["predict"])
RESPONSES = {**ERROR_RESPONSES, **CONFLICT_RESPONSE}  # 409: a trade_id reused, other payload


@router.post("/predict", response_model=PredictResponse, responses=RESPONSES,
             openapi_extra=body_openapi(PredictRequest))
async def predict(request: Request, _: BotScope, predictions: PredictionsDep) -> Response:
    """Probability that the signal's trade pays, the take/skip decision and the model."""
    req = await parse_body(request, PredictRequest)
    return Response(predictions.answer(req), media_type="application/json")


@router.post("/predict/batch", response_model=PredictBatchResponse, responses=RESPONSES,
             openapi_extra=body_openapi(PredictBatchRequest))
async def predict_batch(request: Request, _: BotScope,
                        predictions: PredictionsDep) -> FastJSONResponse:
    """Many signals in one call; answers in the same order."""
    req = await parse_body(request, PredictBatchRequest)
    return FastJSONResponse(predictions.answer_batch(req))
