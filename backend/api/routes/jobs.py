"""Background job status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from backend.api.deps import BotScope, JobsDep
from backend.api.schemas.models import JobPublic

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: str, jobs: JobsDep, _: BotScope) -> dict[str, Any]:
    """Status, progress, and the result or error of a job."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id} on this replica")
    return job.public()
