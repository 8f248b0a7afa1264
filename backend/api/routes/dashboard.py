"""The dashboard: its page and assets (no key), and the JSON of each panel (any key)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.responses import FileResponse, Response

from backend.api.deps import ConnDep, SettingsDep, ViewerScope
from backend.api.responses import FastJSONResponse
from backend.db import dashboard as dash
from backend.db import models as models_db

STATIC = Path(__file__).resolve().parents[1] / "static" / "dashboard"
ASSETS = {"dashboard.js": "text/javascript", "charts.js": "text/javascript",
          "dashboard.css": "text/css",
          "favicon.svg": "image/svg+xml"}
DEFAULT_DAYS = 30
# The page loads nothing from anywhere but this service, and the browser enforces it.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

page = APIRouter(tags=["dashboard"], include_in_schema=False)
router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


@page.get("/dashboard")
async def dashboard_page() -> Response:
    """The dashboard page; it asks for a key once and keeps it in the browser session."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@page.get("/dashboard/assets/{name}")
async def dashboard_asset(name: str) -> Response:
    """The page's own JS, CSS and icon (a fixed list: no path from the request is opened)."""
    if name not in ASSETS:
        raise HTTPException(404, "no such asset")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=PAGE_HEADERS)


def filters(
    model: Annotated[int | None, Query(ge=1, le=2**62, description="model id")] = None,
    symbol: Annotated[str | None, Query(min_length=1, max_length=64,
                                        pattern=r"^[^\x00-\x1f\x7f]+$")] = None,
    date_from: Annotated[date | None, Query(description="first UTC day (default: "
                                                        "30 days before date_to)")] = None,
    date_to: Annotated[date | None, Query(description="last UTC day (default: today)")] = None,
) -> dash.Filters:
    end = date_to or datetime.now(UTC).date()
    start = date_from or date.fromordinal(max(1, end.toordinal() - (DEFAULT_DAYS - 1)))
    return dash.Filters(date_from=start, date_to=end, model_id=model, symbol=symbol)


FiltersDep = Annotated[dash.Filters, Depends(filters)]


def _json(content: dict[str, Any]) -> FastJSONResponse:
    return FastJSONResponse(content, headers={"Cache-Control": "no-store"})


@router.get("/options")
def options(_: ViewerScope, conn: ConnDep, settings: SettingsDep) -> FastJSONResponse:
    """Choices for the filters (models, symbols) and the served model's name."""
    rows, _count = models_db.list_models(conn, limit=500)
    return _json({
        "models": [{"id": r.id, "name": r.name, "version": r.version, "status": r.status}
                   for r in rows],
        "symbols": dash.symbols(conn), "model_name": settings.model_name,
        "threshold": settings.decision_threshold, "default_days": DEFAULT_DAYS,
        "today": datetime.now(UTC).date()})


@router.get("/models")
def models_panel(_: ViewerScope, conn: ConnDep) -> FastJSONResponse:
    """The registry with out-of-sample metrics and baselines, and the activation history."""
    return _json({"models": dash.models(conn), "activations": dash.activations(conn)})


@router.get("/quality")
def quality_panel(_: ViewerScope, conn: ConnDep, f: FiltersDep) -> FastJSONResponse:
    """Live quality per model and day, and the reliability of resolved predictions."""
    return _json({"filters": f, "days": dash.quality(conn, filters=f),
                  "reliability": dash.reliability(conn, filters=f)})


@router.get("/drift")
def drift_panel(_: ViewerScope, conn: ConnDep, f: FiltersDep,
                settings: SettingsDep) -> FastJSONResponse:
    """PSI per feature of the chosen (else the active) model, worst first."""
    return _json({"filters": f, "features": dash.drift(conn, filters=f,
                                                       active_name=settings.model_name)})


@router.get("/exits")
def exits_panel(_: ViewerScope, conn: ConnDep, f: FiltersDep) -> FastJSONResponse:
    """Exits by reason, per day, and the cumulative R of reported trades."""
    return _json({"filters": f, "by_reason": dash.exits_by_reason(conn, filters=f),
                  "daily": dash.exits_daily(conn, filters=f),
                  "cumulative_r": dash.cumulative_r(conn, filters=f)})


@router.get("/predictions")
def predictions_panel(_: ViewerScope, conn: ConnDep, f: FiltersDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> FastJSONResponse:
    """The latest predictions: trade, symbol, probability, decision, model, outcome."""
    rows = dash.recent_predictions(conn, filters=f, limit=limit)
    return _json({"filters": f, "data": rows, "count": len(rows)})
