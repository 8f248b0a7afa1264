"""Wiring only: repository (backend.db) -> extractor -> trainer -> predictor -> tracker.

Each step lives in its own module (``scoring``, ``training``, ``model_watcher``,
``performance_tracker``); this class holds the objects the service shares and hands them
to those modules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from backend.config import Settings
from backend.db import models as models_db
from backend.db.errors import Conflict, translate
from backend.ml import model_cache, performance_tracker, scoring, training
from backend.ml.barrier_spec import Barrier
from backend.ml.candles import Candles
from backend.ml.contributions import add_contributions
from backend.ml.dataset import Dataset
from backend.ml.feature_extractor import FEATURE_SET_VERSION, FeatureExtractor
from backend.ml.predictor import LoadedModel, Predictor, load_model
from backend.ml.scoring import Scored, Signal
from backend.ml.training import Progress, TrainOutcome
from backend.ml.training import concat_datasets as concat_datasets  # the CLI's import

log = logging.getLogger(__name__)


class MLSystem:
    def __init__(self, settings: Settings, pool: ConnectionPool | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.extractor = FeatureExtractor()
        self.predictor = Predictor(threshold=settings.decision_threshold,
                                   costs_r=settings.decision_costs_r,
                                   margin_r=settings.decision_margin_r)
        self._load_lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if self.pool is None:
            raise RuntimeError("MLSystem has no connection pool")
        with translate(), self.pool.connection() as conn:  # PoolTimeout -> DatabaseUnavailable
            yield conn

    # ---- serving -----------------------------------------------------------------------
    def score(self, signals: Sequence[Signal], *, explain: bool) -> list[Scored]:
        """Features, probability and decision for each signal with the current model."""
        return scoring.score(signals, extractor=self.extractor, predictor=self.predictor,
                             top_contributions=self.settings.top_contributions,
                             explain=explain)

    def enrich_contributions(self, entries: list[dict[str, Any]]) -> None:
        """Writer hook: top contributions for stored predictions, computed in batches off
        the request path (only for rows of the model still loaded)."""
        model = self.predictor.current
        if model is not None:
            add_contributions(entries, model, self.settings.top_contributions)

    # ---- model lifecycle ---------------------------------------------------------------
    def load_active(self) -> LoadedModel | None:
        """Load the active model of ``settings.model_name`` if it is not the one served.

        Serialised: the watcher, an activation and a finished training job may all call it;
        one at a time, none can swap an older model back in."""
        with self._load_lock:
            with self.connection() as conn:
                row = models_db.get_active(conn, name=self.settings.model_name)
            current = self.predictor.current
            if row is None or (current is not None and current.id == row.id):
                return current
            problem = self.incompatibility(row)
            if problem is not None:  # e.g. activated by a newer release during a rolling deploy
                log.error("not serving model %s v%d (id %d): %s; keeping the current one",
                          row.name, row.version, row.id, problem)
                return current
            model = load_model(row, cache_dir=self.settings.model_cache_dir,
                               compile=self.settings.compile_models)
            self.predictor.swap(model)
            log.info("serving model %s v%d (id %d)", row.name, row.version, row.id)
            self._keep_copy(row)
            return model

    def load_local_copy(self) -> LoadedModel | None:
        """Serve the local copy of the last active model (start-up with the database
        away); :meth:`load_active` replaces it once the database answers. A corrupt,
        tampered or foreign copy is refused and logged: nothing is served from it."""
        with self._load_lock:
            if self.predictor.current is not None:
                return self.predictor.current
            path = model_cache.copy_path(self.settings.data_dir, self.settings.model_name)
            try:
                row = model_cache.read_copy(self.settings.data_dir, self.settings.model_name)
                if row is None:
                    return None
                problem = self.incompatibility(row)
                if problem is not None:
                    log.error("not serving the local copy %s: %s", path, problem)
                    return None
                model = load_model(row, cache_dir=self.settings.model_cache_dir,
                                   compile=self.settings.compile_models)
            except Exception as exc:  # corrupt or tampered: refuse, keep running
                log.error("refusing the local copy of the model (%s): %s", path, exc)
                return None
            self.predictor.swap(model)
            log.warning("database unreachable: serving model %s v%d (id %d) from its local "
                        "copy %s until the database answers", row.name, row.version, row.id,
                        path)
            return model

    def _keep_copy(self, row: models_db.ModelRow) -> None:
        # every load refreshes the copy a restart during an outage serves (load_local_copy)
        try:
            model_cache.write_copy(self.settings.data_dir, row)
        except (OSError, model_cache.ModelCopyError) as exc:
            # e.g. disk full: serving goes on, only the copy stays at the previous model
            log.warning("could not keep a local copy of model %d: %s", row.id, exc)

    def incompatibility(self, row: models_db.ModelRow | models_db.ModelSummary) -> str | None:
        """Why this process cannot serve ``row`` (its features are not the ones computed
        here, in name and order), or None when it can."""
        if row.feature_set_version != FEATURE_SET_VERSION:
            return (f"it uses feature set {row.feature_set_version!r}; this service computes "
                    f"{FEATURE_SET_VERSION!r}")
        if list(row.feature_names) != self.extractor.feature_names:
            return "its feature names or their order differ from this service's feature set"
        return None

    def activate(self, model_id: int, *, activated_by: str) -> models_db.ModelRow:
        with self.connection() as conn:
            problem = self.incompatibility(models_db.get(conn, model_id=model_id))
            if problem is not None:
                raise Conflict(f"model {model_id} cannot be served: {problem}")
            row = models_db.activate(conn, model_id=model_id, activated_by=activated_by)
        if row.name == self.settings.model_name:
            self.load_active()
        return row

    # ---- training ----------------------------------------------------------------------
    def dataset_from_candles(self, candles: Candles, *, strategies: Sequence[str] | None = None,
                             symbol: str = "", timeframe: str = "",
                             barrier: Barrier | None = None) -> Dataset:
        # default: the barrier of the settings (TML_BARRIER_*)
        barrier = barrier or Barrier.from_values(defaults=self.settings)
        return training.dataset_from_candles(candles, extractor=self.extractor,
                                             strategies=strategies, symbol=symbol,
                                             timeframe=timeframe, barrier=barrier)

    def dataset_from_database(self, *, symbol: str | None = None,
                              timeframe: str | None = None) -> Dataset | None:
        return training.dataset_from_database(self.connection, extractor=self.extractor,
                                              symbol=symbol, timeframe=timeframe)

    def train(self, data: Dataset, *, algorithm: str = "xgboost", trials: int | None = None,
              seed: int | None = None, name: str | None = None, promote: bool = True,
              show_progress: bool = False, notes: str | None = None,
              progress: Progress | None = None) -> TrainOutcome:
        """Tune, fit, register, and promote if better on the held-out window (training)."""
        return training.train(data, settings=self.settings, connect=self.connection,
                              name=name or self.settings.model_name, algorithm=algorithm,
                              trials=trials, seed=seed, promote=promote,
                              show_progress=show_progress, notes=notes, progress=progress,
                              on_promoted=self.load_active)

    # ---- tracking ----------------------------------------------------------------------
    def track(self, *, days: int = 30) -> int:
        with self.connection() as conn:
            return performance_tracker.track(conn, days=days)
