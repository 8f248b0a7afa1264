"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.api.deps import MetricsDep, PoolDep, SystemDep, WriterDep
from backend.api.responses import FastJSONResponse
from backend.db.pool import ping
from backend.db.schema_migrations import is_applied

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
def ready(pool: PoolDep, system: SystemDep, writer: WriterDep) -> FastJSONResponse:
    """Readiness: database reachable, migration applied, model loaded (503 when not ready)."""
    db_ok, migrated = False, False
    try:
        with pool.connection(timeout=2) as conn:
            ping(conn)
            db_ok = True
            migrated = is_applied(conn)
    except Exception:  # any failure here means "not reachable", reported below
        pass
    model = system.predictor.current
    body: dict[str, Any] = {
        "database": "ok" if db_ok else "unreachable",
        "migration": "applied" if migrated else ("unknown" if not db_ok else "missing"),
        "model": ({"id": model.id, "name": model.name, "version": model.version}
                  if model else None),
        "writer": {"queue_depth": writer.depth, "journal_bytes": writer.journal_bytes(),
                   "rejected": writer.stats.rejected, "last_error": writer.stats.last_error,
                   "alive": writer.alive},
    }
    if db_ok and migrated and model is not None and writer.alive:
        body["status"] = "ready"
        return FastJSONResponse(body, 200)
    # Predictions still work from the in-memory model while the database is away.
    body["status"] = "degraded" if model is not None else "not_ready"
    return FastJSONResponse(body, 200 if model is not None else 503)


@router.get("/metrics", response_class=PlainTextResponse,  # documented as text, as sent
            responses={200: {"description": "Prometheus text exposition format"}})
def metrics(m: MetricsDep, system: SystemDep, writer: WriterDep) -> Response:
    """Prometheus metrics: requests and latency per route, predictions per decision,
    writer queue depth and journal size, active model version."""
    m.queue_depth.set(writer.depth)
    m.journal_bytes.set(writer.journal_bytes())
    m.writer_failures.set(writer.stats.failed_attempts)
    m.writer_rejected.set(writer.stats.rejected)
    model = system.predictor.current
    m.active_model.clear()
    if model is not None:
        m.active_model.labels(model.name, str(model.id)).set(model.version)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
