"""Write-behind with the database writes in a process of their own (the default strategy).

The server process only journals: one appended line per accepted record, and a
rotation of the journal every ``flush_seconds`` (or ``batch_size`` records). The writer
process is sent the name of each closed segment over a pipe; it reads the segment, adds
the feature contributions, writes the records with :class:`BatchWriter` (one transaction
per batch), deletes the segment and acknowledges it. While the journal cannot rotate, the
records of the open segment are sent by value (not acknowledged: the segment follows by
name once it closes). psycopg, the JSON encoding and the SHAP values then take no GIL
time from the requests (measured in docs/performance.md).

Same guarantees as the in-thread writer: a record is accepted once its line is in the
journal; inserts are idempotent, so a segment written twice adds nothing. The server keeps
every accepted record in its ledger until its segment is acknowledged (repeated trade_ids,
``flush``, ``depth``). A writer process that dies is started again and sent every
unacknowledged segment. If the server dies, the writer process sees its pipe close, makes
one last attempt with the segments in hand and exits; the next start replays whatever is
left.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from backend.db.batch_writer import WriterStats
from backend.db.intake import Intake
from backend.db.records import JournalRecord
from backend.db.write_behind import run_cycles
from backend.db.writer_main import run_writer_process
from backend.db.writer_messages import Ack, Message, Stop, WriterConfig, WriteRecords, WriteSegments

log = logging.getLogger(__name__)


class ProcessWriteBehind:
    """The write-behind whose database writes happen in a writer process.

    The thread of this class only rotates the journal, sends closed segments and keeps the
    writer process running; acknowledgements are read by a second thread.
    """

    def __init__(self, config: WriterConfig, *, flush_seconds: float = 0.25) -> None:
        self.config = config
        self.flush_seconds = flush_seconds
        self.stats = WriterStats()
        # the writer process reads the journal, not the queued objects: no vectors kept
        self.intake = Intake(Path(config.journal_dir), self.stats, keep_vectors=False,
                             fsync=config.journal_fsync, fsync_ms=config.journal_fsync_ms)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: _WriterChild | None = None
        self._sent: set[str] = set()  # segments the current writer process has been sent
        self._pushed = 0  # records of the open segment it has been sent by value
        self.restarts = 0

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if replayed := self.intake.open():
            log.info("replaying %d journaled records", replayed)
            self._wake.set()
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Send every closed segment, let the writer process write them (bounded by
        ``timeout``) and stop it; what it could not write stays in the journal."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)  # its last round rotated and sent the rest
        if self._child is not None:
            self._child.stop(timeout)
        self.intake.close()

    # ---- producer side (request path) --------------------------------------------------
    def submit(self, record: JournalRecord) -> None:
        if self.intake.submit(record) >= self.config.batch_size:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        return self.intake.wait_committed(timeout, self._wake.set)

    @property
    def alive(self) -> bool:
        """The rotating thread and the writer process are both running."""
        return (self._thread is not None and self._thread.is_alive()
                and self._child is not None and self._child.alive)

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

    # ---- the rotating thread -------------------------------------------------------------
    def _run(self) -> None:
        run_cycles(self._cycle, stats=self.stats, stop=self._stop,
                   retry_seconds=self.config.retry_seconds)

    def _cycle(self) -> bool:
        """One wait-take-send round; True when the thread should stop."""
        self._wake.wait(self.flush_seconds)
        self._wake.clear()
        stopping = self._stop.is_set()
        self.intake.take()
        self._keep_child_running()
        with self.intake.lock:
            new = [name for name in self.intake.ledger.segment_names()
                   if name not in self._sent]
            # marked before sending: the acknowledgement may be read before this thread runs
            # again; if the send fails, the process is gone and its successor gets them all
            self._sent.update(new)
            # a failed rotation keeps records in the open segment: send them by value, so
            # that they do not wait for the rotation to work again
            unclosed = self.intake.ledger.unclosed()
            push, self._pushed = unclosed[self._pushed:], len(unclosed)
        if self._child is not None:
            if new:
                self._child.send(WriteSegments(tuple(new)))
            if push:
                self._child.send(WriteRecords(tuple(push)))
        return stopping

    def _keep_child_running(self) -> None:
        if self._child is not None and self._child.alive:
            return
        if self._child is not None:
            self.restarts += 1
            log.error("the writer process exited (code %s); starting it again",
                      self._child.exitcode)
        self._child = _WriterChild(self.config, self._on_message)
        with self.intake.lock:
            self._sent = set()  # the new process is sent every unacknowledged segment
            self._pushed = 0  # and every record of the open segment

    def _on_message(self, ack: Ack) -> None:
        """An acknowledgement (read by the child's reader thread)."""
        with self.intake.lock:
            ack.counts.add_to(self.stats)
            self.stats.db_healthy = ack.db_healthy
            self.stats.last_error = ack.last_error
            for name in ack.written:
                self._sent.discard(name)
                self.intake.ledger.acknowledge(name)


@contextlib.contextmanager
def _sigint_blocked_for_children() -> Iterator[None]:
    """A Ctrl+C reaches the terminal's whole process group: a writer still importing when
    it came died of it (a KeyboardInterrupt traceback, then a restart) before it could
    ignore SIGINT. A child starts with its parent thread's signal mask, so block SIGINT
    around the start. multiprocessing's resource tracker unblocks it when it first starts
    (during the first spawn): started beforehand, it cannot undo the block."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class _WriterChild:
    """One writer process, its pipe, and the thread reading its acknowledgements."""

    def __init__(self, config: WriterConfig, on_message: Callable[[Ack], None]) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._conn, child_end = ctx.Pipe()
        # daemon: if the server exits without close(), the process is terminated, and the
        # journal is replayed at the next start
        self.process = ctx.Process(target=run_writer_process, args=(child_end, config),
                                   name="tml-writer", daemon=True)
        with _sigint_blocked_for_children():
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

    def send(self, message: Message) -> bool:
        try:
            self._conn.send(message)
            return True
        except OSError:  # the process is gone: the next round starts another
            return False

    def stop(self, timeout: float) -> None:
        self.send(Stop())
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
