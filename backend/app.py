"""FastAPI app factory and lifespan: pool, migration, model, writer, watcher, tracker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from backend import __version__
from backend.api import fast_path
from backend.api.answers import AnswerCache
from backend.api.auth import load_api_keys
from backend.api.errors import install_error_handlers
from backend.api.metrics import create_metrics
from backend.api.middleware import BodySizeLimit, RequestMetrics
from backend.api.openapi_body import install_body_schemas
from backend.api.predictions import Predictions
from backend.api.routes import (
    api_docs,
    dashboard,
    exits,
    health,
    jobs,
    models,
    performance,
    predict,
    retrains,
)
from backend.config import Settings, get_settings
from backend.db.errors import DatabaseError, DatabaseUnavailable
from backend.db.pool import connect_kwargs, create_pool, database_url
from backend.db.readiness import DatabaseMonitor
from backend.db.write_behind import ThreadWriteBehind, WriteBehind
from backend.db.writer_messages import WriterConfig
from backend.db.writer_process import ProcessWriteBehind
from backend.jobs import JobManager
from backend.ml.feature_extractor import use_native_features
from backend.ml.ml_system import MLSystem
from backend.ml.model_watcher import ModelWatcher
from backend.ml.registry import ModelIntegrityError
from backend.ml.retrain_policy import Retrainer
from backend.redact import install as install_redaction

log = logging.getLogger("backend")


def _database_back(app: FastAPI, pool: ConnectionPool) -> None:
    """The readiness probe saw the database return: sweep the pool's dead connections, and
    let the model watcher reload the model and recall stored answers at once."""
    pool.check()
    if (watcher := getattr(app.state, "watcher", None)) is not None:
        watcher.wake()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # however the app is started (python -m backend, uvicorn --factory, a test client)
    install_redaction(*(secret.get_secret_value() if secret else None
                        for secret in (settings.database_url, settings.optuna_storage)))
    app = FastAPI(
        title="Trading-ML backend",
        version=__version__,
        summary="Meta-labelling predictions, exit advice and model lifecycle for trading bots.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served offline by routes/api_docs.py
    )
    app.state.settings = settings
    app.state.metrics = create_metrics()
    # retrains before models: its /retrains must not reach models' /{model_id}
    for module in (health, predict, exits, retrains, models, jobs, performance, dashboard,
                   api_docs):
        app.include_router(module.router)
    app.include_router(dashboard.page)
    install_error_handlers(app)
    install_body_schemas(app)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.fast_path:
        fast_path.install(app)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from backend.apply_ml_migration import apply_migration
    from backend.bootstrap import announce, bootstrap_model

    s: Settings = app.state.settings
    s.data_dir.mkdir(parents=True, exist_ok=True)
    url = await asyncio.to_thread(database_url, s)
    if s.auto_migrate:
        try:
            result = await asyncio.to_thread(apply_migration, url)
            log.info("migration: %s", result.message)
        except DatabaseError as exc:  # start degraded; predictions need no database
            log.error("migration not applied: %s", exc)
    # the compiled market features: built (or found in the cache) and verified now, not on
    # the first request; the Python reference serves if that fails
    await asyncio.to_thread(use_native_features, cache_dir=s.model_cache_dir)
    pool = create_pool(url, s)
    pool.open(wait=False)
    # /ready reads this thread's last probe instead of querying (routes/health.py); when
    # the database is back, the pool's dead connections are swept out at once
    monitor = DatabaseMonitor(url, connect_kwargs=connect_kwargs(s),
                              on_recovered=lambda: _database_back(app, pool))
    await asyncio.to_thread(monitor.probe)  # the first answer is already the truth
    monitor.start()
    app.state.db_monitor = monitor
    system = MLSystem(s, pool)
    app.state.pool, app.state.system = pool, system
    app.state.api_keys = load_api_keys(s)
    app.state.jobs = JobManager()
    app.state.retrainer = Retrainer(system, app.state.jobs)  # TML_RETRAIN_*; unset: off
    writer = _writer(s, url, pool, system)
    writer.start()
    app.state.writer = writer
    try:
        await asyncio.to_thread(system.load_active)
        if system.predictor.current is None and s.bootstrap_on_start:
            await asyncio.to_thread(bootstrap_model, system)
    except DatabaseUnavailable as exc:  # serve the last active model's verified copy
        if await asyncio.to_thread(system.load_local_copy) is None:
            log.error("no model loaded yet (%s); the watcher retries", exc)
    except (DatabaseError, ModelIntegrityError) as exc:
        log.error("no model loaded yet (%s); the watcher retries", exc)
    except BaseException:  # start-up failed: leave nothing half-open behind
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(monitor.stop)
        pool.close()
        raise
    answers = AnswerCache(connect=system.connection, pending=writer.pending_records,
                          current_model=lambda: system.predictor.current)
    app.state.predictions = Predictions(system, writer, answers, app.state.metrics)
    await asyncio.to_thread(answers.ensure_recalled)  # or later, once the database answers

    def refresh() -> None:
        system.load_active()
        answers.ensure_recalled()

    watcher = ModelWatcher(url, poll_seconds=s.model_poll_seconds, refresh=refresh)
    watcher.start()
    app.state.watcher, app.state.answers = watcher, answers
    tracker = asyncio.create_task(_track_periodically(system, s.tracker_interval_seconds))
    announce(s, app.state.api_keys, system)
    # Start-up objects (modules, models, TA-Lib state) never die: move them out of the
    # collector's generations so full collections stay short on the request path.
    gc.collect()
    gc.freeze()
    # A request allocates a few hundred short-lived containers; a larger young generation
    # means fewer collections per request without letting garbage pile up.
    gc.set_threshold(20_000, 20, 20)
    try:
        yield
    finally:
        tracker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tracker
        app.state.jobs.shutdown()
        watcher.stop()
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(monitor.stop)
        pool.close()


def _writer(s: Settings, url: str, pool: ConnectionPool, system: MLSystem) -> WriteBehind:
    if not s.writer_process:
        return ThreadWriteBehind(pool, s.journal_dir, batch_size=s.writer_batch_size,
                                 flush_seconds=s.writer_flush_seconds,
                                 retry_seconds=s.writer_retry_seconds,
                                 enrich=system.enrich_contributions,
                                 fsync=s.journal_fsync, fsync_ms=s.journal_fsync_ms)
    config = WriterConfig(db_url=url, journal_dir=str(s.journal_dir),
                          batch_size=s.writer_batch_size, retry_seconds=s.writer_retry_seconds,
                          top_contributions=s.top_contributions,
                          connect_kwargs=connect_kwargs(s), pool_timeout=s.db_connect_timeout,
                          log_level=s.log_level, journal_fsync=s.journal_fsync,
                          journal_fsync_ms=s.journal_fsync_ms)
    return ProcessWriteBehind(config, flush_seconds=s.writer_flush_seconds)


async def _track_periodically(system: MLSystem, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(system.track)
        except Exception as exc:  # the tracker must never take the service down
            log.warning("performance tracker: %s", exc)
