"""The one body limit: the Content-Length pre-check and the streamed count, as the
fast path reads a body and as the middleware guards every other route."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from starlette.types import Message

from backend.api.body import BodyTooLarge, declared_too_large, read_body
from backend.api.middleware import BodySizeLimit


def _receive(chunks: Iterable[bytes], *, disconnect: bool = False):
    """An ASGI receive that streams ``chunks`` (as a server does), then maybe a disconnect."""
    messages: list[Message] = [{"type": "http.request", "body": c, "more_body": True}
                               for c in chunks]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    else:
        messages[-1]["more_body"] = False
    it = iter(messages)

    async def receive() -> Message:
        return next(it)
    return receive


def _scope(content_length: bytes | None) -> dict:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length))
    return {"type": "http", "headers": headers}


def test_declared_length_over_the_limit_or_not_a_number_is_too_large():
    assert declared_too_large(_scope(b"101"), 100)
    assert declared_too_large(_scope(b"1e3"), 100)
    assert not declared_too_large(_scope(b"100"), 100)
    assert not declared_too_large(_scope(None), 100)


def test_read_body_joins_chunks_and_counts_them_against_the_limit():
    assert asyncio.run(read_body(_scope(None), _receive([b"ab", b"cd"]), 4)) == b"abcd"
    with pytest.raises(BodyTooLarge):  # no Content-Length: counted while streaming
        asyncio.run(read_body(_scope(None), _receive([b"ab", b"cde"]), 4))
    with pytest.raises(BodyTooLarge):  # a Content-Length that lies is counted too
        asyncio.run(read_body(_scope(b"2"), _receive([b"ab", b"cde"]), 4))
    async def unread() -> Message:
        raise AssertionError("the body was read")
    with pytest.raises(BodyTooLarge):  # declared too large: refused before reading
        asyncio.run(read_body(_scope(b"5"), unread, 4))
    assert asyncio.run(read_body(_scope(None), _receive([b"ab"], disconnect=True), 4)) is None


def test_the_middleware_answers_413_by_content_length_and_while_streaming():
    async def app(scope, receive, send) -> None:  # reads the whole body, answers 200
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def status(scope: dict, chunks: list[bytes]) -> int:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)
        asyncio.run(BodySizeLimit(app, max_bytes=4)(scope, _receive(chunks), send))
        return sent[0]["status"]

    assert status(_scope(b"4"), [b"abcd"]) == 200
    assert status(_scope(b"5"), [b"abcde"]) == 413
    assert status(_scope(None), [b"abc", b"de"]) == 413
