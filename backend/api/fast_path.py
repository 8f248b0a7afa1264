"""POST /api/v1/predict without FastAPI's generic request machinery.

The bot's hot path is one route. Routing through every registered route, the exception and
exit-stack middlewares, and dependency resolution cost more CPU than scoring the signal
itself (measured in docs/performance.md), so this layer, outside even FastAPI's own error
and body-limit middlewares (:func:`install`), answers that one path directly. It shares, not
copies, what the FastAPI route runs: the key check (``auth.authenticate``), the body limit
(``body.read_body``: the Content-Length pre-check and the streamed count of the
middleware), validation (``PredictRequest``), the answer (``predictions.Predictions``), the
error map and 500 answer (``errors``) and the request metrics (``middleware.RequestMetrics``,
with the route's label). The route stays registered for the OpenAPI schema and
serves as the fallback when ``TML_FAST_PATH=false``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.auth import authenticate, presented_key
from backend.api.body import BodyTooLarge, read_body, too_large_response
from backend.api.errors import HANDLED, error_response, internal_error_response
from backend.api.fast_decode import decode_predict
from backend.api.middleware import RequestMetrics
from backend.api.openapi_body import parse_json
from backend.api.schemas.predict import PredictRequest

PATH = "/api/v1/predict"
JSON_CONTENT_TYPE = (b"content-type", b"application/json")
log = logging.getLogger(__name__)


def install(api: FastAPI) -> None:
    """Put the fast path outside the whole middleware stack FastAPI builds."""
    build = api.build_middleware_stack
    api.build_middleware_stack = lambda: PredictFastPath(build(), api)  # type: ignore[method-assign]


class PredictFastPath:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self.observed = RequestMetrics(self._serve, api.state.metrics, route=PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        await self.observed(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer_or_response = await self._respond(scope, receive)
        except Exception:  # what ServerErrorMiddleware does for the other routes
            log.exception("POST %s failed", PATH)
            answer_or_response = internal_error_response()
        if answer_or_response is None:  # the client went away mid-body
            return
        if isinstance(answer_or_response, bytes):  # 200: headers built here, no Response
            status, body = 200, answer_or_response
            headers = [(b"content-length", b"%d" % len(body)), JSON_CONTENT_TYPE]
        else:
            status, body = answer_or_response.status_code, answer_or_response.body
            headers = answer_or_response.raw_headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _respond(self, scope: Scope, receive: Receive) -> bytes | Response | None:
        """The answer (200), an error response, or None if the client left."""
        state = self.api.state
        try:
            authenticate(state.api_keys, presented_key(scope["headers"]), "bot", "POST")
        except HTTPException as exc:
            return error_response(exc)
        limit = state.settings.max_body_bytes
        try:
            body = await read_body(scope, receive, limit)
        except BodyTooLarge:
            return too_large_response(limit)
        if body is None:
            return None
        try:
            req = decode_predict(body) or parse_json(body, PredictRequest)
            return state.predictions.answer(req)
        except HANDLED as exc:
            return error_response(exc)
