"""The journal record: a served prediction's feature row and prediction, as journaled and
stored by the write-behind."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

if TYPE_CHECKING:
    import numpy as np

Row = dict[str, Any]  # column -> value, as the ``insert_json`` functions of db/ take them


class NotARecord(ValueError):
    """A journal line that is valid JSON but not a JSON object."""


def json_default(obj: Any) -> Any:
    if isinstance(obj, UUID):
        return str(obj)
    raise TypeError(type(obj).__name__)


@dataclass(slots=True)
class JournalRecord:
    """One accepted record.

    ``feature`` (a row of ``ml_trade_features``) and ``prediction`` (a row of
    ``ml_predictions``) are what the journal holds; either may be None. They are not
    validated here: a line that parses but has a missing field or a wrong type is rejected
    by the writer (set aside in ``rejected.jsonl``), not at read time. ``prediction`` is
    mutable on purpose: the writer adds its ``contributions`` in place, once per record.

    ``vector`` is the model's feature vector, shape (n_features,), kept in memory only (never
    journaled) so that the in-thread writer computes contributions without rebuilding it
    from ``feature["features"]``.
    """

    feature: Row | None
    prediction: Row | None
    vector: np.ndarray | None = None

    def to_json(self) -> bytes:
        """The journal line (without its newline); ``vector`` is left out."""
        return orjson.dumps(self.to_dict(), default=json_default)

    def to_dict(self) -> dict[str, Row | None]:
        return {"feature": self.feature, "prediction": self.prediction}

    @classmethod
    def from_json(cls, line: bytes) -> JournalRecord:
        """Parse a journal line. Raises orjson.JSONDecodeError (a ValueError) for a line
        that is not JSON, NotARecord for JSON that is not an object."""
        obj = orjson.loads(line)
        if not isinstance(obj, dict):
            raise NotARecord(type(obj).__name__)
        return cls(obj.get("feature"), obj.get("prediction"))

    def without_vector(self) -> JournalRecord:
        """The same rows (shared, not copied) without the in-memory vector."""
        return self if self.vector is None else dataclasses.replace(self, vector=None)
