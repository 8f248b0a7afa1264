"""The writer process: writes the journal segments the server sends it, in order, and
acknowledges each attempt (the server side is :mod:`backend.db.writer_process`)."""

from __future__ import annotations

import logging
import signal
from multiprocessing.connection import Connection
from pathlib import Path

from psycopg_pool import ConnectionPool

from backend.db.batch_writer import BatchWriter, WriterStats
from backend.db.journal import read_segment, remove_segments
from backend.db.pool import POOL_HEALTH
from backend.db.records import JournalRecord
from backend.db.writer_messages import Ack, Counts, WriterConfig, WriteRecords, WriteSegments
from backend.redact import install as install_redaction

log = logging.getLogger(__name__)


def run_writer_process(conn: Connection, config: WriterConfig) -> None:
    """Main loop of the writer process: write each batch of segments it is sent, in order,
    until told to stop or until the server's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C: the server stops us in order
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s (writer): %(message)s")
    install_redaction(config.db_url)  # psycopg_pool logs libpq's errors, which may quote it
    pool = ConnectionPool(config.db_url, min_size=1, max_size=2, kwargs=config.connect_kwargs,
                          timeout=config.pool_timeout, open=False, name="tml-writer",
                          **POOL_HEALTH)  # dead connections dropped after an outage
    pool.open(wait=False)
    stats = WriterStats()
    enrich = None
    if config.top_contributions:
        from backend.ml.contributions import StoredModelContributions  # xgboost: only here

        enrich = StoredModelContributions(pool, config.top_contributions)
    journal_dir = Path(config.journal_dir)
    batches = BatchWriter(pool, journal_dir / "rejected.jsonl",
                          batch_size=config.batch_size, stats=stats, enrich=enrich)
    try:
        _serve(conn, journal_dir, batches, stats, config.retry_seconds)
    finally:
        pool.close()


def _serve(conn: Connection, journal_dir: Path, batches: BatchWriter, stats: WriterStats,
           retry_seconds: float) -> None:
    todo: list[Path] = []  # segments received, not yet written
    records: list[JournalRecord] = []  # theirs, read once (kept across retries, with the
    # contributions already computed: an outage must not re-read or re-score them)
    undeleted: list[Path] = []  # committed segments a delete failed on (PermissionError)
    stopping = False
    while True:
        undeleted = remove_segments(undeleted, log_failures=False)
        try:
            # block only when there is nothing to write (or to delete, every retry)
            while conn.poll(0 if records or todo or stopping
                            else retry_seconds if undeleted else None):
                message = conn.recv()
                if isinstance(message, WriteSegments):
                    paths = [journal_dir / name for name in message.names]
                    todo.extend(paths)
                    records.extend(r for path in paths for r in _read_if_present(path))
                elif isinstance(message, WriteRecords):  # the journal cannot rotate
                    records.extend(message.records)
                else:  # Stop
                    stopping = True
        except (EOFError, OSError):
            stopping = True  # the server is gone: one last attempt, then exit
            conn = None  # type: ignore[assignment]
        if todo or records:
            before = Counts.of(stats)
            ok = batches.write(records)
            if ok:  # a segment that cannot be deleted is retried, never fatal
                undeleted += remove_segments(todo)
            if conn is not None:
                ack = Ack(written=tuple(p.name for p in todo) if ok else (),
                          counts=Counts.of(stats).since(before),
                          db_healthy=stats.db_healthy, last_error=stats.last_error)
                try:
                    conn.send(ack)
                except OSError:
                    return
            if ok:
                todo, records = [], []
            elif stopping:
                log.warning("database unavailable at shutdown: %d records stay journaled "
                            "for the next start", len(records))
                return
            elif conn is not None and conn.poll(retry_seconds):
                continue  # a message came in meanwhile: take it, then retry
        if stopping and not todo and not records:
            return
        if conn is None:
            return


def _read_if_present(path: Path) -> list[JournalRecord]:
    try:
        return read_segment(path)
    except FileNotFoundError:  # deleted after its commit (e.g. by an earlier writer)
        return []
