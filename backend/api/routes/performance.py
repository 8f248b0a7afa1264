"""Live performance per model and day (from ml_performance)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import AdminScope, BotScope, ConnDep, SystemDep
from backend.api.schemas.models import PerformanceList, PerformancePublic, RefreshResult
from backend.db import performance as performance_db

router = APIRouter(prefix="/api/v1/performance", tags=["performance"])


@router.get("", response_model=PerformanceList)
def list_performance(_: BotScope, conn: ConnDep,
                     model: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                     days: Annotated[int, Query(ge=1, le=3650, examples=[7])] = 30
                     ) -> PerformanceList:
    """Daily live metrics per model over the last `days` days."""
    since = (datetime.now(UTC) - timedelta(days=days)).date()
    rows = performance_db.list_performance(conn, model_id=model, since=since)
    data = [PerformancePublic.model_validate(r, from_attributes=True) for r in rows]
    return PerformanceList(data=data, count=len(data))


@router.post("/refresh", response_model=RefreshResult)
def refresh(system: SystemDep, _: AdminScope,
            days: Annotated[int, Query(ge=1, le=3650)] = 30) -> dict[str, int]:
    """Recompute daily metrics from resolved predictions now (idempotent)."""
    return {"rows_upserted": system.track(days=days)}
