"""The /predict answer: its body, and the memory of answers given (a repeated trade_id gets
the stored answer back, also after a restart)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import orjson
import psycopg

from backend.db import predictions as predictions_db
from backend.db.errors import DatabaseError
from backend.db.records import JournalRecord
from backend.ml.predictor import LoadedModel
from backend.ml.scoring import Scored

log = logging.getLogger(__name__)

MAX_REMEMBERED = 200_000  # trade_ids whose answer is kept for duplicate requests
_DIGEST = 32  # bytes of the request's sha256 kept in front of each remembered answer
_UNKNOWN = bytes(_DIGEST)


def answer(*, prediction_id: Any, trade_id: str, probability: float, decision: str,
           threshold: float, rule: str | None, expected_r: float | None,
           model: dict[str, Any], feature_set_version: str,
           contributions: dict[str, float] | None) -> dict[str, Any]:
    """The body of a /predict answer: ``PredictResponse``'s fields in its order.

    A dict, not a validated model: validating and dumping the schema costs ~7 us against
    orjson's 0.6 us on a ~190 us request. tests/api/test_answers.py checks that this body
    is the schema, and every 200 body in tests/api/test_predict.py is validated against it.
    """
    return {"prediction_id": str(prediction_id), "trade_id": trade_id,
            "probability": probability, "decision": decision, "threshold": threshold,
            "rule": rule or "threshold", "expected_r": expected_r, "model": model,
            "feature_set_version": feature_set_version,
            "contributions": contributions, "duplicate": False}


def _digest(hex_digest: str | None) -> bytes:
    """A stored request_sha256 as bytes; b"" when absent or not a sha256 (never trusted)."""
    try:
        digest = bytes.fromhex(hex_digest or "")
    except ValueError:
        return b""
    return digest if len(digest) == _DIGEST else b""


def scored_answer(scored: Scored) -> dict[str, Any]:
    m = scored.model
    return answer(prediction_id=scored.prediction_id, trade_id=scored.signal.trade_id,
                  probability=scored.probability, decision=scored.decision,
                  threshold=scored.threshold, rule=scored.rule, expected_r=scored.expected_r,
                  model=m.ref,
                  feature_set_version=m.feature_set_version, contributions=scored.contributions)


class Remembered(NamedTuple):
    """A remembered answer and the digest of the request it answered (b"": unknown, an
    answer stored before digests were)."""

    digest: bytes
    answer: dict[str, Any]


class AnswerCache:
    """The first answer per trade_id of the last ``MAX_REMEMBERED`` ones, with the digest
    of the request it answered (``backend.ml.scoring.request_digest``)."""

    def __init__(self, *, connect: Callable[[], AbstractContextManager[psycopg.Connection]],
                 current_model: Callable[[], LoadedModel | None],
                 pending: Callable[[], Sequence[JournalRecord]] = lambda: ()) -> None:
        self._connect = connect
        self._current_model = current_model
        # journaled records not yet in the database (the writer's)
        self._pending = pending
        # trade_id -> request digest (32 bytes, or 32 zero bytes: unknown) + response as
        # JSON, one bytes object: bytes are not tracked by the garbage collector, so 200k
        # remembered answers add nothing to a full collection's pause.
        self._served: OrderedDict[str, bytes] = OrderedDict()
        self._served_lock = threading.Lock()
        self._recalled = False

    def remembered(self, trade_id: str) -> Remembered | None:
        with self._served_lock:
            stored = self._served.get(trade_id)
        if stored is None:
            return None
        digest = stored[:_DIGEST]
        return Remembered(b"" if digest == _UNKNOWN else digest, orjson.loads(stored[_DIGEST:]))

    def remember(self, trade_id: str, response: dict[str, Any], digest: bytes = b"") -> bytes:
        """Keep the first response per trade_id (the same id again returns it) with the
        digest of its request; returns the kept response as JSON, ready to send."""
        encoded = (digest or _UNKNOWN) + orjson.dumps(response)
        with self._served_lock:
            existing = self._served.setdefault(trade_id, encoded)
            self._served.move_to_end(trade_id)
            while len(self._served) > MAX_REMEMBERED:
                self._served.popitem(last=False)
        return existing[_DIGEST:]

    @property
    def recalled(self) -> bool:
        """Whether stored answers were recalled (repeated trade_ids are recognised)."""
        return self._recalled

    def ensure_recalled(self) -> None:
        """Recall stored answers once the database has answered (see recall_answers)."""
        if not self._recalled:
            recalled = self.recall_answers(self._pending())
            if self._recalled:
                log.info("remembered %d recent answers for repeated trade_ids", recalled)

    def recall_answers(self, pending: Sequence[JournalRecord] = ()) -> int:
        """Reload the duplicate-trade_id memory after a restart: the most recent stored
        answers, then journaled ones not yet in the database. Returns how many."""
        rows: list[dict[str, Any]] = []
        # database down: the journal still counts, and the model watcher tries again
        with contextlib.suppress(DatabaseError), self._connect() as conn:
            rows = predictions_db.recent_answers(conn, limit=MAX_REMEMBERED)
            self._recalled = True
        for r in reversed(rows):  # oldest first: the first answer per trade_id is kept
            self.remember(r["trade_id"], answer(
                prediction_id=r["id"], trade_id=r["trade_id"], probability=r["probability"],
                decision=r["decision"], threshold=r["threshold"],
                rule=r["decision_rule"], expected_r=r["expected_r"],
                model={"id": r["model_id"], "name": r["name"], "version": r["version"]},
                feature_set_version=r["feature_set_version"],
                contributions=r["contributions"]), _digest(r.get("request_sha256")))
        model = self._current_model()
        recalled = len(rows)
        for record in pending:
            p = record.prediction
            if not p or model is None or p["model_id"] != model.id:
                continue  # another model's answer: it reaches the database shortly
            self.remember(p["trade_id"], answer(
                prediction_id=p["id"], trade_id=p["trade_id"], probability=p["probability"],
                decision=p["decision"], threshold=p["threshold"],
                rule=p.get("decision_rule"), expected_r=p.get("expected_r"), model=model.ref,
                feature_set_version=model.feature_set_version,
                contributions=p.get("contributions")), _digest(p.get("request_sha256")))
            recalled += 1
        return recalled
