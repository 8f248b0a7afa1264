"""The accepting side of the write-behind, the same for both writer strategies: a journal
and a ledger under one lock.

``submit`` journals a record and enters it in the ledger in one step, and ``take`` moves the
queued records to the taken ones and rotates the journal in one step: so the records taken
are exactly those of the segments closed with them, and a segment is deleted only once all
of its records are committed. A rotation that fails is retried at every ``take`` (the
writer's timer), queued records or not; in ``batch`` fsync mode a thread of the intake
fsyncs the journal every ``fsync_ms``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from backend.db.batch_writer import WriterStats
from backend.db.journal import Journal, Segment, read_segment, sync_and_close
from backend.db.ledger import PendingLedger
from backend.db.records import JournalRecord

log = logging.getLogger(__name__)


class Intake:
    """Journal + ledger + the lock that makes them move together.

    Parameters
    ----------
    journal_dir : Path
    stats : WriterStats
        ``accepted`` and ``replayed`` are counted here; ``last_error`` notes a failed
        rotation.
    keep_vectors : bool
        Keep each record's in-memory vector until it is committed (the in-thread writer
        computes contributions from it; the writer process reads the journal instead).
    fsync, fsync_ms : str, float
        The journal's fsync mode (``off``, ``batch``, ``always``) and, for ``batch``, the
        interval of its group fsync.
    """

    def __init__(self, journal_dir: Path, stats: WriterStats, *, keep_vectors: bool,
                 fsync: str = "off", fsync_ms: float = 1000.0) -> None:
        self.journal = Journal(journal_dir, fsync=fsync)
        self.ledger = PendingLedger()
        self.stats = stats
        self.keep_vectors = keep_vectors
        self.fsync_seconds = fsync_ms / 1000
        self.lock = threading.Lock()  # guards journal, ledger and the strategy's own state
        self._rotation_owed = False  # taken records wait in the open segment
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None

    def open(self) -> int:
        """Lock the journal and take what an earlier process left in it as pending;
        returns how many records that is."""
        with self.lock:
            for path in self.journal.open():
                records = read_segment(path)
                self.ledger.replay(Segment(path, len(records)), records)
                self.stats.replayed += len(records)
            depth = self.ledger.depth
        if self.journal.fsync == "batch":
            self._syncer = threading.Thread(target=self._sync_periodically,
                                            name="journal-fsync", daemon=True)
            self._syncer.start()
        return depth

    def close(self) -> None:
        self._closing.set()
        if self._syncer is not None:
            self._syncer.join()
        with self.lock:
            self.journal.close()

    def _sync_periodically(self) -> None:
        """Batch mode (like Redis' appendfsync everysec): the fsyncs run outside the lock,
        so a slow disk never holds up a submit."""
        while not self._closing.wait(self.fsync_seconds):
            with self.lock:
                fds = self.journal.pending_syncs()
            sync_and_close(fds)

    def submit(self, record: JournalRecord) -> int:
        """Journal then queue one record; returns how many are queued. Raises OSError if the
        journal cannot be written, in which case the record was not accepted (and is logged
        as refused: the caller answers 503)."""
        line = record.to_json() + b"\n"
        kept = record if self.keep_vectors else record.without_vector()
        with self.lock:
            try:
                self.journal.append(line)
            except OSError as exc:
                self.stats.refused += 1
                self.stats.refused_at = time.monotonic()
                self.stats.append_error = f"journal write: {exc}"
                log.warning("journal write failed (%s): record of trade %s refused (503), "
                            "not stored", exc, _trade_id(record))
                raise
            self.stats.append_error = None
            self.stats.accepted += 1
            return self.ledger.accept(kept)

    def take(self) -> None:
        """Take the queued records and rotate the journal, so that the segment holding them
        can be deleted once they commit. If the rotation fails, they stay in the open
        segment and the next call (the writer's timer, not the next request) retries."""
        with self.lock:
            if not (self.ledger.take() or self._rotation_owed or self.journal.torn):
                return  # (a torn segment refuses every record: replace it)
            try:
                closed = self.journal.rotate()
            except OSError as exc:
                if not self._rotation_owed:
                    log.error("cannot rotate the journal (%s); retrying every round", exc)
                self._rotation_owed = True
                self.stats.last_error = self.stats.rotation_error = f"journal rotation: {exc}"
                return
            if self._rotation_owed:
                log.info("journal rotation works again")
            self._rotation_owed = False
            self.stats.rotation_error = None
            self.ledger.segment_closed(closed)

    def wait_committed(self, timeout: float, wake: Callable[[], None]) -> bool:
        """Block until everything accepted before this call is committed, calling ``wake``
        meanwhile; False if ``timeout`` came first."""
        with self.lock:
            target = self.ledger.accepted
        deadline = time.monotonic() + timeout
        while self.ledger.committed < target:
            if time.monotonic() >= deadline:
                return False
            wake()
            time.sleep(0.01)
        return True

    def records(self) -> list[JournalRecord]:
        with self.lock:
            return self.ledger.records()

    @property
    def depth(self) -> int:
        with self.lock:
            return self.ledger.depth

    def journal_bytes(self) -> int:
        return self.journal.size_bytes()


def _trade_id(record: JournalRecord) -> str | None:
    row = record.prediction or record.feature or {}
    return row.get("trade_id")
