"""Schemas of /models/retrain and /models/retrains (continual learning)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RetrainRequest(BaseModel):
    # the example asks the policy only: 200 `started: false` unless a retrain is due
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"force": False, "wait": False}]})

    force: bool = Field(default=False, description="Retrain even when the policy says no")
    wait: bool = Field(default=False, description="Answer when the retrain is done (what a "
                                                  "backtest uses to stay reproducible)")
    timeout: float = Field(default=1800.0, gt=0, le=7200,
                           description="Seconds to wait at most with `wait`")


class RetrainPublic(BaseModel):
    id: int
    model_name: str
    reason: Literal["outcomes", "hours", "drift", "forced"]
    details: dict[str, Any]
    active_model_id: int | None
    candidate_model_id: int | None
    n_outcomes: int
    outcomes_until: datetime | None
    status: Literal["running", "succeeded", "failed"]
    promoted: bool | None
    result: dict[str, Any]
    error: str | None
    requested_by: str
    started_at: datetime
    finished_at: datetime | None


class RetrainAnswer(BaseModel):
    started: bool = Field(description="A retrain was started by this call")
    due: list[str] = Field(description="The policy's reasons now (empty: not due)")
    check: dict[str, Any] = Field(description="The policy's figures: outcomes since, hours, "
                                              "drift")
    job_id: str | None = None
    retrain: RetrainPublic | None = Field(
        default=None, description="The retrain started (with `wait`: finished), or the one "
                                  "still running")


class RetrainsPublic(BaseModel):
    data: list[RetrainPublic]
    count: int
