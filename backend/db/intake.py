"""The accepting side of the write-behind, the same for both writer strategies: a journal
and a ledger under one lock.

``submit`` journals a record and enters it in the ledger in one step, and ``take`` moves the
queued records to the taken ones and rotates the journal in one step: so the records taken
are exactly those of the segments closed with them, and a segment is deleted only once all
of its records are committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from backend.db.batch_writer import WriterStats
from backend.db.journal import Journal, Segment, read_segment
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
    """

    def __init__(self, journal_dir: Path, stats: WriterStats, *, keep_vectors: bool) -> None:
        self.journal = Journal(journal_dir)
        self.ledger = PendingLedger()
        self.stats = stats
        self.keep_vectors = keep_vectors
        self.lock = threading.Lock()  # guards journal, ledger and the strategy's own state

    def open(self) -> int:
        """Lock the journal and take what an earlier process left in it as pending;
        returns how many records that is."""
        with self.lock:
            for path in self.journal.open():
                records = read_segment(path)
                self.ledger.replay(Segment(path, len(records)), records)
                self.stats.replayed += len(records)
            return self.ledger.depth

    def close(self) -> None:
        with self.lock:
            self.journal.close()

    def submit(self, record: JournalRecord) -> int:
        """Journal then queue one record; returns how many are queued. Raises OSError if the
        journal cannot be written, in which case the record was not accepted."""
        line = record.to_json() + b"\n"
        kept = record if self.keep_vectors else record.without_vector()
        with self.lock:
            self.journal.append(line)
            self.stats.accepted += 1
            return self.ledger.accept(kept)

    def take(self) -> None:
        """Take the queued records and rotate the journal, so that the segment holding them
        can be deleted once they commit. If the rotation fails, they stay in the open
        segment and the next rotation covers them."""
        with self.lock:
            if not self.ledger.take():
                return
            try:
                closed = self.journal.rotate()
            except OSError as exc:
                log.error("cannot rotate the journal (%s); will retry", exc)
                self.stats.last_error = f"journal rotation: {exc}"
                return
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
