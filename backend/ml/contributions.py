"""Top feature contributions for stored predictions, computed in batches by the writer (off
the request path): :meth:`MLSystem.enrich_contributions` in the server with the model it
serves, :class:`StoredModelContributions` in the writer process with models loaded by id."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from psycopg_pool import ConnectionPool

from backend.db import models as models_db
from backend.db.batch_writer import IN_MEMORY_KEY, Entry
from backend.db.errors import DatabaseError, NotFound, translate
from backend.ml.predictor import LoadedModel
from backend.ml.registry import ModelIntegrityError, load_booster

log = logging.getLogger(__name__)


def missing(entries: list[Entry]) -> list[Entry]:
    """Entries with a prediction and a feature row but no contributions yet."""
    return [e for e in entries if e.get("prediction") and e.get("feature")
            and e["prediction"].get("contributions") is None]


def add_contributions(entries: list[Entry], model: LoadedModel, k: int) -> None:
    """Set ``prediction.contributions`` (the ``k`` largest) of entries scored by ``model``;
    the feature vector is the in-memory one when there is one, else the stored dict."""
    todo = [e for e in missing(entries) if e["prediction"]["model_id"] == model.id]
    if not todo:
        return
    names = model.feature_names
    # the in-memory vector when there is one, else the stored dict (None -> NaN in numpy)
    X = np.array([e[IN_MEMORY_KEY] if IN_MEMORY_KEY in e
                  else list(map(e["feature"]["features"].get, names)) for e in todo],
                 dtype=np.float64)
    for e, top in zip(todo, model.top_contributions_many(X, k), strict=True):
        e["prediction"]["contributions"] = top


class StoredModelContributions:
    """An enricher for the writer process: loads each entry's model by id (a few kept)."""

    def __init__(self, pool: ConnectionPool, k: int, keep: int = 4) -> None:
        self.pool = pool
        self.k = k
        self.keep = keep
        self._models: OrderedDict[int, LoadedModel | None] = OrderedDict()

    def __call__(self, entries: list[Entry]) -> None:
        for model_id in {e["prediction"]["model_id"] for e in missing(entries)}:
            model = self._model(int(model_id))
            if model is not None:
                add_contributions(entries, model, self.k)

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

