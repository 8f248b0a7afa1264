"""Training datasets: bootstrap signals labelled from candles, and reported trade outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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
        ``source`` ('candles' or 'outcome').
    """

    X: pd.DataFrame
    y: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    returns: np.ndarray
    meta: pd.DataFrame

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
                       self.returns[idx], self.meta.iloc[idx])

    @classmethod
    def concat(cls, parts: Sequence[Dataset]) -> Dataset:
        """One dataset from several (e.g. bootstrap + real outcomes), re-sorted by ``t0``."""
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
        )
        return merged.subset(np.argsort(merged.t0, kind="stable"))


def build_dataset(candles: Candles, *, strategies: Sequence[str] | None = None,
                  extractor: FeatureExtractor | None = None,
                  tp_atr: float = DEFAULT_TP_ATR, sl_atr: float = DEFAULT_SL_ATR,
                  max_bars: int = DEFAULT_MAX_BARS, atr_period: int = DEFAULT_ATR_PERIOD,
                  symbol: str = "", timeframe: str = "",
                  strategy_params: Mapping[str, Mapping[str, Any]] | None = None) -> Dataset:
    """Bootstrap dataset: run base strategies over `candles`, label by triple barrier.

    Signals whose features see fewer than ``extractor.window`` candles are dropped: that is
    the indicator warm-up, where recursive indicators are computed differently from every
    later row (and from serving with a full window). Signals whose label window runs past
    the data end are dropped by :func:`~backend.ml.labeling.triple_barrier`. The stop and
    target context features are left missing (NaN): see the comment in the body.

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
                   rows["return"].to_numpy(dtype=float), meta)


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
