"""The journal: numbered segment files of JSON lines in one directory, one process at a time.

A record is accepted once its line is written to the OS in full (a SIGKILL of the process
cannot lose it); whether it also survives a power cut depends on the fsync mode
(``TML_JOURNAL_FSYNC``: ``off``, ``batch`` = a group fsync every few ms, ``always`` = before
the record is accepted; see docs/operations.md). A line that cannot be written in full (disk
full) is cut off again: the file ends at the last accepted line, so no later write can carry
a refused record's bytes. The open segment is rotated so that the records of a closed segment
can be deleted once they are in Postgres; segments left by an earlier process are replayed at
start-up.

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


FSYNC_MODES = ("off", "batch", "always")


class Journal:
    """The segment files of ``directory`` (``segment-<n>.jsonl``, created if absent).

    ``open`` takes the directory's exclusive lock and opens a new segment; ``append`` adds
    one line to it; ``rotate`` closes it and opens the next; ``close`` closes it and releases
    the lock. ``fsync``: ``off`` (the OS writes back when it likes), ``batch`` (the caller
    runs :meth:`pending_syncs` every few ms, off the request path) or ``always`` (every
    append is fsynced before it returns; the directory when a segment is created).
    """

    def __init__(self, directory: Path, *, fsync: str = "off") -> None:
        if fsync not in FSYNC_MODES:
            raise ValueError(f"journal fsync must be one of {', '.join(FSYNC_MODES)}: {fsync!r}")
        self.directory = Path(directory)
        self.fsync = fsync
        self._fd: int | None = None  # the open segment (raw: no buffer to hold refused bytes)
        self._offset = 0  # end of the last accepted line of the open segment
        self._torn = False  # a failed write left bytes past _offset that are not cut off yet
        self._segment_no = 0
        self._records = 0  # lines appended to the open segment
        self._lock_fd: int | None = None
        self._unsynced: list[int] = []  # batch mode: closed segments' fds awaiting an fsync
        self._dir_unsynced = False  # batch mode: a segment was created since the last sync
        self._dirty = False  # batch mode: the open segment was appended to since then

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
        self._fd = self._new_segment(self._segment_no)
        self._offset, self._records, self._torn = 0, 0, False
        return leftovers

    @property
    def torn(self) -> bool:
        """A failed write left bytes the segment could not be cut back from: it takes no
        record until it is (or until a rotation replaces it)."""
        return self._torn

    def append(self, line: bytes) -> None:
        """Append one line (newline included) to the OS (and to the disk when ``fsync`` is
        ``always``). Raises OSError if it cannot be written in full, in which case the
        record was not accepted and none of its bytes stay in the segment."""
        if self._fd is None:
            raise OSError("the journal is not open (see the writer's last error)")
        if self._torn:
            self._cut_back()  # raises while the tail of a failed write cannot be cut off
        try:
            view = memoryview(line)
            while view:  # a short write (disk filling up) is followed by ENOSPC
                view = view[os.write(self._fd, view):]
            if self.fsync == "always":
                os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):  # logged there; retried at the next append
                self._cut_back()
            raise
        self._offset += len(line)
        self._records += 1
        self._dirty = True

    def rotate(self) -> Segment:
        """Close the open segment and open the next; returns the closed one. The next is
        opened first: if that fails (OSError: disk full, directory gone, EMFILE), the
        current one stays open and keeps its records, for a later rotation."""
        new = self._new_segment(self._segment_no + 1)
        old, self._fd = self._fd, new
        closed = Segment(self.segment_path(self._segment_no), self._records)
        self._segment_no += 1
        self._offset, self._records, self._torn = 0, 0, False
        self._dirty = False  # the old one's lines are synced with it, below
        if old is not None:
            if self.fsync == "batch":
                self._unsynced.append(old)  # closed once its group fsync is done
            else:
                self._close_fd(old)
        return closed

    def pending_syncs(self) -> list[int]:
        """Batch mode: file descriptors to fsync now, outside the caller's lock (then to
        close, each of them): the closed segments not yet synced, a duplicate of the open
        one, and the directory when a segment was created since the last call."""
        fds, self._unsynced = self._unsynced, []
        if self._fd is not None and self._dirty:
            with contextlib.suppress(OSError):  # EMFILE: the next round syncs it
                fds.append(os.dup(self._fd))
                self._dirty = False
        if self._dir_unsynced:
            with contextlib.suppress(OSError):
                fds.append(os.open(self.directory, os.O_RDONLY))
                self._dir_unsynced = False
        return fds

    def close(self) -> None:
        """Close the open segment (fsynced first unless ``fsync`` is ``off``) and release
        the directory's lock."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if self.fsync != "off":
                sync_and_close([fd, *self._unsynced])
                self._unsynced = []
            else:
                self._close_fd(fd)
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

    def _cut_back(self) -> None:
        """Truncate the open segment to its last accepted line."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._offset)
        except OSError as exc:
            if not self._torn:
                log.error("cannot cut a failed journal write back (%s): the segment takes "
                          "no record until it can", exc)
            self._torn = True
            raise
        self._torn = False

    def _new_segment(self, n: int) -> int:
        fd = os.open(self.segment_path(n), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync == "always":  # the new name itself must survive a power cut
            try:
                sync_directory(self.directory)
            except OSError:
                os.close(fd)
                raise
        elif self.fsync == "batch":
            self._dir_unsynced = True
        return fd

    @staticmethod
    def _close_fd(fd: int) -> None:
        try:
            os.close(fd)
        except OSError as exc:  # its accepted lines are written; nothing else was accepted
            log.error("closing a journal segment: %s", exc)

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


def sync_and_close(fds: list[int]) -> None:
    """fsync then close each file descriptor; a failure is logged (the data stays in the
    OS's cache and is written back by it), never raised."""
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError as exc:
            log.error("journal fsync failed: %s", exc)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)


def sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_segments(paths: list[Path], *, log_failures: bool = True) -> list[Path]:
    """Delete committed segments; returns those that could not be deleted (e.g.
    PermissionError), for the caller to retry later. One left on disk costs only disk space
    and an idempotent replay at the next start."""
    left = []
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            if log_failures:
                log.error("cannot delete the committed journal segment %s (%s); will retry",
                          path.name, exc)
            left.append(path)
    return left


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
