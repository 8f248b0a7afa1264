"""One place that maps the project's exceptions to HTTP codes (never a bare 500)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from backend.api.responses import FastJSONResponse
from backend.db.errors import Conflict, DatabaseError, DatabaseUnavailable, InvalidData, NotFound
from backend.ml.candles import CandleError
from backend.ml.feature_extractor import SignalError
from backend.positions.state import PositionError

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    """The service cannot answer this request now (e.g. no active model)."""


class BadRequest(Exception):
    """A semantically invalid request: 422 with ``field`` and ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _detail(loc: list[str | int], msg: str, type_: str) -> dict:
    return {"detail": [{"loc": loc, "msg": msg, "type": type_}]}


def _loc(field: str) -> list[str | int]:
    return ["body", *field.replace("[", ".").replace("]", "").split(".")]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CandleError)
    async def candle_error(_: Request, exc: CandleError) -> FastJSONResponse:
        return FastJSONResponse(_detail(_loc(exc.field), exc.reason, "invalid_candles"), 422)

    @app.exception_handler(SignalError)
    async def signal_error(_: Request, exc: SignalError) -> FastJSONResponse:
        return FastJSONResponse(_detail(_loc(exc.field), exc.reason, "invalid_signal"), 422)

    @app.exception_handler(PositionError)
    async def position_error(_: Request, exc: PositionError) -> FastJSONResponse:
        return FastJSONResponse(_detail(_loc(exc.field), exc.reason, "invalid_position"), 422)

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> FastJSONResponse:
        return FastJSONResponse(_detail(_loc(exc.field), exc.reason, "invalid"), 422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> FastJSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                   "type": e.get("type", "invalid")} for e in exc.errors()]
        return FastJSONResponse({"detail": errors}, 422)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> FastJSONResponse:
        return FastJSONResponse({"detail": str(exc)}, 404)

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> FastJSONResponse:
        return FastJSONResponse({"detail": str(exc)}, 409)

    @app.exception_handler(InvalidData)
    async def invalid_data(_: Request, exc: InvalidData) -> FastJSONResponse:
        return FastJSONResponse(_detail(["body"], str(exc), "rejected_by_database"), 422)

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(_: Request, exc: DatabaseUnavailable) -> FastJSONResponse:
        log.warning("database unavailable: %s", exc)
        return FastJSONResponse({"detail": "database unavailable"}, 503,
                              headers={"Retry-After": "5"})

    @app.exception_handler(DatabaseError)
    async def db_error(_: Request, exc: DatabaseError) -> FastJSONResponse:
        log.error("database error: %s", exc)
        return FastJSONResponse({"detail": "database error"}, 503)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, exc: ServiceUnavailable) -> FastJSONResponse:
        return FastJSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "5"})
