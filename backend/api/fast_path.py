"""POST /api/v1/predict without FastAPI's generic request machinery.

The bot's hot path is one route. Routing through every registered route, the exception and
exit-stack middlewares, and dependency resolution cost more CPU than scoring the signal
itself (measured in docs/performance.md), so this layer, outside even FastAPI's own error
and body-limit middlewares (:func:`install`), answers that one path directly: the same key
check, body limit, validation (``PredictRequest``), scoring (``routes.predict.answer``),
error mapping (``errors.error_response``) and metrics as the FastAPI route, which stays
registered for the OpenAPI schema and serves as the fallback when ``TML_FAST_PATH=false``.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.auth import FORBIDDEN, permits
from backend.api.errors import HANDLED, error_response
from backend.api.fast_decode import decode_predict
from backend.api.middleware import too_large_response
from backend.api.openapi_body import parse_json
from backend.api.responses import FastJSONResponse
from backend.api.routes.predict import answer
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            answer_or_response = await self._respond(scope, receive)
        except Exception:  # what ServerErrorMiddleware does for the other routes
            log.exception("POST %s failed", PATH)
            answer_or_response = FastJSONResponse({"detail": "Internal Server Error"}, 500)
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
        self.api.state.metrics.observe_request(PATH, "POST", status, time.perf_counter() - start)

    async def _respond(self, scope: Scope, receive: Receive
                       ) -> bytes | Response | None:
        """The answer (200), an error response, or None if the client left."""
        state = self.api.state
        key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1")
                break
        scope = state.api_keys.scope_of(key)
        if scope is None:
            return FastJSONResponse({"detail": "missing or unknown API key (header X-API-Key)"},
                                    401, headers={"WWW-Authenticate": "ApiKey"})
        if not permits(scope, "bot", "POST"):  # a viewer key: read-only
            return FastJSONResponse({"detail": FORBIDDEN["bot"]}, 403)
        limit = state.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large_response(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            req = decode_predict(body) or parse_json(body, PredictRequest)
            return answer(state, req)
        except HANDLED as exc:
            return error_response(exc)
