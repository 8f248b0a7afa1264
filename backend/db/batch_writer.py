"""Journal records into Postgres: one transaction per batch, bad records set aside.

The database side of the write-behind, used by both writer strategies: the in-thread one
(:class:`backend.db.write_behind.ThreadWriteBehind`) and the writer process
(:mod:`backend.db.writer_process`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from psycopg_pool import ConnectionPool

from backend.db import predictions, trade_features
from backend.db.errors import DatabaseError, DatabaseUnavailable, InvalidData, translate
from backend.db.records import JournalRecord, json_default

log = logging.getLogger(__name__)

# A journal line that parses but lacks a field or has a wrong type (hand-edited, or from an
# older version) is a rejected record, not a reason for the writer to die.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError)
Enricher = Callable[[list[JournalRecord]], None]


REFUSAL_HOLD_S = 5.0


@dataclass
class WriterStats:
    accepted: int = 0
    written_batches: int = 0
    failed_attempts: int = 0
    rejected: int = 0
    last_error: str | None = None
    db_healthy: bool = True
    replayed: int = 0
    refused: int = 0  # records the journal could not take: answered 503, never stored
    append_error: str | None = None  # the journal's last append failed (disk full?)
    rotation_error: str | None = None  # the journal cannot rotate: new records wait
    refused_at: float | None = None  # time.monotonic() of the last refusal

    @property
    def stalled(self) -> bool:
        """The journal refuses records or cannot hand them on: not ready (/ready). A refusal
        counts for REFUSAL_HOLD_S: on a nearly full disk a small record may fit between two
        refused ones, and readiness must not flap to "ready" in between."""
        recent = (self.refused_at is not None
                  and time.monotonic() - self.refused_at < REFUSAL_HOLD_S)
        return recent or self.append_error is not None or self.rotation_error is not None


class BatchWriter:
    """Writes records in batches of ``batch_size``, each in one transaction.

    Parameters
    ----------
    pool : ConnectionPool
    rejected_path : Path
        Where records the database refuses are appended (one JSON line each, with the error).
    batch_size : int
    stats : WriterStats
        Updated in place (batches written, failures, rejects, health, last error).
    enrich : callable, optional
        Called with all the records before they are written (e.g. feature contributions).
    """

    def __init__(self, pool: ConnectionPool, rejected_path: Path, *, batch_size: int,
                 stats: WriterStats, enrich: Enricher | None = None) -> None:
        self.pool = pool
        self.rejected_path = rejected_path
        self.batch_size = batch_size
        self.stats = stats
        self.enrich = enrich

    def write(self, records: list[JournalRecord]) -> bool:
        """Write every record; False (and nothing lost: the caller keeps them) when the
        database is unavailable or fails."""
        if self.enrich is not None:
            try:
                self.enrich(records)
            except Exception:  # enrichment is optional; never block the write
                log.exception("enrichment failed; writing without it")
        try:
            for start in range(0, len(records), self.batch_size):
                self.write_batch(records[start:start + self.batch_size])
        except DatabaseUnavailable as exc:
            self._note_failure(exc, len(records))
            return False
        except (InvalidData, *MALFORMED) as exc:
            # One bad record must not block the rest: write one by one, set aside rejects.
            log.error("batch rejected (%s); writing records one by one", exc)
            try:
                self._write_one_by_one(records)
            except DatabaseError as exc2:
                self._note_failure(exc2, len(records))
                return False
        except DatabaseError as exc:
            self._note_failure(exc, len(records))
            return False
        self.stats.written_batches += 1
        self.stats.db_healthy = True
        self.stats.last_error = None
        return True

    def _note_failure(self, exc: Exception, kept: int) -> None:
        self.stats.failed_attempts += 1
        self.stats.db_healthy = False
        self.stats.last_error = str(exc)
        log.warning("write-behind: database write failed (%s); %d records kept, retrying",
                    exc, kept)

    def write_batch(self, batch: Sequence[JournalRecord]) -> None:
        # The rows go to Postgres as one JSON array per table, unpacked there by
        # jsonb_to_recordset (INSERT ... SELECT): no per-row Python work.
        feats = [r.feature for r in batch if r.feature]
        preds = [r.prediction for r in batch if r.prediction]
        with translate(), self.pool.connection() as conn, conn.transaction():
            trade_features.lock_trades(conn, trade_ids=[e["trade_id"] for e in feats + preds])
            if feats:
                trade_features.insert_json(conn, rows_json=json_array(feats))
                trade_features.label_from_exits(conn, trade_ids=[f["trade_id"] for f in feats])
            if preds:
                predictions.insert_json(conn, rows_json=json_array(preds))
                predictions.resolve_from_exits(conn, trade_ids=[p["trade_id"] for p in preds])

    def _write_one_by_one(self, batch: Sequence[JournalRecord]) -> None:
        rejects = []
        for record in batch:
            try:
                self.write_batch([record])
            except (InvalidData, *MALFORMED) as exc:
                rejects.append({"entry": record.to_dict(), "error": str(exc)})
        if rejects:
            self.stats.rejected += len(rejects)
            with open(self.rejected_path, "ab") as fh:
                for r in rejects:
                    fh.write(orjson.dumps(r, default=json_default) + b"\n")


def json_array(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows, default=json_default).decode()
