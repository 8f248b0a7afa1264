"""Write-behind: accepted records reach Postgres in batches, off the request path, and are
never lost.

Every record is first appended to the journal (:mod:`backend.db.journal`: a line of JSON,
written to the OS, so a SIGKILL of the process cannot lose it) and entered in the ledger of
pending records (:mod:`backend.db.ledger`); both live in an :class:`Intake`. Every
``flush_seconds`` (or ``batch_size`` records) the queued records are taken and the journal
segment holding them is closed; the records are written by :class:`BatchWriter` in batches
of ``batch_size``, one transaction each, and a segment is deleted once all its records are
committed. If the database is down they stay pending and are retried; at start-up every
segment left on disk is replayed. Inserts are idempotent (ON CONFLICT DO NOTHING on natural
keys), so a replay of records that had in fact committed inserts nothing twice.

Two strategies do the writing: :class:`ThreadWriteBehind` in a thread of this process, and
:class:`backend.db.writer_process.ProcessWriteBehind` in a process of its own (the default).
The app and the routes see only :class:`WriteBehind`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from psycopg_pool import ConnectionPool

from backend.db.batch_writer import BatchWriter, Enricher, WriterStats
from backend.db.intake import Intake
from backend.db.journal import remove_segments
from backend.db.records import JournalRecord

log = logging.getLogger(__name__)


class WriteBehind(Protocol):
    """What the app and the routes use of a writer strategy."""

    stats: WriterStats

    def start(self) -> None:
        """Replay what an earlier process left in the journal, then start writing."""

    def submit(self, record: JournalRecord) -> None:
        """Journal then queue one record. Raises OSError if the journal cannot be written,
        in which case the record was not accepted."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted before this call is committed; records that
        arrive meanwhile are not waited for. False if the timeout came first."""

    def close(self, timeout: float = 30.0) -> None:
        """Write everything submitted (bounded by ``timeout``); what cannot be written
        stays in the journal for the next start."""

    @property
    def alive(self) -> bool:
        """The writer is running (it only stops at close)."""

    @property
    def healthy(self) -> bool:
        """Alive, and its journal takes records and hands them on (not stalled by a full
        disk or a failing rotation): what /ready requires besides the database."""

    @property
    def depth(self) -> int:
        """Records accepted but not yet committed to Postgres."""

    def pending_records(self) -> list[JournalRecord]:
        """Records accepted (journaled) but not yet committed, oldest first."""

    def journal_bytes(self) -> int:
        """Bytes in the journal's segments."""


class ThreadWriteBehind:
    """The write-behind with the database writes in a thread of this process
    (``TML_WRITER_PROCESS=false``).

    Parameters
    ----------
    pool : ConnectionPool
        Where batches go.
    journal_dir : Path
        Directory of the journal segments (``segment-<n>.jsonl``); created if absent.
    batch_size, flush_seconds, retry_seconds
        Records are taken when ``batch_size`` are queued or every ``flush_seconds``, and
        written ``batch_size`` to a transaction; after a failure the writer waits
        ``retry_seconds``.
    enrich : callable, optional
        Called in the writer thread with the records before they are written (e.g. to
        compute feature contributions off the request path).
    fsync, fsync_ms
        The journal's fsync mode and batch interval (:class:`Intake`).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        journal_dir: Path,
        *,
        batch_size: int = 1000,
        flush_seconds: float = 0.25,
        retry_seconds: float = 1.0,
        enrich: Enricher | None = None,
        fsync: str = "off",
        fsync_ms: float = 1000.0,
    ) -> None:
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.stats = WriterStats()
        # queued records keep their vector for the in-thread enricher
        self.intake = Intake(journal_dir, self.stats, keep_vectors=True, fsync=fsync,
                             fsync_ms=fsync_ms)
        self._batches = BatchWriter(pool, self.intake.journal.rejected_path,
                                    batch_size=batch_size, stats=self.stats, enrich=enrich)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._undeleted: list[Path] = []  # committed segments a delete failed on: retried

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if replayed := self.intake.open():
            log.info("replaying %d journaled records", replayed)
            self._wake.set()
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.intake.close()

    # ---- producer side (request path) --------------------------------------------------
    def submit(self, record: JournalRecord) -> None:
        if self.intake.submit(record) >= self.batch_size:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        return self.intake.wait_committed(timeout, self._wake.set)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def healthy(self) -> bool:
        return self.alive and not self.stats.stalled

    @property
    def depth(self) -> int:
        return self.intake.depth

    def pending_records(self) -> list[JournalRecord]:
        return self.intake.records()

    def journal_bytes(self) -> int:
        return self.intake.journal_bytes()

    # ---- consumer side (writer thread) -------------------------------------------------
    def _run(self) -> None:
        run_cycles(self._cycle, stats=self.stats, stop=self._stop,
                   retry_seconds=self.retry_seconds)

    def _cycle(self) -> bool:
        """One wait-take-write round; True when the writer should stop."""
        self._wake.wait(self.flush_seconds)
        self._wake.clear()
        stopping = self._stop.is_set()
        self.intake.take()
        self._undeleted = remove_segments(self._undeleted, log_failures=False)
        with self.intake.lock:
            batch = self.intake.ledger.taken()
            if not batch:  # a late rotation closed a segment of records already committed
                self._undeleted += [s.path for s in self.intake.ledger.commit_taken()]
        if batch:
            if not self._batches.write(batch):
                if stopping:
                    log.warning("database unavailable at shutdown: %d records stay "
                                "journaled for the next start", len(batch))
                    return True
                self._stop.wait(self.retry_seconds)
                return False
            with self.intake.lock:
                done = self.intake.ledger.commit_taken()
            self._undeleted += remove_segments([segment.path for segment in done])
        if stopping:
            with self.intake.lock:
                if not self.intake.ledger.queued:
                    return True
        return False


def run_cycles(cycle: Callable[[], bool], *, stats: WriterStats, stop: threading.Event,
               retry_seconds: float) -> None:
    """The loop of a writer's thread: ``cycle()`` until it returns True (closed). A failing
    cycle is logged and retried after ``retry_seconds``: the thread never dies, and the
    journal keeps every record meanwhile."""
    while True:
        try:
            if cycle():
                return
        except Exception as exc:
            log.exception("write-behind cycle failed")
            stats.last_error = f"{type(exc).__name__}: {exc}"
            stop.wait(retry_seconds)
