"""Purged walk-forward CV: train precedes test, no label window reaches into the test window
or its embargo, and an embargo shorter than the label horizon is refused."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from backend.ml.dataset import build_dataset
from backend.ml.validation import PurgedWalkForward, holdout_split, resolve_embargo
from tests.utils.market_data import sample

DAY = np.timedelta64(1, "D")


@pytest.fixture(scope="module")
def eurusd_times() -> tuple[np.ndarray, np.ndarray]:
    data = build_dataset(sample("EURUSD"))
    return data.t0, data.t1


def _check_fold(train: np.ndarray, test: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                embargo: np.timedelta64) -> None:
    assert train.size and test.size
    assert not np.intersect1d(train, test).size
    assert t0[train].max() < t0[test].min()  # train precedes test
    zone_start = t0[test].min() - embargo
    zone_end = t1[test].max() + embargo
    overlaps = (t0[train] <= zone_end) & (t1[train] >= zone_start)
    assert not overlaps.any()


def test_hand_made_folds() -> None:
    # 20 daily signals, each label window 2 days: horizon = embargo = 2 days. Fold 0 tests
    # rows 10..14 (days 10..16 with their windows); the purged zone is [day 8, day 18], so
    # rows whose window ends on day 8 or later (i >= 6) leave the training set.
    t0 = np.datetime64("2024-01-01", "ns") + np.arange(20) * DAY
    t1 = t0 + 2 * DAY
    folds = list(PurgedWalkForward(n_splits=2, min_train_fraction=0.5).split(t0, t1))
    assert [f[0].tolist() for f in folds] == [list(range(6)), list(range(11))]
    assert [f[1].tolist() for f in folds] == [list(range(10, 15)), list(range(15, 20))]
    train, test = holdout_split(t0, t1, fraction=0.25)
    assert test.tolist() == list(range(15, 20)) and train.tolist() == list(range(11))


def test_purged_walk_forward_on_real_labels(eurusd_times: tuple[np.ndarray, np.ndarray]
                                            ) -> None:
    t0, t1 = eurusd_times
    embargo = resolve_embargo(t0, t1)
    assert embargo == (t1 - t0).max()  # default: the longest label horizon
    cv = PurgedWalkForward(n_splits=5)
    folds = list(cv.split(t0, t1))
    assert len(folds) == cv.get_n_splits() == 5
    tests = np.concatenate([test for _, test in folds])
    first_test = int(np.ceil(0.3 * len(t0)))
    np.testing.assert_array_equal(np.sort(tests), np.arange(first_test, len(t0)))
    sizes = []
    for train, test in folds:
        _check_fold(train, test, t0, t1, embargo)
        # purging removed only rows near the test window, not the whole history
        assert train.size >= 0.9 * test[0]
        sizes.append(train.size)
    assert sizes == sorted(sizes)  # the training window expands


def test_unsorted_input_gives_positions_into_the_input(eurusd_times: tuple[np.ndarray,
                                                                         np.ndarray]) -> None:
    t0, t1 = eurusd_times
    shuffle = np.random.default_rng(0).permutation(len(t0))
    a, b = t0[shuffle], t1[shuffle]
    embargo = resolve_embargo(a, b)
    for train, test in PurgedWalkForward(n_splits=3).split(a, b):
        _check_fold(train, test, a, b, embargo)


def test_embargo_shorter_than_the_horizon_is_refused(eurusd_times: tuple[np.ndarray,
                                                                       np.ndarray]) -> None:
    t0, t1 = eurusd_times
    horizon = (t1 - t0).max()
    with pytest.raises(ValueError, match="embargo"):
        list(PurgedWalkForward(embargo=timedelta(hours=1)).split(t0, t1))
    with pytest.raises(ValueError, match="embargo"):
        holdout_split(t0, t1, embargo=horizon - np.timedelta64(1, "s"))
    longer = horizon + np.timedelta64(5, "D")
    default_train = [tr.size for tr, _ in PurgedWalkForward().split(t0, t1)]
    for k, (train, test) in enumerate(PurgedWalkForward(embargo=longer).split(t0, t1)):
        _check_fold(train, test, t0, t1, longer)
        assert train.size < default_train[k]  # a longer embargo purges more


def test_holdout_split_on_real_labels(eurusd_times: tuple[np.ndarray, np.ndarray]) -> None:
    t0, t1 = eurusd_times
    train, test = holdout_split(t0, t1, fraction=0.2)
    assert test.size == int(np.ceil(0.2 * len(t0)))
    assert test.tolist() == list(range(len(t0) - test.size, len(t0)))
    _check_fold(train, test, t0, t1, resolve_embargo(t0, t1))


def test_bad_inputs_are_refused() -> None:
    t0 = np.datetime64("2024-01-01", "ns") + np.arange(10) * DAY
    with pytest.raises(ValueError, match="t1"):
        list(PurgedWalkForward(n_splits=2).split(t0, t0 - DAY))
    with pytest.raises(ValueError, match="t1"):
        list(PurgedWalkForward(n_splits=2).split(t0, t0[:5]))
    with pytest.raises(ValueError, match="n_splits"):
        list(PurgedWalkForward(n_splits=0).split(t0, t0))
    with pytest.raises(ValueError, match="too few"):
        list(PurgedWalkForward(n_splits=9).split(t0, t0))
    with pytest.raises(ValueError, match="t0"):
        list(PurgedWalkForward(n_splits=2).split(np.arange(10), np.arange(10)))
    with pytest.raises(ValueError, match="fraction"):
        holdout_split(t0, t0, fraction=1.0)
