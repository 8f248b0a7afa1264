"""Write-behind: accepted records reach Postgres in batches, off the request path, and are
never lost.

Every record is first appended to a local journal (a line of JSON, flushed to the OS, so a
SIGKILL of the process cannot lose it), then queued in memory. A background thread takes the
queue in batches, rotates the journal segment, writes the batch in one transaction (bulk
COPY paths in ``trade_features``/``predictions``) and deletes the segments it covered. If the
database is down the batch stays pending and is retried; at start-up every segment left on
disk is replayed. Inserts are idempotent (ON CONFLICT DO NOTHING on natural keys), so a
replay of a batch that had in fact committed inserts nothing twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from psycopg_pool import ConnectionPool

from backend.db.batch_writer import (
    BatchWriter,
    Enricher,
    Entry,
    WriterStats,
    journaled,
    json_default,
)

log = logging.getLogger(__name__)


class WriteBehindWriter:
    """Journaled, batched writer of feature rows and predictions (database writes in a
    thread of this process; :class:`backend.db.writer_process.ProcessWriteBehind` moves
    them to a process of their own).

    Parameters
    ----------
    pool : ConnectionPool
        Where batches go.
    journal_dir : Path
        Directory of the journal segments (``segment-<n>.jsonl``); created if absent.
    batch_size, flush_seconds, retry_seconds
        A batch is written when ``batch_size`` records are queued or ``flush_seconds`` after
        the first one; after a failure the writer waits ``retry_seconds``.
    enrich : callable, optional
        Called in the writer thread with each batch before it is written (e.g. to compute
        feature contributions off the request path).
    """

    keep_in_memory_key = True  # queued entries keep the vector for the in-thread enricher

    def __init__(
        self,
        pool: ConnectionPool | None,
        journal_dir: Path,
        *,
        batch_size: int = 1000,
        flush_seconds: float = 0.25,
        retry_seconds: float = 1.0,
        enrich: Enricher | None = None,
    ) -> None:
        self.pool = pool
        self.journal_dir = Path(journal_dir)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.stats = WriterStats()
        self._batches = BatchWriter(pool, self.journal_dir / "rejected.jsonl",
                                    batch_size=batch_size, stats=self.stats, enrich=enrich)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: list[Entry] = []
        self._pending: list[Entry] = []  # taken from the queue, not yet committed
        # closed segments holding pending records, oldest first, with their record counts
        self._pending_segments: list[tuple[Path, int]] = []
        self._segment_records = 0  # records appended to the open segment
        self._replayed_segments: set[Path] = set()  # left by an earlier process, replayed
        self._segment_no = 0
        self._segment: Any = None
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._accepted_seq = 0  # records submitted so far
        self._committed_seq = 0  # of those, the ones known to be in Postgres

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Replay what an earlier process left in the journal, then start the thread."""
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._lock_journal()
        leftovers = sorted(self.journal_dir.glob("segment-*.jsonl"), key=_segment_number)
        for path in leftovers:
            entries = read_segment(path)
            self._pending.extend(entries)
            self._pending_segments.append((path, len(entries)))
            self.stats.replayed += len(entries)
        self._replayed_segments = set(leftovers)
        self._segment_no = max((_segment_number(p) for p in leftovers), default=0) + 1
        self._open_segment()
        if self._pending:
            log.info("replaying %d journaled records", len(self._pending))
            self._wake.set()
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything queued (bounded by ``timeout``); what cannot be written stays
        in the journal for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_journal()

    def _close_journal(self) -> None:
        with self._lock:
            if self._segment is not None:
                with contextlib.suppress(OSError):
                    self._segment.close()
                self._segment = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _lock_journal(self) -> None:
        """One process per journal: a second one would replay (and delete) segments the
        first is still appending to."""
        fd = os.open(self.journal_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"journal {self.journal_dir} is in use by another process: "
                               "give each replica its own TML_DATA_DIR") from None
        self._lock_fd = fd

    # ---- producer side (request path) --------------------------------------------------
    def submit(self, entry: Entry) -> None:
        """Journal then queue one record. Raises OSError if the journal cannot be written,
        in which case the record was not accepted."""
        stored = journaled(entry)
        line = orjson.dumps(stored, default=json_default) + b"\n"
        with self._lock:
            if self._segment is None or self._segment.closed:
                raise OSError("the journal is not open (see the writer's last error)")
            self._segment.write(line)
            self._segment.flush()  # to the OS: survives a SIGKILL of this process
            self._segment_records += 1
            self._queue.append(entry if self.keep_in_memory_key else stored)
            self.stats.accepted += 1
            self._accepted_seq += 1
            size = len(self._queue)
        if size >= self.batch_size:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted before this call is committed; records that
        arrive meanwhile are not waited for. False if the timeout came first."""
        with self._lock:
            target = self._accepted_seq
        deadline = time.monotonic() + timeout
        while self._committed_seq < target:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    @property
    def alive(self) -> bool:
        """The writer thread is running (it only stops at close)."""
        return self._thread is not None and self._thread.is_alive()

    def pending_entries(self) -> list[Entry]:
        """Records accepted (journaled) but not yet committed, oldest first."""
        with self._lock:
            return [*self._pending, *self._queue]

    @property
    def depth(self) -> int:
        """Records accepted but not yet committed to Postgres."""
        with self._lock:
            return len(self._queue) + len(self._pending)

    def journal_bytes(self) -> int:
        total = 0
        for path in self.journal_dir.glob("segment-*.jsonl"):
            with contextlib.suppress(FileNotFoundError):  # committed and deleted meanwhile
                total += path.stat().st_size
        return total

    # ---- consumer side (writer thread) -------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._cycle():
                    return
            except Exception as exc:  # never die: the journal keeps every record meanwhile
                log.exception("write-behind cycle failed")
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(self.retry_seconds)

    def _cycle(self) -> bool:
        """One wait-take-write round; True when the writer should stop."""
        self._wake.wait(self.flush_seconds)
        self._wake.clear()
        stopping = self._stop.is_set()
        self._take_queue()
        if self._pending:
            ok = self._write_pending()
            if not ok:
                if stopping:
                    log.warning("database unavailable at shutdown: %d records stay "
                                "journaled for the next start", len(self._pending))
                    return True
                self._stop.wait(self.retry_seconds)
                return False
        if stopping:
            with self._lock:
                if not self._queue:
                    return True
        return False

    def _take_queue(self) -> None:
        with self._lock:
            if not self._queue:
                return
            # The queued records are already in the journal: they are pending either way.
            self._pending.extend(self._queue)
            self._queue = []
            # Rotate so the segments holding them can be deleted once they commit. Open the
            # next segment first: if that fails (disk full, directory gone) keep appending
            # to the current one and try again next round.
            try:
                new = self._new_segment(self._segment_no + 1)
            except OSError as exc:
                log.error("cannot rotate the journal (%s); will retry", exc)
                self.stats.last_error = f"journal rotation: {exc}"
                return
            old, self._segment = self._segment, new
            self._pending_segments.append((self._segment_path(self._segment_no),
                                           self._segment_records))
            self._segment_records = 0
            self._segment_no += 1
            try:
                old.close()
            except OSError as exc:  # its flushed lines are on disk; unflushed ones were
                log.error("closing a journal segment: %s", exc)  # never accepted

    def _write_pending(self) -> bool:
        if not self._batches.write(self._pending):
            return False
        with self._lock:
            self._pending = []
            done, self._pending_segments = self._pending_segments, []
            self._replayed_segments = set()
            # everything accepted before the queue was last taken is now committed
            self._committed_seq = self._accepted_seq - len(self._queue)
        for path, _ in done:
            path.unlink(missing_ok=True)
        return True

    # ---- journal files -----------------------------------------------------------------
    def _segment_path(self, n: int) -> Path:
        return self.journal_dir / f"segment-{n:08d}.jsonl"

    def _open_segment(self) -> None:
        self._segment = self._new_segment(self._segment_no)

    def _new_segment(self, n: int) -> Any:
        fd = os.open(self._segment_path(n), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab", buffering=1 << 16)


def _segment_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def read_segment(path: Path) -> list[Entry]:
    entries = []
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn last line of a crash mid-write: that record was never accepted
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.error("skipping corrupt journal line in %s", path)
                continue
            if isinstance(entry, dict):
                entries.append(entry)
            else:
                log.error("skipping a journal line that is not a record in %s", path)
    return entries
