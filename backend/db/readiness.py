"""The database's readiness, probed in a thread of its own so that /ready never waits.

A request-time query would wait on the pool (busy, or timing out while the database is
down) or on the thread pool that slow routes fill; instead one thread pings over its own
connection every ``interval`` seconds and /ready reads the last result. A probe that hangs
(a frozen server) leaves the result stale, and a stale result counts as unreachable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from backend.db.pool import ping
from backend.db.schema_migrations import is_applied

log = logging.getLogger(__name__)

PROBE_CONNECT_TIMEOUT = 2  # seconds; libpq's minimum
# a socket whose data stays unacknowledged this long fails the probe (ms; Linux, TCP only)
PROBE_TCP_USER_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class DatabaseStatus:
    """One probe's result; ``error`` is for keyed callers only (it names hosts)."""

    reachable: bool
    migrated: bool
    error: str | None = None
    checked_at: float = 0.0  # time.monotonic() when the probe ended


class DatabaseMonitor:
    """Pings the database every ``interval`` seconds in a daemon thread.

    ``connect_kwargs`` are the service's (``prepare_threshold``...); the connect timeout is
    the probe's own. :attr:`status` never blocks. ``on_recovered`` runs when the database
    answers again after a failed probe, before the status says so (the app passes the
    pool's ``check``: a restart leaves every pooled connection dead, and the pool's own
    check-on-checkout waits 1, 2, 4 s between dead ones, longer than a request waits).
    """

    def __init__(self, url: str, *, connect_kwargs: dict[str, Any] | None = None,
                 interval: float = 1.0, stale_after: float = 5.0,
                 on_recovered: Callable[[], None] | None = None) -> None:
        self.url = url
        self.on_recovered = on_recovered
        self.interval = interval
        self.stale_after = stale_after
        self._kwargs = {**(connect_kwargs or {}), "connect_timeout": PROBE_CONNECT_TIMEOUT,
                        "tcp_user_timeout": PROBE_TCP_USER_TIMEOUT_MS, "autocommit": True}
        self._status = DatabaseStatus(False, False, "not probed yet")
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> DatabaseStatus:
        status = self._status  # one read: the probe thread replaces it whole
        age = time.monotonic() - status.checked_at
        if status.reachable and age > self.stale_after:
            return DatabaseStatus(False, False, f"no answer to the readiness probe for "
                                                f"{age:.0f} s", status.checked_at)
        return status

    def probe(self) -> DatabaseStatus:
        """One round trip (reconnecting if needed); the result becomes :attr:`status`."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, **self._kwargs)
            ping(self._conn)
            status = DatabaseStatus(True, is_applied(self._conn), None, time.monotonic())
        except Exception as exc:  # every failure means "unreachable"; reconnect next time
            self._close()
            status = DatabaseStatus(False, False, str(exc).strip() or type(exc).__name__,
                                    time.monotonic())
        if status.reachable != self._status.reachable:
            log.info("database %s", "reachable" if status.reachable else
                     f"unreachable: {status.error}")
            if status.reachable and self.on_recovered is not None:
                try:
                    self.on_recovered()
                except Exception as exc:  # the probe's answer stands regardless
                    log.warning("after the database came back: %s", exc)
        self._status = status
        return status

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="db-readiness")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + PROBE_CONNECT_TIMEOUT + 1)
        self._close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.probe()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
