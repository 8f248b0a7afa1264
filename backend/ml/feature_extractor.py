"""Features for meta-labelling: market state at a bar plus the context of one trade signal.

Two paths give the same numbers by construction: every market row, in training (batch) and in
serving (single signal), is computed by the same function from the same trailing ``window``
candles (:mod:`backend.ml.market_features`); the context of a signal by one function too
(:mod:`backend.ml.signal_context`). This module is the transformer that joins them.

Definitions of every feature are in :data:`FEATURE_DEFINITIONS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from backend.ml.candles import CandleError, Candles
from backend.ml.market_features import (
    MARKET_DEFINITIONS,
    MARKET_FEATURES,
    MIN_CANDLES,
    market_rows,
    use_native_features,
)
from backend.ml.signal_context import (
    CONTEXT_DEFINITIONS,
    CONTEXT_FEATURES,
    SignalError,
    context_row,
    optional_price,
    side_sign,
    strategy_index,
)

# The public API of the feature set; the rest lives in market_features and signal_context.
__all__ = ["FEATURE_DEFINITIONS", "FEATURE_SET_VERSION", "FeatureExtractor", "named_features",
           "side_sign", "use_native_features"]

FEATURE_SET_VERSION = "fs1"

FEATURE_DEFINITIONS: dict[str, str] = {**MARKET_DEFINITIONS, **CONTEXT_DEFINITIONS}

_N_MARKET = len(MARKET_FEATURES)
_N_CONTEXT = len(CONTEXT_FEATURES)


def named_features(names: Sequence[str], vector: np.ndarray) -> dict[str, float | None]:
    """``{feature name: value}`` with NaN as None (JSON has no NaN), for storage."""
    if vector.shape != (len(names),):
        raise ValueError(f"vector: expected shape ({len(names)},), got {vector.shape}")
    return {k: (None if math.isnan(x) else x) for k, x in zip(names, vector.tolist(),
                                                                strict=True)}


class FeatureExtractor:
    """Market and trade-context features for meta-labelling (a pure transformer: no I/O).

    Parameters
    ----------
    window : int, default 100
        Number of trailing candles every market row is computed from, in training and in
        serving alike. Must be >= ``min_candles``. Serving with fewer than ``window``
        candles is allowed (down to ``min_candles``) but the recursive indicators then see
        less history than in training; send ``window`` candles for identical numbers.

    Notes
    -----
    ``transform`` -> DataFrame (n_candles, n_market_features); ``market_row`` -> ndarray
    (n_market_features,); ``signal_vector`` -> ndarray (n_features,); ``signal_matrix`` ->
    DataFrame (n_signals, n_features). Feature order is ``feature_names``.
    """

    def __init__(self, window: int = 100) -> None:
        self.window = window

    # -- names -------------------------------------------------------------------------------
    @property
    def market_feature_names(self) -> list[str]:
        return list(MARKET_FEATURES)

    @property
    def feature_names(self) -> list[str]:
        return [*MARKET_FEATURES, *CONTEXT_FEATURES]

    @property
    def min_candles(self) -> int:
        """Warm-up: the smallest number of candles with no NaN in the market features."""
        return MIN_CANDLES

    @property
    def feature_set_version(self) -> str:
        return FEATURE_SET_VERSION

    def _checked_window(self) -> int:
        w = self.window
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < MIN_CANDLES:
            raise ValueError(f"window: must be an integer >= {MIN_CANDLES}, got {w!r}")
        return int(w)

    # -- single signal (serving) -------------------------------------------------------------
    def market_row(self, candles: Candles) -> np.ndarray:
        """Market features of the last candle from the last ``window`` candles.

        Returns
        -------
        ndarray of float64, shape (n_market_features,)

        Raises
        ------
        CandleError
            Fewer than ``min_candles`` candles.
        """
        out = np.empty(_N_MARKET)
        self._last_market_row(candles, out)
        return out

    def _last_market_row(self, candles: Candles, out: np.ndarray) -> None:
        w = self._checked_window()
        n = len(candles)
        if n < MIN_CANDLES:
            raise CandleError("candles", f"need at least {MIN_CANDLES} candles for the "
                                         f"features (indicator warm-up), got {n}")
        market_rows(candles, n - 1, n, w, out)

    def signal_vector(self, candles: Candles, *, side: str | int, strategy: str | None,
                      signal_strength: float | None = None, stop_price: float | None = None,
                      target_price: float | None = None) -> np.ndarray:
        """Full feature vector of one signal at the last candle.

        Returns
        -------
        ndarray of float64, shape (n_features,), in ``feature_names`` order.

        Raises
        ------
        CandleError
            Too few candles.
        SignalError
            Bad side, or a stop/target price that is not a finite positive number.
        """
        side_v = side_sign(side)
        stop = optional_price(stop_price, "stop_price")
        target = optional_price(target_price, "target_price")
        strength = math.nan if signal_strength is None else float(signal_strength)
        out = np.empty(_N_MARKET + _N_CONTEXT)
        market = out[:_N_MARKET]
        self._last_market_row(candles, market)
        out[_N_MARKET:] = context_row(market.tolist(), float(candles.close[-1]), side_v,
                                      strategy_index(strategy), strength, stop, target)
        return out

    def as_dict(self, vector: np.ndarray) -> dict[str, float | None]:
        """``{feature name: value}`` with NaN as None (JSON has no NaN), for storage."""
        return named_features(self.feature_names, vector)

    # -- batch (training) --------------------------------------------------------------------
    def transform(self, candles: Candles) -> pd.DataFrame:
        """Market features for every candle, each from its trailing ``window`` candles.

        Returns
        -------
        DataFrame, shape (n_candles, n_market_features), indexed by UTC bar time. The first
        ``min_candles - 1`` rows (warm-up) are NaN.
        """
        w = self._checked_window()
        n = len(candles)
        values = np.full((n, _N_MARKET), np.nan)
        if n >= MIN_CANDLES:
            market_rows(candles, MIN_CANDLES - 1, n, w, values[MIN_CANDLES - 1:])
        index = pd.DatetimeIndex(pd.to_datetime(candles.time, unit="s", utc=True), name="time")
        return pd.DataFrame(values, index=index, columns=list(MARKET_FEATURES))

    def signal_matrix(self, market: pd.DataFrame, candles: Candles,
                      signals: pd.DataFrame) -> pd.DataFrame:
        """Feature rows of many signals: the market row at each signal plus its context.

        Parameters
        ----------
        market : DataFrame (n_candles, n_market_features) from :meth:`transform` of `candles`.
        candles : Candles
        signals : DataFrame (n_signals, ...)
            Columns ``pos`` (bar index of the signal), ``side`` ('long'/'short' or +1/-1),
            ``strategy``; optional ``signal_strength``, ``stop_price``, ``target_price``
            (missing column or NaN -> NaN feature).

        Returns
        -------
        DataFrame (n_signals, n_features), columns exactly ``feature_names``, index of
        `signals`.
        """
        if list(market.columns) != list(MARKET_FEATURES) or len(market) != len(candles):
            raise ValueError("market: must be transform(candles) of the same candles")
        missing = [c for c in ("pos", "side", "strategy") if c not in signals.columns]
        if missing:
            raise SignalError("signals", f"missing column(s): {', '.join(missing)}")
        pos = signals["pos"].to_numpy(dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(candles)):
            raise SignalError("signals.pos", f"must be in [0, {len(candles) - 1}]")
        side = np.array([side_sign(s, "signals.side") for s in signals["side"]], dtype=float)
        strategy_idx = np.array([strategy_index(s) for s in signals["strategy"]], dtype=int)

        def optional(column: str) -> np.ndarray:
            if column not in signals.columns:
                return np.full(len(signals), np.nan)
            return pd.to_numeric(signals[column]).to_numpy(dtype=float, na_value=np.nan)

        for column in ("stop_price", "target_price"):
            prices = optional(column)
            bad = ~np.isnan(prices) & ~(np.isfinite(prices) & (prices > 0))
            if bad.any():
                raise SignalError(f"signals.{column}", "must be a finite price > 0")
        signal_rows = market.to_numpy(dtype=float)[pos]
        context = np.array([context_row(*args) for args in zip(
            signal_rows.tolist(), candles.close[pos].tolist(), side.tolist(),
            strategy_idx.tolist(), optional("signal_strength").tolist(),
            optional("stop_price").tolist(), optional("target_price").tolist(), strict=True)],
            dtype=float).reshape(len(pos), _N_CONTEXT)
        return pd.DataFrame(np.hstack((signal_rows, context)), index=signals.index,
                            columns=self.feature_names)

    def rows_from_mappings(self, features: list[Mapping[str, Any]]) -> pd.DataFrame:
        """DataFrame (n, n_features) from stored feature dicts; a missing key or None -> NaN."""
        names = self.feature_names
        values = np.array([[_as_float(f.get(name)) for name in names] for f in features],
                          dtype=float).reshape(len(features), len(names))
        return pd.DataFrame(values, columns=names)


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)
