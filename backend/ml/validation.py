"""Purged walk-forward cross-validation for labels that span time.

A label is known only at the end of its window [t0, t1]. Training on a row whose window
overlaps the test period would train on outcomes that were unknown when the test signals
fired, so such rows are purged. An embargo widens the purged zone by at least the longest
label horizon on both sides of the test window.

Purging and the embargo work on time only, never per symbol: in a dataset pooled from
several symbols and timeframes, a training row of *any* symbol whose label window overlaps
the test window (widened by the embargo) is purged, because markets move together and a
label of one symbol known during the test period leaks into the others. The default
embargo is the longest label horizon of any row (e.g. a daily file's), for all rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

TimeArray = np.ndarray | pd.Series | pd.DatetimeIndex | list[Any]
Embargo = timedelta | np.timedelta64 | pd.Timedelta | None


def _as_times(values: TimeArray, field: str) -> np.ndarray:
    if isinstance(values, pd.Series | pd.DatetimeIndex) or (
            isinstance(values, list) and values and not isinstance(values[0], np.datetime64)):
        index = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_convert(None)
        out = index.to_numpy(dtype="datetime64[ns]")
    else:
        out = np.asarray(values)
        if out.dtype.kind != "M":
            raise ValueError(f"{field}: must be datetimes, got dtype {out.dtype}")
        out = out.astype("datetime64[ns]")
    if np.isnat(out).any():
        raise ValueError(f"{field}: missing times (NaT)")
    return out


def _checked(t0: TimeArray, t1: TimeArray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_times(t0, "t0"), _as_times(t1, "t1")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"t1: expected shape {a.shape} like t0, got {b.shape}")
    if (b < a).any():
        raise ValueError(f"t1: label window ends before its start at row {int(np.argmax(b < a))}")
    return a, b


def resolve_embargo(t0: TimeArray, t1: TimeArray, embargo: Embargo = None) -> np.timedelta64:
    """The embargo to use: the longest label horizon max(t1 - t0) when `embargo` is None.

    Raises
    ------
    ValueError
        `embargo` is shorter than the longest label horizon (it would let a training label
        reach into the test period's neighbourhood).
    """
    a, b = _checked(t0, t1)
    horizon = (b - a).max() if a.size else np.timedelta64(0, "ns")
    if embargo is None:
        return horizon
    value = pd.Timedelta(embargo).to_timedelta64().astype("timedelta64[ns]")
    if value < horizon:
        raise ValueError(f"embargo: {pd.Timedelta(value)} is shorter than the longest label "
                         f"horizon {pd.Timedelta(horizon)}")
    return value


def _purged_train(candidates: np.ndarray, test: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                  embargo: np.timedelta64) -> np.ndarray:
    """Candidates whose [t0, t1] does not overlap [test start - embargo, test end + embargo]."""
    zone_start = t0[test].min() - embargo
    zone_end = t1[test].max() + embargo
    overlaps = (t0[candidates] <= zone_end) & (t1[candidates] >= zone_start)
    return candidates[~overlaps]


class PurgedWalkForward:
    """Expanding-window walk-forward splits with purging and embargo.

    Rows are ordered by ``t0``. The first ``min_train_fraction`` of them only ever train;
    the rest is cut into ``n_splits`` consecutive test folds. Fold k trains on every row
    before its test fold, minus the rows whose label window [t0, t1] overlaps the test
    window [min t0_test, max t1_test] widened by the embargo on both sides. After the test
    window is where the classic embargo lives (it only bites if training rows follow a
    test fold); before it, it keeps a horizon-long gap between the last training label and
    the first test signal, a conservative margin against serial correlation.

    Parameters
    ----------
    n_splits : int, default 5
    embargo : timedelta or None, default None
        None means the longest label horizon max(t1 - t0); a shorter one is refused.
    min_train_fraction : float in (0, 1), default 0.3

    Notes
    -----
    ``split(t0, t1)`` takes two arrays of shape (n,) of datetimes and yields
    ``(train_idx, test_idx)``, int64 positions into them, each in time order.
    """

    def __init__(self, n_splits: int = 5, embargo: Embargo = None,
                 min_train_fraction: float = 0.3) -> None:
        self.n_splits = n_splits
        self.embargo = embargo
        self.min_train_fraction = min_train_fraction

    def get_n_splits(self, *_: Any) -> int:
        return int(self.n_splits)

    def split(self, t0: TimeArray, t1: TimeArray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` for each fold; see the class docstring.

        Raises
        ------
        ValueError
            Bad parameters, too few rows for the folds, or a fold left without training
            rows after purging.
        """
        n_splits = self.n_splits
        if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 1:
            raise ValueError(f"n_splits: must be an integer >= 1, got {n_splits!r}")
        if not 0 < self.min_train_fraction < 1:
            raise ValueError(f"min_train_fraction: must be in (0, 1), got "
                             f"{self.min_train_fraction!r}")
        a, b = _checked(t0, t1)
        embargo = resolve_embargo(a, b, self.embargo)
        order = np.argsort(a, kind="stable")
        n = a.size
        first_test = math.ceil(self.min_train_fraction * n)
        if n - first_test < n_splits:
            raise ValueError(f"t0: {n} rows are too few for {n_splits} test folds after the "
                             f"first {first_test} training rows")
        bounds = np.linspace(first_test, n, n_splits + 1).astype(np.int64)
        for k in range(n_splits):
            test = order[bounds[k]:bounds[k + 1]]
            train = _purged_train(order[:bounds[k]], test, a, b, embargo)
            if train.size == 0:
                raise ValueError(f"embargo: fold {k} has no training rows left after purging "
                                 f"(embargo {pd.Timedelta(embargo)})")
            yield train, test


def holdout_split(t0: TimeArray, t1: TimeArray, fraction: float = 0.2,
                  embargo: Embargo = None) -> tuple[np.ndarray, np.ndarray]:
    """The last `fraction` of rows (by ``t0``) as the test set, the earlier rows purged.

    Used for the promotion comparison: candidate and active model are scored on the same
    held-out window. Purging and embargo work as in :class:`PurgedWalkForward`.

    Returns
    -------
    (train_idx, test_idx) : int64 positions, each in time order.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction: must be in (0, 1), got {fraction!r}")
    a, b = _checked(t0, t1)
    n = a.size
    n_test = math.ceil(fraction * n)
    if n < 2 or n_test >= n:
        raise ValueError(f"t0: {n} rows are too few to hold out {fraction:.0%}")
    value = resolve_embargo(a, b, embargo)
    order = np.argsort(a, kind="stable")
    test = order[n - n_test:]
    train = _purged_train(order[:n - n_test], test, a, b, value)
    if train.size == 0:
        raise ValueError("embargo: no training rows left after purging")
    return train, test
