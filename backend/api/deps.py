"""Injectables as ``Annotated`` aliases; everything lives on ``app.state``.

Non-blocking injectables are ``async def``: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop that cost more CPU than the whole key check on the /predict path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from psycopg_pool import ConnectionPool

from backend.api.auth import API_KEY_HEADER, Scope, authenticate
from backend.api.metrics import Metrics
from backend.api.predictions import Predictions
from backend.config import Settings
from backend.db.errors import translate
from backend.db.write_behind import WriteBehind
from backend.jobs import JobManager
from backend.ml.ml_system import MLSystem
from backend.ml.retrain_policy import Retrainer

api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="API key: scope `bot`, `admin` or `viewer` "
                                          "(read-only)")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    with translate(), request.app.state.pool.connection() as conn:
        yield conn


async def get_system(request: Request) -> MLSystem:
    return request.app.state.system


async def get_writer(request: Request) -> WriteBehind:
    return request.app.state.writer


async def get_predictions(request: Request) -> Predictions:
    return request.app.state.predictions


async def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


async def get_retrainer(request: Request) -> Retrainer:
    return request.app.state.retrainer


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def require_bot(request: Request,
                      key: Annotated[str | None, Security(api_key_header)] = None) -> Scope:
    return authenticate(request.app.state.api_keys, key, "bot", request.method)


async def require_admin(request: Request,
                        key: Annotated[str | None, Security(api_key_header)] = None) -> Scope:
    return authenticate(request.app.state.api_keys, key, "admin")


async def require_viewer(request: Request,
                         key: Annotated[str | None, Security(api_key_header)] = None) -> Scope:
    return authenticate(request.app.state.api_keys, key, "viewer")


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[ConnectionPool, Depends(get_pool)]
ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
SystemDep = Annotated[MLSystem, Depends(get_system)]
WriterDep = Annotated[WriteBehind, Depends(get_writer)]
PredictionsDep = Annotated[Predictions, Depends(get_predictions)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
RetrainerDep = Annotated[Retrainer, Depends(get_retrainer)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BotScope = Annotated[Scope, Depends(require_bot)]
AdminScope = Annotated[Scope, Depends(require_admin)]
ViewerScope = Annotated[Scope, Depends(require_viewer)]
