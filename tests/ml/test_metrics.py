"""Metrics and PSI against figures computed by hand from the literal inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backend.ml.metrics import PSI_FLOOR, classification_metrics, psi, reference_distribution

Y = [1, 0, 1, 1, 0]
P = [0.9, 0.4, 0.6, 0.3, 0.7]


def test_classification_metrics_match_hand_computation() -> None:
    m = classification_metrics(Y, P, threshold=0.5)
    # taken (p >= 0.5): rows 0, 2, 4 -> TP rows 0 and 2, FP row 4; row 3 is a missed win.
    assert m["count"] == 5
    assert m["n_taken"] == 3
    assert m["base_rate"] == pytest.approx(3 / 5)
    assert m["accuracy"] == pytest.approx(3 / 5)  # rows 0, 1, 2 right
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["mean_probability"] == pytest.approx((0.9 + 0.4 + 0.6 + 0.3 + 0.7) / 5)
    brier = (0.1**2 + 0.4**2 + 0.4**2 + 0.7**2 + 0.7**2) / 5
    assert m["brier"] == pytest.approx(brier)
    log_loss = -(math.log(0.9) + math.log(0.6) + math.log(0.6) + math.log(0.3) + math.log(0.3)) / 5
    assert m["log_loss"] == pytest.approx(log_loss)
    # pairs (win, loss) ranked right: 0.9>0.4, 0.9>0.7, 0.6>0.4 -> 3 of 6
    assert m["roc_auc"] == pytest.approx(3 / 6)


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_equal_scikit_learns(seed: int) -> None:
    """The numpy implementation (serving must not import scikit-learn) against sklearn, on
    seeded data with ties, near-certain probabilities and both decision sources."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes
    p = np.round(rng.random(n), int(rng.integers(1, 4)))  # rounding makes ties
    p[rng.random(n) < 0.05] = rng.choice([0.0, 1.0])
    taken = rng.random(n) < 0.5 if seed % 2 else None
    m = classification_metrics(y, p, threshold=0.5, taken=taken)
    pred = (p >= 0.5) if taken is None else taken
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
    precision = skm.precision_score(y, pred, zero_division=np.nan)
    if np.isnan(precision):
        assert m["precision"] is None
    else:
        assert m["precision"] == pytest.approx(precision, rel=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), rel=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, clipped, labels=[0, 1]), rel=1e-12)


def test_threshold_moves_decisions() -> None:
    m = classification_metrics(Y, P, threshold=0.65)  # takes rows 0 and 4 only
    assert m["n_taken"] == 2
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["recall"] == pytest.approx(1 / 3)


def test_taken_overrides_threshold_always_take() -> None:
    m = classification_metrics(Y, [0.6] * 5, taken=[True] * 5)
    assert m["n_taken"] == 5
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == 1.0
    assert m["roc_auc"] == pytest.approx(0.5)  # a constant score ranks nothing


def test_undefined_figures_are_none_not_nan() -> None:
    one_class = classification_metrics([1, 1], [0.2, 0.3])
    assert one_class["roc_auc"] is None
    assert one_class["precision"] is None  # nothing taken
    no_wins = classification_metrics([0, 0], [0.7, 0.1])
    assert no_wins["recall"] is None
    assert no_wins["precision"] == 0.0


def test_log_loss_of_certain_miss_is_finite() -> None:
    m = classification_metrics([1, 0], [0.0, 1.0])
    assert math.isfinite(m["log_loss"])
    # both clipped to 1e-15 from the wrong side; 1 - (1 - 1e-15) is not exactly 1e-15 in floats
    hand = (-math.log(1e-15) - math.log(1.0 - (1.0 - 1e-15))) / 2
    assert m["log_loss"] == pytest.approx(hand)


@pytest.mark.parametrize(
    ("y", "p", "kwargs", "field"),
    [
        ([1, 0], [0.5], {}, "prob"),
        ([1, 0], [0.5, 1.5], {}, "prob"),
        ([1, 0], [0.5, float("nan")], {}, "prob"),
        ([1, 2], [0.5, 0.5], {}, "y_true"),
        ([], [], {}, "y_true"),
        ([1, 0], [0.5, 0.5], {"threshold": 1.5}, "threshold"),
        ([1, 0], [0.5, 0.5], {"taken": [True]}, "taken"),
    ],
)
def test_bad_input_names_the_field(y: list, p: list, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        classification_metrics(y, p, **kwargs)


def test_psi_hand_computation() -> None:
    # edge 0.0 -> bins (-inf, 0], (0, inf); live: 1 of 4 in the first bin.
    value = psi([0.5, 0.5], [-1.0, 1.0, 2.0, 3.0], [0.0])
    assert value == pytest.approx((0.25 - 0.5) * math.log(0.25 / 0.5)
                                  + (0.75 - 0.5) * math.log(0.75 / 0.5))


def test_psi_counts_missing_share_when_asked() -> None:
    # reference: 20 % missing, the rest split evenly -> [0.4, 0.4, 0.2]; live [1/4, 2/4, 1/4]
    value = psi([0.5, 0.5], [-1.0, np.nan, 1.0, 2.0], [0.0], expected_nan_share=0.2)
    hand = sum((a - e) * math.log(a / e) for a, e in [(0.25, 0.4), (0.5, 0.4), (0.25, 0.2)])
    assert value == pytest.approx(hand)
    ignored = psi([0.5, 0.5], [-1.0, np.nan, 1.0, 2.0], [0.0])  # NaN dropped: [1/3, 2/3]
    hand = (1 / 3 - 0.5) * math.log((1 / 3) / 0.5) + (2 / 3 - 0.5) * math.log((2 / 3) / 0.5)
    assert ignored == pytest.approx(hand)


def test_psi_value_on_edge_falls_in_lower_bin_and_empty_bins_are_floored() -> None:
    assert psi([1.0, 0.0], [1.0, 1.0], [1.0]) == pytest.approx(0.0, abs=1e-3)
    shifted = psi([1.0, 0.0], [2.0, 3.0], [1.0])
    hand = ((PSI_FLOOR - 1.0) * math.log(PSI_FLOOR / 1.0)
            + (1.0 - PSI_FLOOR) * math.log(1 / PSI_FLOOR))
    assert shifted == pytest.approx(hand)


def test_psi_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^expected_proportions:"):
        psi([1.0], [1.0], [0.0])
    with pytest.raises(ValueError, match=r"^bin_edges:"):
        psi([0.3, 0.3, 0.4], [1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"^actual_values:"):
        psi([0.5, 0.5], [np.nan], [0.0])


def test_reference_distribution_quantile_bins() -> None:
    X = pd.DataFrame({"ramp": [*range(1, 11), np.nan, np.nan], "flat": [3.0] * 12})
    ref = reference_distribution(X, bins=5)
    # numpy's linear quantiles of 1..10 at 0.2/0.4/0.6/0.8: 1 + 9q -> 2.8, 4.6, 6.4, 8.2
    assert ref["ramp"]["edges"] == pytest.approx([2.8, 4.6, 6.4, 8.2])
    assert ref["ramp"]["proportions"] == pytest.approx([0.2] * 5)  # two values per bin
    assert ref["ramp"]["nan_share"] == pytest.approx(2 / 12)
    assert ref["ramp"]["count"] == 12
    assert ref["flat"] == {"edges": [3.0], "proportions": [1.0, 0.0], "nan_share": 0.0,
                           "count": 12}
    # the training column itself shows no drift against its own reference
    r = ref["ramp"]
    same = psi(r["proportions"], X["ramp"], r["edges"], expected_nan_share=r["nan_share"])
    assert same == pytest.approx(0.0, abs=1e-12)


def test_reference_distribution_rejects_infinite_values() -> None:
    with pytest.raises(ValueError, match="'a'"):
        reference_distribution(pd.DataFrame({"a": [1.0, np.inf]}))
