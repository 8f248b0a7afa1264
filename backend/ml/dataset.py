"""Training datasets: bootstrap signals labelled from candles, and reported trade outcomes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import pandas as pd

from backend.ml.barrier_spec import Barrier, merge_records
from backend.ml.candle_files import CandleFile, load_candle_file
from backend.ml.candles import Candles
from backend.ml.feature_extractor import FeatureExtractor, side_sign
from backend.ml.labeling import (
    STRATEGIES,
    TradeOutcome,
    labelled_outcomes,
    labels_from_outcomes,
    triple_barrier,
)
from backend.positions.barriers import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_MAX_BARS,
    DEFAULT_SL_ATR,
    DEFAULT_TP_ATR,
)


@dataclass
class Dataset:
    """Labelled signals in time order (rows sorted by ``t0``).

    Attributes
    ----------
    X : DataFrame (n, n_features), columns ``FeatureExtractor.feature_names``.
    y : ndarray of int64, shape (n,), 1 when the trade paid.
    t0 : ndarray of datetime64[ns], shape (n,), signal times (UTC).
    t1 : ndarray of datetime64[ns], shape (n,), label window ends (UTC), >= t0.
    returns : ndarray of float64, shape (n,), side-signed trade returns (NaN when unknown).
    meta : DataFrame (n, ...), at least ``strategy``, ``side`` (+1/-1), ``symbol``,
        ``timeframe``, ``source`` ('candles' or 'outcome').
    barrier : dict or None, the triple barrier of the candle labels
        (:meth:`backend.ml.barrier_spec.Barrier.record`); None for outcomes only.
    """

    X: pd.DataFrame
    y: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    returns: np.ndarray
    meta: pd.DataFrame
    barrier: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        n = len(self.X)
        self.X = self.X.reset_index(drop=True)
        self.meta = self.meta.reset_index(drop=True)
        self.y = np.asarray(self.y, dtype=np.int64)
        self.t0 = np.asarray(self.t0, dtype="datetime64[ns]")
        self.t1 = np.asarray(self.t1, dtype="datetime64[ns]")
        self.returns = np.asarray(self.returns, dtype=np.float64)
        for name in ("y", "t0", "t1", "returns", "meta"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} rows (as X), got "
                                 f"{len(getattr(self, name))}")
        if not np.isin(self.y, (0, 1)).all():
            raise ValueError("y: labels must be 0 or 1")
        if (self.t1 < self.t0).any():
            raise ValueError("t1: a label window ends before its signal time")

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, idx: np.ndarray | Sequence[int]) -> Dataset:
        """Rows at positions `idx` (e.g. a CV fold), in the given order."""
        idx = np.asarray(idx, dtype=np.int64)
        return Dataset(self.X.iloc[idx], self.y[idx], self.t0[idx], self.t1[idx],
                       self.returns[idx], self.meta.iloc[idx], self.barrier)

    @classmethod
    def concat(cls, parts: Sequence[Dataset]) -> Dataset:
        """One dataset from several (e.g. bootstrap + real outcomes, or several candle
        files), re-sorted by ``t0``; ties keep the order of `parts`. Candle parts must share
        one barrier setting."""
        if not parts:
            raise ValueError("parts: need at least one dataset")
        columns = list(parts[0].X.columns)
        for p in parts[1:]:
            if list(p.X.columns) != columns:
                raise ValueError("parts: datasets have different feature columns")
        merged = cls(
            pd.concat([p.X for p in parts], ignore_index=True),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.t0 for p in parts]),
            np.concatenate([p.t1 for p in parts]),
            np.concatenate([p.returns for p in parts]),
            pd.concat([p.meta for p in parts], ignore_index=True),
            merge_records(p.barrier for p in parts),
        )
        return merged.subset(np.argsort(merged.t0, kind="stable"))


def build_dataset(candles: Candles, *, strategies: Sequence[str] | None = None,
                  extractor: FeatureExtractor | None = None,
                  tp_atr: float = DEFAULT_TP_ATR, sl_atr: float = DEFAULT_SL_ATR,
                  max_bars: int = DEFAULT_MAX_BARS, atr_period: int = DEFAULT_ATR_PERIOD,
                  symbol: str = "", timeframe: str = "",
                  strategy_params: Mapping[str, Mapping[str, Any]] | None = None,
                  barrier: Barrier | None = None) -> Dataset:
    """Bootstrap dataset: run base strategies over `candles`, label by triple barrier.

    Signals whose features see fewer than ``extractor.window`` candles are dropped: that is
    the indicator warm-up, where recursive indicators are computed differently from every
    later row (and from serving with a full window). Signals whose label window runs past
    the data end are dropped by :func:`~backend.ml.labeling.triple_barrier`. The stop and
    target context features are left missing (NaN): see the comment in the body.

    `barrier` (take-profit, stop, horizon in bars or as a duration turned into bars of
    `timeframe`) replaces `tp_atr`, `sl_atr`, `max_bars` and `atr_period` when given; the
    barrier used is recorded in ``Dataset.barrier``.

    Returns
    -------
    Dataset sorted by ``t0`` (ties: in `strategies` order); ``meta`` has strategy, side,
    symbol, timeframe, source, pos, exit_reason.
    """
    names = list(STRATEGIES) if strategies is None else list(strategies)
    if not names:
        raise ValueError("strategies: need at least one base strategy")
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"strategies: unknown {unknown}; known: {list(STRATEGIES)}")
    if barrier is None:
        barrier = Barrier(tp_atr=tp_atr, sl_atr=sl_atr, horizon=max_bars, atr_period=atr_period)
    tp_atr, sl_atr, atr_period = barrier.tp_atr, barrier.sl_atr, barrier.atr_period
    max_bars = barrier.bars(timeframe or None)
    extractor = extractor or FeatureExtractor()
    params = strategy_params or {}
    labelled = []
    for name in names:
        signals = STRATEGIES[name](candles, **params.get(name, {}))
        signals = signals[signals["pos"] >= extractor.window - 1]
        labelled.append(triple_barrier(candles, signals, tp_atr=tp_atr, sl_atr=sl_atr,
                                       max_bars=max_bars, atr_period=atr_period))
    rows = pd.concat(labelled, ignore_index=True)
    rows = rows.sort_values("pos", kind="stable").reset_index(drop=True)
    market = extractor.transform(candles)
    # The barrier stop/target are fixed ATR multiples here, so their distances in ATR would
    # be constants plus ATR-definition noise that trees split on. Left missing, the stop,
    # target and reward/risk features stay inert until real outcomes (where the bot sends
    # its own stops and targets) teach them.
    X = extractor.signal_matrix(market, candles,
                                rows.assign(stop_price=np.nan, target_price=np.nan))
    seconds = candles.time[rows["pos"].to_numpy(dtype=np.int64)]
    meta = pd.DataFrame({
        "strategy": rows["strategy"].astype(str),
        "side": rows["side"].to_numpy(dtype=np.int8),
        "symbol": symbol,
        "timeframe": timeframe,
        "source": "candles",
        "pos": rows["pos"].to_numpy(dtype=np.int64),
        "exit_reason": rows["exit_reason"].astype(str),
    })
    return Dataset(X, rows["label"].to_numpy(), seconds.astype("datetime64[s]"),
                   rows["exit_time"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]"),
                   rows["return"].to_numpy(dtype=float), meta, barrier.record([timeframe]))


def _build_file(f: CandleFile, strategies: Sequence[str] | None, barrier: Barrier,
                window: int) -> Dataset:
    """One file's dataset (run in a worker process: module-level, arguments picklable)."""
    return build_dataset(load_candle_file(f), strategies=strategies,
                         extractor=FeatureExtractor(window=window), symbol=f.symbol,
                         timeframe=f.timeframe, barrier=barrier)


def build_pooled_dataset(files: Sequence[CandleFile], *,
                         strategies: Sequence[str] | None = None,
                         barrier: Barrier | None = None, workers: int | None = None,
                         extractor: FeatureExtractor | None = None) -> Dataset:
    """One dataset from several candle files: each labelled with the same barrier (horizon
    in bars of its own timeframe), then pooled and sorted by ``t0``.

    The features stay symbol-agnostic (returns, ratios to ATR, bounded oscillators);
    ``meta`` keeps each row's symbol and timeframe, ``t0``/``t1`` its signal time and label
    end. Files are built in `workers` processes (None: one per CPU, at most one per file;
    1: in this process). The result does not depend on `workers`: the files are pooled in
    the order given, and rows with equal ``t0`` keep that order.
    """
    if not files:
        raise ValueError("files: need at least one candle file")
    barrier = barrier or Barrier()
    window = (extractor or FeatureExtractor()).window
    n = min(len(files), workers if workers is not None else os.cpu_count() or 1)
    if n < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    args = [(f, strategies, barrier, window) for f in files]
    if n == 1:
        parts = [_build_file(*a) for a in args]
    else:
        # spawn, not fork: the server process has threads (writer, watcher, jobs)
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_build_file, *zip(*args, strict=True)))  # input order
    return parts[0] if len(parts) == 1 else Dataset.concat(parts)


def dataset_from_outcomes(rows: Iterable[TradeOutcome], *,
                          extractor: FeatureExtractor | None = None) -> Dataset:
    """Dataset from reported outcomes (``ml_trade_features`` rows), sorted by ``t0``.

    Unlabelled rows and rows of another feature-set version are left out, as in
    :func:`~backend.ml.labeling.labels_from_outcomes`.
    """
    extractor = extractor or FeatureExtractor()
    kept = labelled_outcomes(rows, feature_set_version=extractor.feature_set_version)
    X, y, t0, t1 = labels_from_outcomes(kept, extractor=extractor)
    meta = pd.DataFrame({
        "strategy": [str(r.strategy) for r in kept],
        "side": np.array([side_sign(r.side) for r in kept], dtype=np.int8),
        "symbol": [str(r.symbol) for r in kept],
        "timeframe": [str(getattr(r, "timeframe", "")) for r in kept],
        "source": "outcome",
        "trade_id": [str(getattr(r, "trade_id", "")) for r in kept],
    })
    returns = np.array([np.nan if r.realized_return is None else r.realized_return
                        for r in kept], dtype=float)
    data = Dataset(X, y, t0, t1, returns, meta)
    return data.subset(np.argsort(data.t0, kind="stable"))
