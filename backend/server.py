"""Run the HTTP service: uvicorn with connection deadlines, a connection cap inside the
file-descriptor budget, and a clean exit on SIGINT/SIGTERM.

uvicorn alone times out only an idle keep-alive connection *after* a response: a new
connection that sends nothing, or dribbles its headers or body a byte at a time, is held
forever, and enough of them exhaust the descriptors (EMFILE stops accepts and journal
rotation alike). :class:`GuardedHttpTools` adds the missing deadlines and the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.config import Settings

log = logging.getLogger("backend.server")

# Descriptors kept out of the connection budget: the interpreter and its libraries, the
# listening socket, log files, compiled model libraries, LISTEN/NOTIFY and migration
# connections, the writer process's pipes, the journal's open segment, lock and replayed
# files, and a margin for uploads and training jobs (docs/operations.md).
FD_RESERVE = 128
MIN_CONNECTIONS = 16
TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
               b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")
BUSY_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: 20\r\nconnection: close\r\n\r\ntoo many connections")


@dataclass(frozen=True, slots=True)
class FdBudget:
    limit: int  # RLIMIT_NOFILE soft limit in force
    raised_from: int | None  # the soft limit before start, when it was raised
    reserve: int  # descriptors not given to connections
    max_connections: int  # open client connections allowed


def raise_fd_limit() -> tuple[int, int | None]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; (limit now, limit before | None)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if target <= soft:
        return soft, None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:  # e.g. a container capping it lower
        log.warning("could not raise the file-descriptor limit from %d: %s", soft, exc)
        return soft, None
    return target, soft


def fd_budget(s: Settings, limit: int, raised_from: int | None = None) -> FdBudget:
    """The connection cap: TML_MAX_CONNECTIONS, never above the descriptors left over."""
    reserve = FD_RESERVE + s.db_pool_max_size
    room = max(MIN_CONNECTIONS, limit - reserve)
    wanted = s.max_connections if s.max_connections is not None else room
    if wanted > room:
        log.warning("TML_MAX_CONNECTIONS=%d exceeds the file-descriptor budget (limit %d - "
                    "reserve %d): capped at %d", wanted, limit, reserve, room)
    return FdBudget(limit, raised_from, reserve, min(wanted, room))


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with three guards (class attributes, set by
    :func:`protocol_class`):

    * headers must be complete ``header_timeout`` s after the connection opens or its
      previous response ends (else 408 when a request had begun, and close);
    * the body must be complete ``body_timeout`` s after its headers (else close);
    * at most ``max_connections`` open: beyond, the connection idle longest (no request
      in flight) is closed for the new one; with none idle the new one gets 503;
    * at most ``max_in_flight`` requests run; beyond, uvicorn's own 503. (uvicorn's
      ``limit_concurrency`` counts open connections too, so idle sockets alone would
      make every request a 503: here only requests count.)
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    max_in_flight: int = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since = self.loop.time()
        self._got_bytes = False

    # -- connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_idle():
            transport.write(BUSY_503)
            transport.close()
            return
        self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        super().data_received(data)

    # -- request phases ------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        self.limit_concurrency = 0 if len(self.tasks) >= self.max_in_flight else None
        super().on_headers_complete()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.body_timeout, self._body_late)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._idle():  # answered before its body had arrived (401, 413): clock restarts
            self._wait_for_request()
        else:
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._wait_for_request()

    # -- guards --------------------------------------------------------------------------
    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _wait_for_request(self) -> None:
        self._cancel_deadline()
        self._waiting_since, self._got_bytes = self.loop.time(), False
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            if self._got_bytes:  # a request had begun: say why it ends
                self.transport.write(TIMEOUT_408)
            self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.warning("request body not complete after %.1f s: connection closed",
                                self.body_timeout)
            self.transport.close()  # the app's receive() then sees a disconnect

    def _evict_idle(self) -> bool:
        """Close the open connection waiting longest for a request; False if none is."""
        idle = [c for c in self.connections
                if c is not self and isinstance(c, GuardedHttpTools) and c._idle()
                and not c.transport.is_closing()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._waiting_since)
        oldest.transport.close()
        self.connections.discard(oldest)  # counted out now: connection_lost comes later
        return True


def protocol_class(s: Settings, budget: FdBudget) -> type[GuardedHttpTools]:
    """A :class:`GuardedHttpTools` configured from the settings."""
    return type("ServiceHttpTools", (GuardedHttpTools,), {
        "header_timeout": s.header_timeout_s, "body_timeout": s.body_timeout_s,
        "max_connections": budget.max_connections, "max_in_flight": s.max_concurrency})


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGINT/SIGTERM after its graceful shutdown, so the
    process dies of it: a KeyboardInterrupt traceback, exit 130/143 (`make: ***`), and on
    SIGTERM no atexit handlers (the embedded Postgres kept running). A stop signal is a
    request to stop, which has been honoured: return normally instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(s: Settings) -> int:
    """Serve until SIGINT/SIGTERM; 0 after a clean shutdown."""
    from backend.app import create_app
    from backend.db.embedded import release_embedded

    limit, before = raise_fd_limit()
    budget = fd_budget(s, limit, before)
    log.info("file descriptors: limit %d%s; reserve %d (pool %d + %d); up to %d client "
             "connections, %d requests in flight; header/body timeouts %.0f/%.0f s",
             limit, f" (raised from {before})" if before else "", budget.reserve,
             s.db_pool_max_size, FD_RESERVE, budget.max_connections, s.max_concurrency,
             s.header_timeout_s, s.body_timeout_s)
    config = uvicorn.Config(create_app(s), host=s.host, port=s.port, log_level=s.log_level,
                            loop="uvloop", http=protocol_class(s, budget), access_log=False)
    try:
        _Server(config).run()  # a failed start-up raises SystemExit(3)
    finally:
        release_embedded()  # stop the embedded Postgres this process started
    return 0
