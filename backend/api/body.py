"""The body limit, in one place: a Content-Length pre-check and a receive that counts what
streams in. The middleware (every route) and the /predict fast path both use it."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from backend.api.responses import FastJSONResponse


class BodyTooLarge(Exception):
    pass


def declared_too_large(scope: Scope, max_bytes: int) -> bool:
    """Whether the request's Content-Length is over ``max_bytes`` (or not a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return not value.isdigit() or int(value) > max_bytes
    return False


class BoundedReceive:
    """``receive`` that raises :class:`BodyTooLarge` once the body passes ``max_bytes``
    (for bodies without a Content-Length, or with a wrong one)."""

    __slots__ = ("exceeded", "max_bytes", "receive", "seen")

    def __init__(self, receive: Receive, max_bytes: int) -> None:
        self.receive = receive
        self.max_bytes = max_bytes
        self.seen = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.max_bytes:
                self.exceeded = True
                raise BodyTooLarge
        return message


async def read_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body, or None if the client went away; raises :class:`BodyTooLarge`."""
    if declared_too_large(scope, max_bytes):
        raise BodyTooLarge
    bounded = BoundedReceive(receive, max_bytes)
    chunks: list[bytes] = []
    while True:
        message = await bounded()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def too_large_response(max_bytes: int) -> FastJSONResponse:
    return FastJSONResponse({"detail": [{"loc": ["body"], "type": "too_large",
                                         "msg": f"request body exceeds {max_bytes} bytes"}]},
                            413)
