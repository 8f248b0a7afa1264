"""Write-behind with the database writes in a process of their own.

The server process only journals: one appended, flushed line per accepted record, and a
rotation of the journal every ``flush_seconds`` (or ``batch_size`` records). The writer
process is sent the name of each closed segment over a pipe; it reads the segment, adds
the feature contributions, writes the records with :class:`BatchWriter` (one transaction
per batch), deletes the segment and acknowledges it. psycopg, the JSON encoding and the SHAP
values then take no GIL time from the requests (measured in docs/performance.md).

Same guarantees as the in-thread writer: a record is accepted once its line is in the
journal; inserts are idempotent, so a segment written twice adds nothing. The server keeps
every accepted record in memory until acknowledged (repeated trade_ids, ``flush``,
``depth``). A writer process that dies is started again and sent every unacknowledged
segment. If the server dies, the writer process sees its pipe close, makes one last attempt
with the segments in hand and exits; the next start replays whatever is left.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from backend.db.batch_writer import BatchWriter, WriterStats
from backend.db.write_behind import WriteBehindWriter, read_segment

log = logging.getLogger(__name__)
COUNTERS = ("written_batches", "failed_attempts", "rejected")


@dataclass(frozen=True)
class WriterConfig:
    """What the writer process needs (sent to it when it is spawned)."""

    db_url: str
    journal_dir: str
    batch_size: int
    retry_seconds: float
    top_contributions: int | None  # None: no contributions for stored predictions
    connect_kwargs: dict[str, Any]
    pool_timeout: float = 5.0
    log_level: str = "INFO"


class ProcessWriteBehind(WriteBehindWriter):
    """:class:`WriteBehindWriter` whose database writes happen in a writer process.

    The thread of this class only rotates the journal, sends closed segments and keeps the
    writer process running; acknowledgements are read by a second thread.
    """

    keep_in_memory_key = False  # the writer process reads the journal, not these objects

    def __init__(self, config: WriterConfig, *, flush_seconds: float = 0.25) -> None:
        super().__init__(None, Path(config.journal_dir), batch_size=config.batch_size,
                         flush_seconds=flush_seconds, retry_seconds=config.retry_seconds)
        self.config = config
        self._child: _WriterChild | None = None
        self._sent: set[str] = set()  # segments the current writer process has been sent
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return super().alive and self._child is not None and self._child.alive

    def close(self, timeout: float = 30.0) -> None:
        """Send every closed segment, let the writer process write them (bounded by
        ``timeout``) and stop it; what it could not write stays in the journal."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)  # its last round rotated and sent the rest
        if self._child is not None:
            self._child.stop(timeout)
        self._close_journal()

    def _cycle(self) -> bool:
        self._wake.wait(self.flush_seconds)
        self._wake.clear()
        stopping = self._stop.is_set()
        self._take_queue()
        self._keep_child_running()
        with self._lock:
            new = [str(path) for path, _ in self._pending_segments
                   if str(path) not in self._sent]
            # marked before sending: the acknowledgement may be read before this thread runs
            # again; if the send fails, the process is gone and its successor gets them all
            self._sent.update(new)
        if new and self._child is not None:
            self._child.send(("segments", new))
        return stopping

    def _keep_child_running(self) -> None:
        if self._child is not None and self._child.alive:
            return
        if self._child is not None:
            self.restarts += 1
            log.error("the writer process exited (code %s); starting it again",
                      self._child.exitcode)
        self._child = _WriterChild(self.config, self._on_message)
        with self._lock:
            self._sent = set()  # the new process is sent every unacknowledged segment

    def _on_message(self, message: tuple[Any, ...]) -> None:
        """An acknowledgement: the segments written (by name, so a late one from a process
        that has since died cannot remove segments it did not write) and the counters."""
        written, counts, healthy, error = message
        with self._lock:
            for name in COUNTERS:
                setattr(self.stats, name, getattr(self.stats, name) + counts[name])
            self.stats.db_healthy = healthy
            self.stats.last_error = error
            for path in written:
                self._forget_segment(path)

    def _forget_segment(self, path: str) -> None:
        """Drop a written segment and its records from what is pending (lock held)."""
        self._sent.discard(path)
        offset = 0
        for i, (pending, records) in enumerate(self._pending_segments):
            if str(pending) == path:
                del self._pending_segments[i]
                del self._pending[offset:offset + records]
                if pending in self._replayed_segments:
                    self._replayed_segments.discard(pending)
                else:  # replayed records were never counted as accepted
                    self._committed_seq += records
                return
            offset += records


class _WriterChild:
    """One writer process, its pipe, and the thread reading its acknowledgements."""

    def __init__(self, config: WriterConfig, on_message: Any) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._conn, child_end = ctx.Pipe()
        # daemon: if the server exits without close(), the process is terminated, and the
        # journal is replayed at the next start
        self.process = ctx.Process(target=run_writer_process, args=(child_end, config),
                                   name="tml-writer", daemon=True)
        self.process.start()
        child_end.close()
        self._on_message = on_message
        self._reader = threading.Thread(target=self._read, name="writer-acks", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def send(self, message: tuple[Any, ...]) -> bool:
        try:
            self._conn.send(message)
            return True
        except OSError:  # the process is gone: the next round starts another
            return False

    def stop(self, timeout: float) -> None:
        self.send(("stop",))
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("the writer process did not finish in %.0f s; stopping it (its "
                        "segments stay journaled)", timeout)
            self.process.terminate()
            self.process.join(5)
        self._reader.join(5)
        self._conn.close()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return
            self._on_message(message)


# ---- the writer process ----------------------------------------------------------------


def run_writer_process(conn: Connection, config: WriterConfig) -> None:
    """Main loop of the writer process: write each batch of segments it is sent, in order,
    until told to stop or until the server's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C: the server stops us in order
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s (writer): %(message)s")
    pool = ConnectionPool(config.db_url, min_size=1, max_size=2, kwargs=config.connect_kwargs,
                          timeout=config.pool_timeout, open=False, name="tml-writer")
    pool.open(wait=False)
    stats = WriterStats()
    enrich = None
    if config.top_contributions:
        from backend.ml.contributions import StoredModelContributions  # xgboost: only here

        enrich = StoredModelContributions(pool, config.top_contributions)
    batches = BatchWriter(pool, Path(config.journal_dir) / "rejected.jsonl",
                          batch_size=config.batch_size, stats=stats, enrich=enrich)
    try:
        _serve(conn, batches, stats, config.retry_seconds)
    finally:
        pool.close()


def _serve(conn: Connection, batches: BatchWriter, stats: WriterStats,
           retry_seconds: float) -> None:
    todo: list[str] = []  # segments received, not yet written
    entries: list[dict[str, Any]] = []  # their records, read once (kept across retries,
    # with the contributions already computed: an outage must not re-read or re-score them)
    stopping = False
    while True:
        try:
            # block only when there is nothing to write
            while conn.poll(0 if todo or stopping else None):
                message = conn.recv()
                if message[0] == "segments":
                    todo.extend(message[1])
                    entries.extend(e for path in message[1] for e in _read_if_present(path))
                else:
                    stopping = True
        except (EOFError, OSError):
            stopping = True  # the server is gone: one last attempt, then exit
            conn = None  # type: ignore[assignment]
        if todo:
            counts = {name: getattr(stats, name) for name in COUNTERS}
            ok = batches.write(entries)
            delta = {name: getattr(stats, name) - counts[name] for name in COUNTERS}
            if ok:
                for path in todo:
                    Path(path).unlink(missing_ok=True)
            if conn is not None:
                try:
                    conn.send((todo if ok else [], delta, stats.db_healthy, stats.last_error))
                except OSError:
                    return
            if ok:
                todo, entries = [], []
            elif stopping:
                log.warning("database unavailable at shutdown: %d records stay journaled "
                            "for the next start", len(entries))
                return
            elif conn is not None and conn.poll(retry_seconds):
                continue  # a message came in meanwhile: take it, then retry
        if stopping and not todo:
            return
        if conn is None:
            return


def _read_if_present(path: str) -> list[dict[str, Any]]:
    try:
        return read_segment(Path(path))
    except FileNotFoundError:  # deleted after its commit (e.g. by an earlier writer)
        return []

