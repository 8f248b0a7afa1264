"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.body import BodyTooLarge, BoundedReceive, declared_too_large, too_large_response
from backend.api.metrics import Metrics


class BodySizeLimit:
    """413 for bodies over ``max_bytes``, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(scope, self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        bounded = BoundedReceive(receive, self.max_bytes)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if bounded.exceeded:
                # FastAPI turns an exception while reading the body into its own 400; the
                # answer to an oversized (chunked) body is a 413 all the same.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(send, self.max_bytes)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Send, max_bytes: int) -> None:
    response = too_large_response(max_bytes)
    await send({"type": "http.response.start", "status": 413,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class RequestMetrics:
    """Counts requests and observes latency per route template (not per raw path, so ids
    in paths do not explode the label set). ``route``: the label of an app that serves one
    route outside FastAPI's routing (the fast path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, route: str | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = self.route or getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(path, scope["method"], status,
                                         time.perf_counter() - start)
