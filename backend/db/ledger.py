"""The ledger of the write-behind: which records are journaled but not yet in Postgres.

Records move from *queued* (accepted since the last rotation) to *taken* (their segment is,
or is about to be, closed) to committed. Taken records are kept in segment order, so that a
segment acknowledged by name drops exactly its own records. Records replayed from an earlier
process are pending too, but were never counted as accepted here.

Not thread-safe: the write-behind calls it under the lock that also guards its journal.
"""

from __future__ import annotations

from backend.db.journal import Segment
from backend.db.records import JournalRecord


class PendingLedger:
    def __init__(self) -> None:
        self._queued: list[JournalRecord] = []
        self._taken: list[JournalRecord] = []
        # closed segments holding taken records, oldest first; the records of the open
        # segment that a failed rotation left behind follow theirs in ``_taken``
        self._segments: list[Segment] = []
        self._replayed: set[str] = set()  # names of the segments left by an earlier process
        self.accepted = 0  # records accepted so far (replayed ones excluded)
        self.committed = 0  # of those, the ones known to be in Postgres

    # ---- in --------------------------------------------------------------------------
    def accept(self, record: JournalRecord) -> int:
        """A record just journaled; returns how many are queued."""
        self._queued.append(record)
        self.accepted += 1
        return len(self._queued)

    def replay(self, segment: Segment, records: list[JournalRecord]) -> None:
        """The records of a segment an earlier process left (taken, not accepted here)."""
        self._taken.extend(records)
        self._segments.append(segment)
        self._replayed.add(segment.name)

    def take(self) -> bool:
        """Move the queued records to the taken ones; False if there were none."""
        if not self._queued:
            return False
        self._taken.extend(self._queued)
        self._queued = []
        return True

    def segment_closed(self, segment: Segment) -> None:
        """The rotation after a ``take``: ``segment`` holds the taken records not yet in a
        closed segment."""
        self._segments.append(segment)

    # ---- out -------------------------------------------------------------------------
    def commit_taken(self) -> list[Segment]:
        """Every taken record is in Postgres (the in-thread writer's batch); returns the
        segments that may now be deleted."""
        done, self._segments = self._segments, []
        self._taken = []
        self._replayed = set()
        # everything accepted before the queue was last taken is now committed
        self.committed = self.accepted - len(self._queued)
        return done

    def acknowledge(self, name: str) -> bool:
        """The segment ``name`` is in Postgres: drop it and its records. False if it is not
        pending (e.g. a late acknowledgement of a segment already dropped)."""
        offset = 0
        for i, segment in enumerate(self._segments):
            if segment.name == name:
                del self._segments[i]
                del self._taken[offset:offset + segment.records]
                if name in self._replayed:
                    self._replayed.discard(name)
                else:  # replayed records were never counted as accepted
                    self.committed += segment.records
                return True
            offset += segment.records
        return False

    # ---- views -----------------------------------------------------------------------
    def taken(self) -> list[JournalRecord]:
        """The taken records, oldest first: the next batch of the in-thread writer."""
        return list(self._taken)

    def unclosed(self) -> list[JournalRecord]:
        """Taken records in no closed segment yet (a failed rotation left them in the open
        one), oldest first."""
        return self._taken[sum(s.records for s in self._segments):]

    def segment_names(self) -> list[str]:
        """Closed segments holding pending records, oldest first."""
        return [s.name for s in self._segments]

    def records(self) -> list[JournalRecord]:
        """Every record accepted or replayed but not yet committed, oldest first."""
        return [*self._taken, *self._queued]

    @property
    def depth(self) -> int:
        return len(self._taken) + len(self._queued)

    @property
    def queued(self) -> int:
        return len(self._queued)
