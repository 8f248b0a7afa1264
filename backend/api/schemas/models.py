"""Schemas of /models, /jobs and /performance."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class ModelPublic(BaseModel):
    id: int
    name: str
    version: int
    algorithm: str
    status: Literal["candidate", "active", "retired"]
    feature_names: list[str]
    feature_set_version: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    train_start: datetime | None
    train_end: datetime | None
    n_samples: int
    artifact_format: str
    artifact_sha256: str
    notes: str | None
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int


class TrainBarrier(BaseModel):
    """Barrier fields of a training job (form fields of POST /models/train); unset fields
    take the settings (TML_BARRIER_TP_ATR, TML_BARRIER_SL_ATR, TML_BARRIER_HORIZON)."""

    tp_atr: float | None = Field(default=None, gt=0, le=100,
                                 description="Take-profit barrier in ATR")
    sl_atr: float | None = Field(default=None, gt=0, le=100, description="Stop barrier in ATR")
    horizon: str | None = Field(default=None, max_length=16,
                                description="Time barrier: bars ('24') or a duration turned "
                                            "into bars of the timeframe ('2d', '36h')")

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, value: str | None) -> str | None:
        from backend.ml.barrier_spec import parse_horizon

        return None if value is None else str(parse_horizon(value))


class TrainJobAccepted(BaseModel):
    job_id: str
    status: str
    url: str


class JobPublic(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    message: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class PerformancePublic(BaseModel):
    date: date
    model_id: int
    n_predictions: int
    n_resolved: int
    n_taken: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    roc_auc: float | None
    brier: float | None
    log_loss: float | None
    base_rate: float | None
    mean_probability: float | None
    return_taken: float | None
    return_skipped: float | None
    drift_psi: float | None
    drift: dict[str, Any]


class PerformanceList(BaseModel):
    data: list[PerformancePublic]
    count: int


class RefreshResult(BaseModel):
    rows_upserted: int
