"""Model registry: list, inspect, train (background job), activate."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile

from backend.api.deps import AdminScope, BotScope, ConnDep, SystemDep
from backend.api.errors import BadRequest
from backend.api.schemas.models import ModelPublic, ModelsPublic, TrainBarrier, TrainJobAccepted
from backend.db import models as models_db
from backend.ml.barrier_spec import Barrier
from backend.ml.candles import CandleError, load_candles_file, sample_candles_path
from backend.ml.dataset import build_dataset
from backend.ml.labeling import STRATEGIES
from backend.ml.ml_system import concat_datasets

router = APIRouter(prefix="/api/v1/models", tags=["models"])
MAX_UPLOAD_SUFFIXES = {".csv", ".parquet", ".pq", ".feather", ".arrow"}


def _public(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in ModelPublic.model_fields}


@router.get("", response_model=ModelsPublic)
def list_models(conn: ConnDep, _: BotScope,
                status: Literal["candidate", "active", "retired"] | None = None,
                name: Annotated[str | None, Query(max_length=64,
                                                  pattern=r"^[^\x00-\x1f\x7f]+$")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    """Registered models, newest first."""
    rows, count = models_db.list_models(conn, name=name, status=status, limit=limit,
                                        offset=offset)
    return {"data": [_public(r) for r in rows], "count": count}


@router.get("/{model_id}", response_model=ModelPublic)
def get_model(model_id: int, conn: ConnDep,
              _: BotScope) -> dict[str, Any]:
    """One model with its out-of-sample metrics and baselines."""
    return _public(models_db.get(conn, model_id=model_id))


@router.post("/{model_id}/activate", response_model=ModelPublic)
def activate_model(model_id: int, system: SystemDep, scope: AdminScope) -> dict[str, Any]:
    """Manual override: make this model the active one of its name (recorded)."""
    row = system.activate(model_id, activated_by=f"api:{scope}")
    return _public(row)


@router.post("/train", response_model=TrainJobAccepted, status_code=202)
def train(
    request: Request,
    system: SystemDep,
    _: AdminScope,
    file: Annotated[UploadFile | None, File(description="Candles: CSV, Parquet or Feather")] = None,
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
) -> dict[str, Any]:
    """Start a background training job; poll GET /api/v1/jobs/{id}."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        # a JSON body would be ignored and the job run on defaults (promotion included)
        raise HTTPException(415, "send the form as multipart/form-data or "
                                 "application/x-www-form-urlencoded")
    chosen = [s.strip() for s in (strategies or "").split(",") if s.strip()] or None
    for s in chosen or []:
        if s not in STRATEGIES:
            raise BadRequest("strategies", f"unknown strategy {s!r}; known: {sorted(STRATEGIES)}")
    try:
        fields = TrainBarrier(tp_atr=tp_atr, sl_atr=sl_atr, horizon=horizon)
        barrier = Barrier.from_values(**fields.model_dump(), defaults=system.settings)
        barrier.bars(timeframe)  # a duration needs the timeframe
    except ValueError as exc:
        raise BadRequest("horizon", str(exc)) from None
    candles = None
    if file is not None and file.filename:
        suffix = Path(file.filename).suffix.lower()
        if suffix not in MAX_UPLOAD_SUFFIXES:
            raise BadRequest("file", f"unsupported file type {suffix!r} (csv, parquet, feather)")
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(file.file.read())
            tmp.flush()
            candles = _load(tmp.name, "file")
    elif sample is not None:
        candles = _load(str(sample_candles_path(sample)), "sample")
    if candles is None and not use_database:
        raise BadRequest("file", "give a candles file or sample, or set use_database")
    params = {"algorithm": algorithm, "trials": trials, "seed": seed, "symbol": symbol,
              "timeframe": timeframe, "sample": sample, "use_database": use_database,
              "strategies": chosen, "promote": promote,
              "file": file.filename if file is not None else None,
              "barrier": {"tp_atr": barrier.tp_atr, "sl_atr": barrier.sl_atr,
                          "horizon": barrier.horizon}}

    def run(progress: Any) -> dict[str, Any]:
        progress(0.01, "building the dataset")
        parts = []
        if candles is not None:
            parts.append(build_dataset(candles, strategies=chosen, extractor=system.extractor,
                                       symbol=symbol or "", timeframe=timeframe or "",
                                       barrier=barrier))
        if use_database:
            parts.append(system.dataset_from_database(symbol=symbol, timeframe=timeframe))
        data = concat_datasets(parts)
        outcome = system.train(data, algorithm=algorithm, trials=trials, seed=seed,
                               promote=promote, progress=progress,
                               notes=f"api job: {params}")
        return {"model_id": outcome.model_id, "name": outcome.name,
                "version": outcome.version, "promoted": outcome.promoted,
                "reason": outcome.reason, "n_samples": outcome.n_samples,
                "seconds": round(outcome.seconds, 2),
                "metrics": {k: outcome.metrics.get(k) for k in ("model", "always_take",
                                                               "logistic")},
                "holdout": outcome.holdout}

    job = request.app.state.jobs.submit("train", run, params)
    return {"job_id": job.id, "status": job.status, "url": f"/api/v1/jobs/{job.id}"}


def _load(path: str, field: str) -> Any:
    try:
        return load_candles_file(path)
    except CandleError as exc:
        raise BadRequest(field, exc.reason) from None
    except Exception as exc:  # unreadable/corrupt file from pandas/pyarrow
        raise BadRequest(field, f"cannot read candles: {exc}") from None
