"""Hot-swap on activation: a thread that LISTENs for the activation NOTIFY, with polling as
the fallback, and runs ``refresh`` after each notification or poll interval."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import psycopg

from backend.db import models as models_db

log = logging.getLogger(__name__)


class ModelWatcher:
    def __init__(self, db_url: str, *, poll_seconds: float, refresh: Callable[[], None]) -> None:
        self.db_url = db_url
        self.poll_seconds = poll_seconds
        self.refresh = refresh
        self._stop = threading.Event()
        self._wake = threading.Event()  # the database is back: retry without waiting
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, daemon=True, name="model-watcher")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Reconnect now instead of at the end of the poll interval (the database is back)."""
        self._wake.set()

    def _watch(self) -> None:
        poll = self.poll_seconds
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.db_url, autocommit=True, connect_timeout=5) as conn:
                    models_db.listen_activations(conn)
                    self.refresh()  # what changed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=poll, stop_after=1):
                            break
                        self.refresh()
            except Exception as exc:  # keep watching through outages
                log.debug("model watcher: %s", exc)
                self._wake.wait(poll)
                self._wake.clear()
                # LISTEN itself may be refused (e.g. a transaction pooler): poll instead.
                with contextlib.suppress(Exception):
                    self.refresh()
