"""Exit advice for open positions and recording of closed ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from backend.api.deps import BotScope, PoolDep, RetrainerDep, SystemDep, WriterDep
from backend.api.openapi_body import body_openapi, parse_body
from backend.api.responses import CONFLICT_RESPONSE, ERROR_RESPONSES, FastJSONResponse
from backend.api.schemas.exits import (
    ExitEvaluateRequest,
    ExitEvaluateResponse,
    ExitRecordRequest,
    ExitRecordResponse,
)
from backend.db import position_exits, predictions, trade_features
from backend.db.errors import translate
from backend.db.position_exits import PositionExitRow
from backend.db.write_behind import WriteBehind
from backend.ml.candles_json import candles_to_arrays
from backend.positions import service
from backend.positions.ml_exit import model_probability
from backend.positions.params import ProbabilityProvider

router = APIRouter(prefix="/api/v1/exits", tags=["exits"])


@router.post("/evaluate", response_model=ExitEvaluateResponse, responses=ERROR_RESPONSES,
             openapi_extra=body_openapi(ExitEvaluateRequest))
async def evaluate_exit(request: Request, system: SystemDep, _: BotScope) -> FastJSONResponse:
    """Hold, exit, move the stop or take a partial: advice at the last candle's close."""
    req = await parse_body(request, ExitEvaluateRequest)
    provider = model_probability(system.predictor, system.extractor)
    model = system.predictor.current  # max_bars defaults to the horizon it was trained with
    return FastJSONResponse(advise(req, probability_provider=provider,
                                   model_barrier=model.barrier if model else None
                                   ).model_dump(mode="json"))


@router.post("", response_model=ExitRecordResponse, status_code=201, responses={
    **ERROR_RESPONSES, **CONFLICT_RESPONSE,
    200: {"model": ExitRecordResponse,
          "description": "Already recorded: the stored row, `created: false`"}},
             openapi_extra=body_openapi(ExitRecordRequest))
async def record_exit(request: Request, pool: PoolDep, writer: WriterDep, _: BotScope,
                      retrainer: RetrainerDep) -> FastJSONResponse:
    """Record a closed position; label its signal and resolve its predictions (idempotent:
    201 when stored, 200 with `created: false` when the same report already was, 409 when
    another report of the trade was)."""
    # parsed by pydantic's JSON parser, which refuses lone surrogates (422) that FastAPI's
    # json.loads lets through to the jsonb encoder (a 500)
    req = await parse_body(request, ExitRecordRequest)
    row = service.exit_row(req)
    stored, created = await run_in_threadpool(_record, pool, writer, row)
    if created:  # a new outcome: the retrain policy's cheap check (starts a job when due)
        retrainer.after_exit()
    body = ExitRecordResponse.model_validate({**vars(stored), "created": created})
    return FastJSONResponse(body.model_dump(mode="json"), 201 if created else 200)


def _record(pool: ConnectionPool, writer: WriteBehind, row: PositionExitRow
            ) -> tuple[PositionExitRow, bool]:
    # Not needed for correctness (rows that land later are labelled from the stored exit),
    # but labels the signal at once when its rows are still queued. Before taking a
    # connection, so waiting holds none.
    writer.flush(timeout=1.0)
    with translate(), pool.connection() as conn:
        return store_exit(conn, row)


def advise(req: ExitEvaluateRequest, *,
           probability_provider: ProbabilityProvider | None = None,
           model_barrier: Mapping[str, Any] | None = None) -> ExitEvaluateResponse:
    """The answer of /exits/evaluate (CandleError, PositionError: 422 naming the field)."""
    candles = candles_to_arrays(req.candles, field="candles")
    advice = service.evaluate(req, candles, policy=req.policy, params=req.params,
                              probability_provider=probability_provider,
                              model_barrier=model_barrier)
    d, state = advice.decision, advice.state
    return ExitEvaluateResponse(
        trade_id=req.trade_id, action=d.action, reason=d.reason, stop=d.stop, target=d.target,
        partial_fraction=d.partial_fraction, r_multiple=advice.r_multiple, mfe=state.mfe,
        mae=state.mae, bars_held=state.bars_held, last_close=advice.last_close,
        last_candle_time=advice.last_candle_time, policy=advice.policy,
        policy_params=advice.policy_params,
    )


def store_exit(conn: psycopg.Connection, row: PositionExitRow) -> tuple[PositionExitRow, bool]:
    """Store the exit, label the trade's feature row and resolve its predictions, in one
    transaction, so a reported exit is either fully applied or not at all. The same trade_id
    again returns the stored row and ``False`` and writes nothing (a retried report is
    harmless). Label = 1 when the net pnl is > 0.

    Raises
    ------
    backend.db.errors.DatabaseError
        (InvalidData, DatabaseUnavailable, ...) after rolling everything back.
    """
    with conn.transaction():
        # The write-behind batch carrying this trade's rows takes the same lock.
        trade_features.lock_trades(conn, trade_ids=[row.trade_id])
        stored, created = position_exits.insert(conn, row)
        # One labelling rule, in SQL, for both orders of arrival (label = net pnl > 0): it
        # labels what is stored now; rows still in the write-behind queue are labelled by
        # the same statements when they land. A retried report repairs anything left open.
        trade_features.label_from_exits(conn, trade_ids=[stored.trade_id])
        predictions.resolve_from_exits(conn, trade_ids=[stored.trade_id])
    return stored, created
