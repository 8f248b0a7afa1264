"""Boosters trained on a Dask cluster (``TML_DASK_SCHEDULER``): xgboost.dask, lightgbm.dask.

``with on_cluster(address):`` makes every :func:`backend.ml.boosters.train_booster` in the
process fit on that cluster; the Optuna study (and its shared storage) stays in this
process, which only hands each fit to the cluster. Without an address nothing changes.
Dask is imported only here and only when an address is given, so serving never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from backend.ml import boosters, native_libs


@contextmanager
def on_cluster(address: str | Any | None) -> Iterator[Any]:
    """Train boosters on the Dask scheduler at `address` (or a ``distributed.Client``)
    inside the block; None: a no-op. Yields the client (or None)."""
    if address is None or address == "":
        yield None
        return
    from distributed import Client

    own = not isinstance(address, Client)
    client = Client(address, set_as_default=False) if own else address
    previous = boosters.set_cluster(client)
    try:
        yield client
    finally:
        boosters.set_cluster(previous)
        if own:
            client.close()


def _partitions(client: Any, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    """X and y as dask arrays, one row block per worker (at least 1)."""
    import dask.array as da

    workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    rows = max(1, -(-len(y) // workers))
    return (da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows))


def train_on_cluster(client: Any, algorithm: str, params: dict[str, Any], X: np.ndarray,
                     y: np.ndarray, feature_names: list[str],
                     weight: np.ndarray | None = None) -> boosters.Booster:
    """The booster :func:`backend.ml.boosters.train_booster` would fit, fitted on the
    cluster (data-parallel over the workers); returned as a local booster."""
    # the client is not the process default (set_as_default=False), but the libraries
    # look one up while building and persisting the partitions
    with client.as_current():
        return _train(client, algorithm, params, X, y, feature_names, weight)


def _train(client: Any, algorithm: str, params: dict[str, Any], X: np.ndarray,
           y: np.ndarray, feature_names: list[str],
           weight: np.ndarray | None) -> boosters.Booster:
    native = {k: v for k, v in params.items() if k != "n_estimators"}
    rounds = int(params["n_estimators"])
    dX, dy = _partitions(client, np.asarray(X, dtype=np.float64), np.asarray(y))
    dw = None if weight is None else _partitions_like(dy, np.asarray(weight, dtype=np.float64))
    if algorithm == "xgboost":
        import xgboost.dask as dxgb

        data = dxgb.DaskDMatrix(client, dX, dy, weight=dw, feature_names=feature_names)
        booster = dxgb.train(client, native, data, num_boost_round=rounds)["booster"]
        booster.set_param({"nthread": 1})
        return booster
    native_libs.load_lightgbm_wrappers()  # lightgbm.dask's classes are its sklearn wrappers
    import lightgbm.dask as dlgb

    # lightgbm.dask sets the threads per worker itself (and warns about num_threads)
    native.pop("num_threads", None)
    model = dlgb.DaskLGBMClassifier(client=client, n_estimators=rounds, **native)
    model.fit(dX, dy, sample_weight=dw, feature_name=feature_names)
    return model.booster_


def _partitions_like(dy: Any, values: np.ndarray) -> Any:
    """Row weights chunked like the labels."""
    import dask.array as da

    return da.from_array(values, chunks=dy.chunks)
