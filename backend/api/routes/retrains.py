"""Continual learning: start a retrain (admin) and read the record of retrains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from backend.api.deps import AdminScope, ConnDep, RetrainerDep, SettingsDep, ViewerScope
from backend.api.openapi_body import body_openapi, parse_body
from backend.api.responses import ERROR_RESPONSES
from backend.api.schemas.retrains import (
    RetrainAnswer,
    RetrainPublic,
    RetrainRequest,
    RetrainsPublic,
)
from backend.db import retrains as retrains_db
from backend.db.retrains import RetrainRow
from backend.ml.retrain_policy import Retrainer

# Included before routes/models.py: "/retrains" must not reach its "/{model_id}".
router = APIRouter(prefix="/api/v1/models", tags=["models"])


def _public(row: RetrainRow | None) -> RetrainPublic | None:
    return None if row is None else RetrainPublic.model_validate(row, from_attributes=True)


@router.post("/retrain", response_model=RetrainAnswer, responses={
    **ERROR_RESPONSES, 202: {"model": RetrainAnswer,
                             "description": "Started, still running (without `wait`)"}},
             openapi_extra=body_openapi(RetrainRequest))
async def retrain(request: Request, retrainer: RetrainerDep, scope: AdminScope,
                  response: Response) -> RetrainAnswer:
    """Retrain now if the policy says so (or `force`): 202 with the job, or with `wait` 200
    once it is done; 200 with `started: false` when not due. With `wait`, a retrain already
    running is waited for first, then the policy is asked again."""
    # pydantic's JSON parser: a lone surrogate is a 422, as on every JSON route
    req = await parse_body(request, RetrainRequest)
    return await run_in_threadpool(_retrain, req, retrainer, scope, response)


def _retrain(req: RetrainRequest, retrainer: Retrainer, scope: str,
             response: Response) -> RetrainAnswer:
    waited = None
    if req.wait and (running := retrainer.running) is not None:
        waited = retrainer.wait(running, req.timeout)
    job, found = retrainer.start(force=req.force, requested_by=f"api:{scope}")
    if job is None:  # not due: the one still running, or the one just waited for
        running = retrainer.running
        row = retrainer.record(int(running.params["retrain_id"])) if running else waited
        return RetrainAnswer(started=False, due=found.reasons, check=found.details,
                             job_id=running.id if running else None, retrain=_public(row))
    retrain_id = int(job.params["retrain_id"])
    row = retrainer.wait(job, req.timeout) if req.wait else retrainer.record(retrain_id)
    if row is None or row.status == "running":
        response.status_code = 202
    return RetrainAnswer(started=True, due=found.reasons, check=found.details, job_id=job.id,
                         retrain=_public(row))


@router.get("/retrains", response_model=RetrainsPublic)
def list_retrains(_: ViewerScope, conn: ConnDep, settings: SettingsDep,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> RetrainsPublic:
    """Every retrain of the served model name, newest first: reason, outcomes, result."""
    rows, count = retrains_db.list_retrains(conn, model_name=settings.model_name,
                                            limit=limit, offset=offset)
    return RetrainsPublic(data=[RetrainPublic.model_validate(r, from_attributes=True)
                                for r in rows], count=count)
