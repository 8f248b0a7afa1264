"""One place that maps the project's exceptions to HTTP codes (never a bare 500).

:func:`error_response` is the map; FastAPI's exception handlers and the /predict fast path
(``backend.api.fast_path``) both use it, so every route answers an error the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from backend.api.responses import FastJSONResponse
from backend.db.errors import Conflict, DatabaseError, DatabaseUnavailable, InvalidData, NotFound
from backend.ml.candles import CandleError
from backend.ml.scoring import SignalTimeError
from backend.ml.signal_context import SignalError
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


class PayloadConflict(Exception):
    """An idempotency key (a trade_id) already used with another payload: 409 with the
    ``ids`` of what is stored, so the caller can fetch it or pick a new key."""

    def __init__(self, message: str, **ids: Any) -> None:
        super().__init__(message)
        self.ids = ids


_FIELD_ERROR_TYPES = {CandleError: "invalid_candles", SignalError: "invalid_signal",
                      PositionError: "invalid_position", BadRequest: "invalid",
                      SignalTimeError: "invalid"}
FIELD_ERRORS = tuple(_FIELD_ERROR_TYPES)
HANDLED = (*FIELD_ERRORS, RequestValidationError, NotFound, Conflict, PayloadConflict,
           InvalidData, DatabaseError, ServiceUnavailable)


def _detail(loc: list[str | int], msg: str, type_: str) -> dict:
    return {"detail": [{"loc": loc, "msg": msg, "type": type_}]}


def _loc(field: str) -> list[str | int]:
    return ["body", *field.replace("[", ".").replace("]", "").split(".")]


def validation_payload(exc: RequestValidationError) -> dict:
    return {"detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                        "type": e.get("type", "invalid")} for e in exc.errors()]}


def error_response(exc: Exception) -> FastJSONResponse:
    """The HTTP answer for one of the project's exceptions (see ``HANDLED``)."""
    if isinstance(exc, FIELD_ERRORS):
        kind = next(v for k, v in _FIELD_ERROR_TYPES.items() if isinstance(exc, k))
        return FastJSONResponse(_detail(_loc(exc.field), exc.reason, kind), 422)
    if isinstance(exc, RequestValidationError):
        return FastJSONResponse(validation_payload(exc), 422)
    if isinstance(exc, NotFound):
        return FastJSONResponse({"detail": str(exc)}, 404)
    if isinstance(exc, Conflict | PayloadConflict):
        # the stored row's ids, when the conflict names one (a reused key)
        return FastJSONResponse({"detail": str(exc), **getattr(exc, "ids", {})}, 409)
    if isinstance(exc, InvalidData):
        return FastJSONResponse(_detail(["body"], str(exc), "rejected_by_database"), 422)
    if isinstance(exc, DatabaseUnavailable):
        log.warning("database unavailable: %s", exc)
        return FastJSONResponse({"detail": "database unavailable"}, 503,
                                headers={"Retry-After": "5"})
    if isinstance(exc, DatabaseError):
        log.error("database error: %s", exc)
        return FastJSONResponse({"detail": "database error"}, 503)
    if isinstance(exc, ServiceUnavailable):
        return FastJSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "5"})
    if isinstance(exc, HTTPException):
        return FastJSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    raise TypeError(f"no HTTP mapping for {type(exc).__name__}")


def internal_error_response() -> FastJSONResponse:
    """The answer to an unexpected exception (the exception itself is logged)."""
    return FastJSONResponse({"detail": "Internal Server Error"}, 500)


def install_error_handlers(app: FastAPI) -> None:
    async def handler(_: Request, exc: Exception) -> FastJSONResponse:
        try:
            return error_response(exc)
        except Exception:  # an answer that cannot be rendered must still be JSON, not
            # the server's text/plain 500 after a failed handler
            log.exception("cannot answer %s", type(exc).__name__)
            return internal_error_response()

    async def unexpected(_: Request, exc: Exception) -> FastJSONResponse:
        # Starlette's ServerErrorMiddleware sends this, then re-raises for the server's log
        return internal_error_response()

    for exc_class in HANDLED:
        app.add_exception_handler(exc_class, handler)
    app.add_exception_handler(Exception, unexpected)
