"""Model registry: list, inspect, train (background job), activate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile

from backend.api.deps import AdminScope, BotScope, ConnDep, JobsDep, SystemDep
from backend.api.errors import BadRequest
from backend.api.schemas.models import ModelPublic, ModelsPublic, TrainBarrier, TrainJobAccepted
from backend.api.uploads import candles_from, require_form, strategies_from
from backend.db import models as models_db
from backend.ml.barrier_spec import Barrier
from backend.ml.training import Progress, run_job

router = APIRouter(prefix="/api/v1/models", tags=["models"])
# Example 1: the first model a fresh install registers (the bootstrap model).
ModelIdPath = Annotated[int, Path(description="model id", examples=[1])]


def _public(row: Any) -> ModelPublic:
    return ModelPublic.model_validate(row, from_attributes=True)


@router.get("", response_model=ModelsPublic)
def list_models(_: BotScope, conn: ConnDep,
                status: Annotated[Literal["candidate", "active", "retired"] | None,
                                  Query(examples=["active"])] = None,
                name: Annotated[str | None, Query(max_length=64,
                                                  pattern=r"^[^\x00-\x1f\x7f]+$")] = None,
                limit: Annotated[int, Query(ge=1, le=500, examples=[10])] = 100,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> ModelsPublic:
    """Registered models, newest first."""
    rows, count = models_db.list_models(conn, name=name, status=status, limit=limit,
                                        offset=offset)
    return ModelsPublic(data=[_public(r) for r in rows], count=count)


@router.get("/{model_id}", response_model=ModelPublic)
def get_model(_: BotScope, model_id: ModelIdPath, conn: ConnDep) -> ModelPublic:
    """One model with its out-of-sample metrics and baselines."""
    return _public(models_db.get(conn, model_id=model_id))


@router.post("/{model_id}/activate", response_model=ModelPublic)
def activate_model(model_id: ModelIdPath, system: SystemDep, scope: AdminScope) -> ModelPublic:
    """Manual override: make this model the active one of its name (recorded)."""
    return _public(system.activate(model_id, activated_by=f"api:{scope}"))


@router.post("/train", response_model=TrainJobAccepted, status_code=202)
def train(
    request: Request,
    system: SystemDep,
    jobs: JobsDep,
    _: AdminScope,
    file: Annotated[list[UploadFile] | None, File(description=(
        "Candles: CSV, Parquet or Feather. Several files are pooled into one model; each "
        "file's symbol and timeframe come from its name (SYMBOL-TF.csv, "
        "BASE_QUOTE-TF.feather) or the symbol/timeframe fields"))] = None,
    sample: Annotated[Literal["EURUSD", "GOOG"] | None,
                      Form(description="Train on a sample file shipped with the package")] = None,
    use_database: Annotated[bool, Form(description="Include labelled rows of real trades")] = True,
    symbol: Annotated[str | None, Form(max_length=64)] = None,
    timeframe: Annotated[str | None, Form(max_length=64)] = None,
    algorithm: Annotated[Literal["xgboost", "lightgbm"], Form()] = "xgboost",
    strategies: Annotated[str | None, Form(description="Comma-separated base strategies")] = None,
    trials: Annotated[int | None, Form(ge=1, le=500)] = None,
    seed: Annotated[int | None, Form(ge=0, le=2**31 - 1)] = None,
    promote: Annotated[bool, Form()] = True,
    tp_atr: Annotated[float | None, Form(gt=0, le=100)] = None,
    sl_atr: Annotated[float | None, Form(gt=0, le=100)] = None,
    horizon: Annotated[str | None, Form(max_length=16)] = None,
) -> TrainJobAccepted:
    """Start a background training job; poll GET /api/v1/jobs/{id}."""
    require_form(request)
    chosen = strategies_from(strategies)
    candles = candles_from(file, sample, symbol=symbol, timeframe=timeframe,
                           max_rows=system.settings.max_upload_rows)
    try:
        fields = TrainBarrier(tp_atr=tp_atr, sl_atr=sl_atr, horizon=horizon)
        barrier = Barrier.from_values(**fields.model_dump(), defaults=system.settings)
        for tf in {c.timeframe or timeframe for c in candles} or {timeframe}:
            barrier.bars(tf)  # a duration needs each series' timeframe
    except ValueError as exc:
        raise BadRequest("horizon", str(exc)) from None
    if not candles and not use_database:
        raise BadRequest("file", "give a candles file or sample, or set use_database")
    params = {"algorithm": algorithm, "trials": trials, "seed": seed, "symbol": symbol,
              "timeframe": timeframe, "sample": sample, "use_database": use_database,
              "strategies": chosen, "promote": promote,
              "file": [f.filename for f in file or ()] or None,
              "barrier": {"tp_atr": barrier.tp_atr, "sl_atr": barrier.sl_atr,
                          "horizon": barrier.horizon}}

    def run(progress: Progress) -> dict[str, Any]:
        return run_job(system, progress, candles=candles, strategies=chosen,
                       use_database=use_database, symbol=symbol, timeframe=timeframe,
                       barrier=barrier,
                       algorithm=algorithm, trials=trials, seed=seed, promote=promote,
                       notes=f"api job: {params}")

    job = jobs.submit("train", run, params)
    return TrainJobAccepted(job_id=job.id, status=job.status, url=f"/api/v1/jobs/{job.id}")
