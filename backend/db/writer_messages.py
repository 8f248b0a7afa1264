"""What the server sends its writer process (the config at spawn, then messages over a
pipe, pickled) and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.db.batch_writer import WriterStats
from backend.db.records import JournalRecord


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
    journal_fsync: str = "off"  # used by the server side (its Intake) only
    journal_fsync_ms: float = 1000.0


@dataclass(frozen=True, slots=True)
class WriteSegments:
    """Server -> writer: closed journal segments to write, by name, oldest first."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WriteRecords:
    """Server -> writer: records of the open segment, sent by value while the journal
    cannot rotate (so they reach Postgres meanwhile). Not acknowledged: the server keeps
    them, and sends their segment by name once it closes (written again: idempotent)."""

    records: tuple[JournalRecord, ...]


@dataclass(frozen=True, slots=True)
class Stop:
    """Server -> writer: write what was sent, then exit."""


@dataclass(frozen=True, slots=True)
class Counts:
    """The writer's counters, or how much they grew."""

    written_batches: int = 0
    failed_attempts: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, stats: WriterStats) -> Counts:
        return cls(stats.written_batches, stats.failed_attempts, stats.rejected)

    def since(self, before: Counts) -> Counts:
        return Counts(self.written_batches - before.written_batches,
                      self.failed_attempts - before.failed_attempts,
                      self.rejected - before.rejected)

    def add_to(self, stats: WriterStats) -> None:
        stats.written_batches += self.written_batches
        stats.failed_attempts += self.failed_attempts
        stats.rejected += self.rejected


@dataclass(frozen=True, slots=True)
class Ack:
    """Writer -> server, after each attempt: the segments now in Postgres (by name, so a
    late one from a process that has since died cannot remove segments it did not write;
    empty after a failure), how much the counters grew, and the database's health."""

    written: tuple[str, ...]
    counts: Counts
    db_healthy: bool
    last_error: str | None


Message = WriteSegments | WriteRecords | Stop
