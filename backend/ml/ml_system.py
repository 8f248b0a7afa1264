"""Wiring only: repository (backend.db) -> extractor -> trainer -> predictor -> tracker.

Each step lives in its own module; this class holds the objects the service shares and the
short sequences that connect them (serve one signal, train and register, track).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psycopg
from psycopg_pool import ConnectionPool

from backend.config import Settings
from backend.db import models as models_db
from backend.db import predictions as predictions_db
from backend.db import trade_features
from backend.db.errors import Conflict, DatabaseError, translate
from backend.db.ids import uuid7
from backend.db.records import JournalRecord
from backend.ml import performance_tracker, registry
from backend.ml.barrier_spec import Barrier
from backend.ml.boosters import predict_booster
from backend.ml.candles import Candles
from backend.ml.contributions import add_contributions
from backend.ml.dask_training import on_cluster
from backend.ml.dataset import Dataset, build_dataset, dataset_from_outcomes
from backend.ml.feature_extractor import (
    FEATURE_SET_VERSION,
    FeatureExtractor,
    named_features,
)
from backend.ml.metrics import classification_metrics
from backend.ml.model_trainer import ModelTrainer
from backend.ml.predictor import LoadedModel, Predictor, load_model
from backend.ml.validation import holdout_split

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
ACTIVATION_CHANNEL = "ml_model_activated"
MAX_REMEMBERED = 200_000  # trade_ids whose answer is kept for duplicate requests


def answer(*, prediction_id: Any, trade_id: str, probability: float, decision: str,
           threshold: float, model: dict[str, Any], feature_set_version: str,
           contributions: dict[str, float] | None) -> dict[str, Any]:
    """The body of a /predict answer (PredictResponse), built in one place."""
    return {"prediction_id": str(prediction_id), "trade_id": trade_id,
            "probability": probability, "decision": decision, "threshold": threshold,
            "model": model, "feature_set_version": feature_set_version,
            "contributions": contributions, "duplicate": False}


@dataclass(frozen=True, slots=True)
class Signal:
    """One entry signal from the bot, candles already validated."""

    trade_id: str
    symbol: str
    timeframe: str
    side: str
    strategy: str
    candles: Candles
    signal_time: datetime
    signal_strength: float | None = None
    stop_price: float | None = None
    target_price: float | None = None


@dataclass(slots=True)
class Scored:
    """A served prediction: what the response says and what gets stored."""

    prediction_id: uuid.UUID
    signal: Signal
    model: LoadedModel
    probability: float
    decision: str
    threshold: float
    vector: np.ndarray
    contributions: dict[str, float] | None
    latency_ms: float
    created_at: datetime

    def journal_entry(self) -> JournalRecord:
        """The feature row and the prediction to store (the vector kept in memory only)."""
        s = self.signal
        features = named_features(self.model.feature_names, self.vector)
        return JournalRecord(
            vector=self.vector,
            feature={
                "trade_id": s.trade_id, "symbol": s.symbol, "timeframe": s.timeframe,
                "side": s.side, "strategy": s.strategy, "signal_time": s.signal_time,
                "feature_set_version": self.model.feature_set_version, "features": features,
            },
            prediction={
                "id": self.prediction_id, "model_id": self.model.id, "trade_id": s.trade_id,
                "probability": self.probability, "threshold": self.threshold,
                "decision": self.decision, "contributions": self.contributions,
                "latency_ms": self.latency_ms, "created_at": self.created_at,
            },
        )


@dataclass
class TrainOutcome:
    model_id: int
    name: str
    version: int
    promoted: bool
    reason: str
    metrics: dict[str, Any]
    holdout: dict[str, Any]
    n_samples: int
    seconds: float


class MLSystem:
    def __init__(self, settings: Settings, pool: ConnectionPool | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.extractor = FeatureExtractor()
        self.predictor = Predictor(threshold=settings.decision_threshold)
        # trade_id -> response as JSON bytes: bytes are not tracked by the garbage collector,
        # so 200k remembered answers add nothing to a full collection's pause.
        self._served: OrderedDict[str, bytes] = OrderedDict()
        self._served_lock = threading.Lock()
        self._watch_stop = threading.Event()
        self._recalled = False
        self._load_lock = threading.Lock()
        # journaled records not yet in the database (the app sets the writer's)
        self.pending_source: Callable[[], Sequence[JournalRecord]] = lambda: ()
        self._watcher: threading.Thread | None = None

    # ---- serving -----------------------------------------------------------------------
    def score(self, signals: Sequence[Signal], *, explain: bool) -> list[Scored]:
        """Features, probability and decision for each signal with the current model.

        The model reference is taken once, so a swap mid-batch cannot mix two models."""
        model = self.predictor.current
        if model is None:
            raise LookupError("no active model")
        start = time.perf_counter()
        vectors = [
            self.extractor.signal_vector(
                s.candles, side=s.side, strategy=s.strategy, signal_strength=s.signal_strength,
                stop_price=s.stop_price, target_price=s.target_price)
            for s in signals
        ]
        if len(vectors) == 1:
            probs = [model.predict_one(vectors[0])]
        else:
            probs = model.predict_proba(np.vstack(vectors)).tolist()
        threshold = self.predictor.threshold
        now = datetime.now(UTC)
        latency_ms = (time.perf_counter() - start) * 1000 / len(signals)
        out = []
        for s, x, p in zip(signals, vectors, probs, strict=True):
            contribs = (model.top_contributions(x, self.settings.top_contributions)
                        if explain else None)
            out.append(Scored(uuid7(), s, model, float(p), self.predictor.decide(p),
                              threshold, x, contribs, latency_ms, now))
        return out

    def remembered(self, trade_id: str) -> dict[str, Any] | None:
        with self._served_lock:
            stored = self._served.get(trade_id)
        return None if stored is None else orjson.loads(stored)

    def remember(self, trade_id: str, response: dict[str, Any]) -> bytes:
        """Keep the first response per trade_id (the same id again returns it); returns
        the kept response as JSON, ready to send."""
        encoded = orjson.dumps(response)
        with self._served_lock:
            existing = self._served.setdefault(trade_id, encoded)
            self._served.move_to_end(trade_id)
            while len(self._served) > MAX_REMEMBERED:
                self._served.popitem(last=False)
        return existing

    def ensure_recalled(self) -> None:
        """Recall stored answers once the database has answered (see recall_answers)."""
        if not self._recalled:
            recalled = self.recall_answers(self.pending_source())
            if self._recalled:
                log.info("remembered %d recent answers for repeated trade_ids", recalled)

    def recall_answers(self, pending: Sequence[JournalRecord] = ()) -> int:
        """Reload the duplicate-trade_id memory after a restart: the most recent stored
        answers, then journaled ones not yet in the database. Returns how many."""
        rows: list[dict[str, Any]] = []
        # database down: the journal still counts, and the model watcher tries again
        with contextlib.suppress(DatabaseError), self._conn() as conn:
            rows = predictions_db.recent_answers(conn, limit=MAX_REMEMBERED)
            self._recalled = True
        for r in reversed(rows):  # oldest first: the first answer per trade_id is kept
            self.remember(r["trade_id"], answer(
                prediction_id=r["id"], trade_id=r["trade_id"], probability=r["probability"],
                decision=r["decision"], threshold=r["threshold"],
                model={"id": r["model_id"], "name": r["name"], "version": r["version"]},
                feature_set_version=r["feature_set_version"],
                contributions=r["contributions"]))
        model = self.predictor.current
        recalled = len(rows)
        for record in pending:
            p = record.prediction
            if not p or model is None or p["model_id"] != model.id:
                continue  # another model's answer: it reaches the database shortly
            self.remember(p["trade_id"], answer(
                prediction_id=p["id"], trade_id=p["trade_id"], probability=p["probability"],
                decision=p["decision"], threshold=p["threshold"], model=model.ref,
                feature_set_version=model.feature_set_version,
                contributions=p.get("contributions")))
            recalled += 1
        return recalled

    def enrich_contributions(self, records: list[JournalRecord]) -> None:
        """Writer hook: top contributions for stored predictions, computed in batches off
        the request path (only for rows of the model still loaded)."""
        model = self.predictor.current
        if model is not None:
            add_contributions(records, model, self.settings.top_contributions)

    # ---- model lifecycle ---------------------------------------------------------------
    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        if self.pool is None:
            raise RuntimeError("MLSystem has no connection pool")
        with translate(), self.pool.connection() as conn:  # PoolTimeout -> DatabaseUnavailable
            yield conn

    def load_active(self) -> LoadedModel | None:
        """Load the active model of ``settings.model_name`` if it is not the one served.

        Serialised: the watcher, an activation and a finished training job may all call it;
        one at a time, none can swap an older model back in."""
        with self._load_lock:
            return self._load_active()

    def _load_active(self) -> LoadedModel | None:
        with self._conn() as conn:
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
        return model

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
        with self._conn() as conn:
            problem = self.incompatibility(models_db.get(conn, model_id=model_id))
            if problem is not None:
                raise Conflict(f"model {model_id} cannot be served: {problem}")
            row = models_db.activate(conn, model_id=model_id, activated_by=activated_by)
        if row.name == self.settings.model_name:
            self.load_active()
        return row

    def start_watching(self, db_url: str) -> None:
        """Hot-swap on activation: LISTEN for NOTIFY, with polling as the fallback."""
        self._watcher = threading.Thread(target=self._watch, args=(db_url,), daemon=True,
                                         name="model-watcher")
        self._watcher.start()

    def stop_watching(self) -> None:
        self._watch_stop.set()

    def _watch(self, db_url: str) -> None:
        poll = self.settings.model_poll_seconds
        while not self._watch_stop.is_set():
            try:
                with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {ACTIVATION_CHANNEL}")
                    while not self._watch_stop.is_set():
                        for _ in conn.notifies(timeout=poll, stop_after=1):
                            break
                        self.load_active()
                        self.ensure_recalled()
            except Exception as exc:  # keep watching through outages
                log.debug("model watcher: %s", exc)
                self._watch_stop.wait(poll)
                # LISTEN itself may be refused (e.g. a transaction pooler): poll instead.
                with contextlib.suppress(Exception):
                    self.load_active()
                    self.ensure_recalled()

    # ---- training ----------------------------------------------------------------------
    def dataset_from_candles(self, candles: Candles, *, strategies: Sequence[str] | None = None,
                             symbol: str = "", timeframe: str = "") -> Dataset:
        # the barrier of the settings (TML_BARRIER_*), its horizon in bars of `timeframe`
        kwargs: dict[str, Any] = {"extractor": self.extractor, "symbol": symbol,
                                  "timeframe": timeframe,
                                  "barrier": Barrier.from_values(defaults=self.settings)}
        if strategies:
            kwargs["strategies"] = list(strategies)
        return build_dataset(candles, **kwargs)

    def dataset_from_database(self, *, symbol: str | None = None,
                              timeframe: str | None = None) -> Dataset | None:
        with self._conn() as conn:
            rows = trade_features.labeled(conn, feature_set_version=FEATURE_SET_VERSION,
                                          symbol=symbol, timeframe=timeframe)
        if not rows:
            return None
        return dataset_from_outcomes(rows, extractor=self.extractor)

    def train(
        self,
        data: Dataset,
        *,
        algorithm: str = "xgboost",
        trials: int | None = None,
        seed: int | None = None,
        name: str | None = None,
        promote: bool = True,
        show_progress: bool = False,
        notes: str | None = None,
        progress: Progress | None = None,
    ) -> TrainOutcome:
        """Tune and fit on all but the most recent window, register as candidate, and promote
        only if it beats the active model on that held-out window."""
        report = progress or (lambda _f, _m: None)
        started = time.perf_counter()
        name = name or self.settings.model_name
        train_idx, hold_idx = holdout_split(data.t0, data.t1, fraction=0.2)
        X_train, X_hold = data.X.iloc[train_idx], data.X.iloc[hold_idx]
        y_train, y_hold = data.y[train_idx], data.y[hold_idx]
        report(0.05, f"tuning {algorithm} on {len(train_idx)} rows")
        with on_cluster(self.settings.dask_scheduler):  # unset: boosters fit in process
            trainer = ModelTrainer(
                algorithm=algorithm,
                n_trials=trials if trials is not None else self.settings.train_trials,
                timeout=self.settings.train_timeout_seconds,
                seed=seed if seed is not None else self.settings.train_seed,
                threshold=self.settings.decision_threshold,
                storage=(self.settings.optuna_storage.get_secret_value()
                         if self.settings.optuna_storage else None),
                study_name=self.settings.optuna_study,
                show_progress=show_progress,
            ).fit(X_train, y_train, data.t0[train_idx], data.t1[train_idx])
        report(0.85, "evaluating on the held-out window")
        holdout = self._holdout_report(trainer, X_hold, y_hold, y_train)
        with self._conn() as conn:
            row = registry.register(conn, trainer, name=name,
                                    feature_set_version=FEATURE_SET_VERSION, notes=notes)
            with translate(), conn.transaction():
                conn.execute(
                    "UPDATE public.ml_models SET metrics = metrics || %s::jsonb WHERE id = %s",
                    (psycopg.types.json.Jsonb({"holdout": holdout, "barrier": data.barrier}),
                     row.id))
            reason = "registered as candidate"
            promoted = False
            if promote:
                result = registry.promote_if_better(
                    conn, candidate=row, X_holdout=X_hold, y_holdout=y_hold,
                    holdout_start=_utc(data.t0[hold_idx].min()) if len(hold_idx) else None)
                promoted, reason = result.promoted, result.reason
        if promoted and name == self.settings.model_name:
            self.load_active()
        report(1.0, "done")
        return TrainOutcome(model_id=row.id, name=row.name, version=row.version,
                            promoted=promoted, reason=reason, metrics=trainer.cv_report_,
                            holdout=holdout, n_samples=len(train_idx),
                            seconds=time.perf_counter() - started)

    def _holdout_report(self, trainer: ModelTrainer, X_hold: Any, y_hold: np.ndarray,
                        y_train: np.ndarray) -> dict[str, Any]:
        """Out-of-sample figures on the held-out window, beside always-take."""
        if len(y_hold) == 0:
            return {}
        prob = predict_booster(trainer.booster_, X_hold.to_numpy(dtype=np.float64))
        t = self.settings.decision_threshold
        base = float(np.mean(y_train))
        return {
            "model": classification_metrics(y_hold, np.asarray(prob), threshold=t),
            "always_take": classification_metrics(y_hold, np.full(len(y_hold), base),
                                                  threshold=t,
                                                  taken=np.ones(len(y_hold), dtype=bool)),
        }

    # ---- tracking ----------------------------------------------------------------------
    def track(self, *, days: int = 30) -> int:
        with self._conn() as conn:
            return performance_tracker.track(conn, days=days)


def _utc(value: np.datetime64) -> datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()


def concat_datasets(parts: Sequence[Dataset | None]) -> Dataset:
    present = [p for p in parts if p is not None and len(p.y)]
    if not present:
        raise ValueError("no labelled data: give candles or record exits first")
    return present[0] if len(present) == 1 else Dataset.concat(present)


def database_reachable(pool: ConnectionPool) -> bool:
    try:
        with pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except (DatabaseError, psycopg.Error, Exception):
        return False
