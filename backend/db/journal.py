"""The journal: numbered segment files of JSON lines in one directory, one process at a time.

A record is accepted once its line is appended and flushed to the OS (a SIGKILL of the
process cannot lose it; a power cut can: it is not fsynced). The open segment is rotated so
that the records of a closed segment can be deleted once they are in Postgres; segments left
by an earlier process are replayed at start-up.

Not thread-safe: the write-behind calls it under its own lock, the same one that guards its
ledger, so that the records taken for a batch are exactly those of the segments closed with
them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from backend.db.records import JournalRecord, NotARecord

log = logging.getLogger(__name__)
SEGMENT_GLOB = "segment-*.jsonl"


@dataclass(frozen=True, slots=True)
class Segment:
    """A closed segment and the number of records appended to it."""

    path: Path
    records: int

    @property
    def name(self) -> str:
        return self.path.name


class Journal:
    """The segment files of ``directory`` (``segment-<n>.jsonl``, created if absent).

    ``open`` takes the directory's exclusive lock and opens a new segment; ``append`` adds
    one line to it; ``rotate`` closes it and opens the next; ``close`` closes it and releases
    the lock.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._segment: BinaryIO | None = None
        self._segment_no = 0
        self._records = 0  # lines appended to the open segment
        self._lock_fd: int | None = None

    @property
    def rejected_path(self) -> Path:
        """Where the records the database refuses are set aside."""
        return self.directory / "rejected.jsonl"

    def open(self) -> list[Path]:
        """Lock the directory and open a new segment; returns the segments an earlier
        process left, oldest first (for replay)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        leftovers = sorted(self.directory.glob(SEGMENT_GLOB), key=segment_number)
        self._segment_no = max((segment_number(p) for p in leftovers), default=0) + 1
        self._segment = self._new_segment(self._segment_no)
        self._records = 0
        return leftovers

    def append(self, line: bytes) -> None:
        """Append one line (newline included) and flush it to the OS. Raises OSError if it
        cannot be written, in which case the record was not accepted."""
        if self._segment is None or self._segment.closed:
            raise OSError("the journal is not open (see the writer's last error)")
        self._segment.write(line)
        self._segment.flush()  # to the OS: survives a SIGKILL of this process
        self._records += 1

    def rotate(self) -> Segment:
        """Close the open segment and open the next; returns the closed one. The next is
        opened first: if that fails (OSError: disk full, directory gone), the current one
        stays open and keeps its records, for a later rotation."""
        new = self._new_segment(self._segment_no + 1)
        old, self._segment = self._segment, new
        closed = Segment(self.segment_path(self._segment_no), self._records)
        self._segment_no += 1
        self._records = 0
        if old is not None:
            try:
                old.close()
            except OSError as exc:  # its flushed lines are on disk; unflushed ones were
                log.error("closing a journal segment: %s", exc)  # never accepted
        return closed

    def close(self) -> None:
        """Close the open segment and release the directory's lock."""
        if self._segment is not None:
            with contextlib.suppress(OSError):
                self._segment.close()
            self._segment = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def size_bytes(self) -> int:
        """Bytes in all segments on disk (open one included)."""
        total = 0
        for path in self.directory.glob(SEGMENT_GLOB):
            with contextlib.suppress(FileNotFoundError):  # committed and deleted meanwhile
                total += path.stat().st_size
        return total

    def segment_path(self, n: int) -> Path:
        return self.directory / f"segment-{n:08d}.jsonl"

    def _new_segment(self, n: int) -> BinaryIO:
        fd = os.open(self.segment_path(n), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab", buffering=1 << 16)

    def _lock(self) -> None:
        """One process per journal: a second one would replay (and delete) segments the
        first is still appending to."""
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"journal {self.directory} is in use by another process: "
                               "give each replica its own TML_DATA_DIR") from None
        self._lock_fd = fd


def segment_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def read_segment(path: Path) -> list[JournalRecord]:
    """The records of a segment file, in order. A torn last line (a crash mid-write: never
    accepted) ends the read; a corrupt line or one that is not an object is skipped."""
    records = []
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn last line of a crash mid-write: that record was never accepted
            try:
                records.append(JournalRecord.from_json(line))
            except NotARecord:
                log.error("skipping a journal line that is not a record in %s", path)
            except orjson.JSONDecodeError:
                log.error("skipping corrupt journal line in %s", path)
    return records
