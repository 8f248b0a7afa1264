"""Journal entries into Postgres: one transaction per batch, bad records set aside.

The database side of the write-behind, shared by the in-process writer thread
(:class:`backend.db.write_behind.WriteBehindWriter`) and the writer process
(:mod:`backend.db.writer_process`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from psycopg_pool import ConnectionPool

from backend.db import predictions, trade_features
from backend.db.errors import DatabaseError, DatabaseUnavailable, InvalidData, translate

log = logging.getLogger(__name__)

Entry = dict[str, Any]  # {"feature": {...} | None, "prediction": {...} | None}
# A journal line that parses but lacks a field or has a wrong type (hand-edited, or from an
# older version) is a rejected record, not a reason for the writer to die.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError)
IN_MEMORY_KEY = "_in_memory"  # an entry's key that is kept for the enricher, not journaled
Enricher = Callable[[list[Entry]], None]


def json_default(obj: Any) -> Any:
    if isinstance(obj, UUID):
        return str(obj)
    raise TypeError(type(obj).__name__)


def journaled(entry: Entry) -> Entry:
    """The entry as it is journaled and stored (without the in-memory-only key)."""
    if IN_MEMORY_KEY not in entry:
        return entry
    return {k: v for k, v in entry.items() if k != IN_MEMORY_KEY}


@dataclass
class WriterStats:
    accepted: int = 0
    written_batches: int = 0
    failed_attempts: int = 0
    rejected: int = 0
    last_error: str | None = None
    db_healthy: bool = True
    replayed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class BatchWriter:
    """Writes entries in batches of ``batch_size``, each in one transaction.

    Parameters
    ----------
    pool : ConnectionPool
    rejected_path : Path
        Where records the database refuses are appended (one JSON line each, with the error).
    batch_size : int
    stats : WriterStats
        Updated in place (batches written, failures, rejects, health, last error).
    enrich : callable, optional
        Called with all the entries before they are written (e.g. feature contributions).
    """

    def __init__(self, pool: ConnectionPool, rejected_path: Path, *, batch_size: int,
                 stats: WriterStats, enrich: Enricher | None = None) -> None:
        self.pool = pool
        self.rejected_path = rejected_path
        self.batch_size = batch_size
        self.stats = stats
        self.enrich = enrich

    def write(self, entries: list[Entry]) -> bool:
        """Write every entry; False (and nothing lost: the caller keeps them) when the
        database is unavailable or fails."""
        if self.enrich is not None:
            try:
                self.enrich(entries)
            except Exception:  # enrichment is optional; never block the write
                log.exception("enrichment failed; writing without it")
        try:
            for start in range(0, len(entries), self.batch_size):
                self.write_batch(entries[start:start + self.batch_size])
        except DatabaseUnavailable as exc:
            self._note_failure(exc, len(entries))
            return False
        except (InvalidData, *MALFORMED) as exc:
            # One bad record must not block the rest: write one by one, set aside rejects.
            log.error("batch rejected (%s); writing records one by one", exc)
            try:
                self._write_one_by_one(entries)
            except DatabaseError as exc2:
                self._note_failure(exc2, len(entries))
                return False
        except DatabaseError as exc:
            self._note_failure(exc, len(entries))
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

    def write_batch(self, batch: Sequence[Entry]) -> None:
        # The entries go to Postgres as one JSON array per table: no per-row Python work.
        feats = [e["feature"] for e in batch if e.get("feature")]
        preds = [e["prediction"] for e in batch if e.get("prediction")]
        with translate(), self.pool.connection() as conn, conn.transaction():
            trade_features.lock_trades(conn, trade_ids=[e["trade_id"] for e in feats + preds])
            if feats:
                trade_features.insert_json(conn, rows_json=json_array(feats))
                trade_features.label_from_exits(conn, trade_ids=[f["trade_id"] for f in feats])
            if preds:
                predictions.insert_json(conn, rows_json=json_array(preds))
                predictions.resolve_from_exits(conn, trade_ids=[p["trade_id"] for p in preds])

    def _write_one_by_one(self, batch: Sequence[Entry]) -> None:
        rejects = []
        for entry in batch:
            try:
                self.write_batch([entry])
            except (InvalidData, *MALFORMED) as exc:
                kept = journaled(entry) if isinstance(entry, dict) else entry
                rejects.append({"entry": kept, "error": str(exc)})
        if rejects:
            self.stats.rejected += len(rejects)
            with open(self.rejected_path, "ab") as fh:
                for r in rejects:
                    fh.write(orjson.dumps(r, default=json_default) + b"\n")


def json_array(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows, default=json_default).decode()
