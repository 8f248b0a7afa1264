"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.api.auth import API_KEY_HEADER
from backend.api.deps import MetricsDep, SystemDep, WriterDep
from backend.api.responses import FastJSONResponse
from backend.db.write_behind import WriteBehind
from backend.redact import redact

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request, system: SystemDep, writer: WriterDep) -> FastJSONResponse:
    """Readiness: database reachable, migration applied, model loaded (503 when not ready).
    Open; an `X-API-Key` of any scope adds the details (error texts, writer queue)."""
    # async, and no query here: it reads what the readiness thread last saw, so it answers
    # at once even while the database hangs or slow routes hold every worker thread
    db = request.app.state.db_monitor.status
    # an optional key, read by hand: /ready never answers 401 (a probe has no key)
    key = request.headers.get(API_KEY_HEADER)
    details = request.app.state.api_keys.scope_of(key) is not None
    model = system.predictor.current
    body: dict[str, Any] = {
        "database": "ok" if db.reachable else "unreachable",
        "migration": "applied" if db.migrated else ("unknown" if not db.reachable
                                                    else "missing"),
        "model": model.ref if model else None,
        "writer": _writer(writer, details=details),
        # repeated trade_ids recognised: the stored answers were read back after a start
        "answers_recalled": request.app.state.answers.recalled,
    }
    if details:
        body["database_error"] = db.error
    if (db.reachable and db.migrated and model is not None and writer.healthy
            and body["answers_recalled"]):
        body["status"] = "ready"
        return FastJSONResponse(body, 200)
    # Predictions still work from the in-memory model while the database is away.
    body["status"] = "degraded" if model is not None else "not_ready"
    return FastJSONResponse(body, 200 if model is not None else 503)


def _writer(writer: WriteBehind, *, details: bool) -> dict[str, Any]:
    """The writer's state: whether it runs, for everyone; its queue and last error (the
    database's message, which names hosts and tables) only for a key."""
    # healthy: alive and neither appends nor journal rotation failing (disk full, EMFILE)
    fields: dict[str, Any] = {"alive": writer.alive, "healthy": writer.healthy}
    if details:
        fields.update(queue_depth=writer.depth, journal_bytes=writer.journal_bytes(),
                      rejected=writer.stats.rejected, refused=writer.stats.refused,
                      last_error=redact(writer.stats.last_error or "") or None)
    return fields


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
