"""Top feature contributions for stored predictions, computed in batches by the writer (off
the request path): :meth:`MLSystem.enrich_contributions` in the server with the model it
serves, :class:`StoredModelContributions` in the writer process with models loaded by id."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from psycopg_pool import ConnectionPool

from backend.db import models as models_db
from backend.db.errors import DatabaseError, NotFound, translate
from backend.db.records import JournalRecord
from backend.ml.candles import FLOAT32_MAX
from backend.ml.predictor import LoadedModel
from backend.ml.registry import ModelIntegrityError, load_booster

log = logging.getLogger(__name__)


def missing(records: list[JournalRecord]) -> list[JournalRecord]:
    """Records with a prediction and a feature row but no contributions yet."""
    return [r for r in records if r.prediction and r.feature
            and r.prediction.get("contributions") is None]


def add_contributions(records: list[JournalRecord], model: LoadedModel, k: int) -> None:
    """Set ``prediction["contributions"]`` (the ``k`` largest) of the records scored by
    ``model``, in place, row by row in effect: a row the model cannot take (a feature
    beyond float32, from a journal written before requests were checked for them) keeps
    none, and costs the others nothing."""
    todo = [r for r in missing(records) if r.prediction["model_id"] == model.id]
    if not todo:
        return
    names = model.feature_names
    # the in-memory vector when there is one, else the stored dict (None -> NaN in numpy)
    X = np.array([r.vector if r.vector is not None
                  else list(map(r.feature["features"].get, names)) for r in todo],
                 dtype=np.float64)
    usable = ~(np.abs(X) > FLOAT32_MAX).any(axis=1)  # NaN (missing) is fine
    for r in (r for r, ok in zip(todo, usable.tolist(), strict=True) if not ok):
        log.warning("no contributions for prediction %s: a feature beyond float32",
                    r.prediction.get("id"))
    todo, X = [r for r, ok in zip(todo, usable.tolist(), strict=True) if ok], X[usable]
    if not todo:
        return
    try:
        tops = model.top_contributions_many(X, k)
    except Exception:  # whatever else the booster refuses: find the rows, keep the rest
        log.exception("contributions of a batch of %d failed; computing them one by one",
                      len(todo))
        for r, x in zip(todo, X, strict=True):
            try:
                r.prediction["contributions"] = model.top_contributions(x, k)
            except Exception:  # only after a failed batch
                log.exception("no contributions for prediction %s", r.prediction.get("id"))
        return
    for r, top in zip(todo, tops, strict=True):
        r.prediction["contributions"] = top


class StoredModelContributions:
    """An enricher for the writer process: loads each record's model by id (a few kept)."""

    def __init__(self, pool: ConnectionPool, k: int, keep: int = 4) -> None:
        self.pool = pool
        self.k = k
        self.keep = keep
        self._models: OrderedDict[int, LoadedModel | None] = OrderedDict()

    def __call__(self, records: list[JournalRecord]) -> None:
        for model_id in {r.prediction["model_id"] for r in missing(records)}:
            model = self._model(int(model_id))
            if model is not None:
                add_contributions(records, model, self.k)

    def _model(self, model_id: int) -> LoadedModel | None:
        if model_id in self._models:
            self._models.move_to_end(model_id)
            return self._models[model_id]
        try:
            with translate(), self.pool.connection() as conn:
                row = models_db.get(conn, model_id=model_id)
            model: LoadedModel | None = LoadedModel(row, load_booster(row), None)
        except NotFound:
            model = None  # unknown id: its rows will be rejected by the foreign key anyway
        except ModelIntegrityError as exc:
            log.error("no contributions for model %s: %s", model_id, exc)
            model = None
        except DatabaseError:
            return None  # try again with the next batch
        self._models[model_id] = model
        while len(self._models) > self.keep:
            self._models.popitem(last=False)
        return model

