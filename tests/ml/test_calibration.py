"""Calibration: the numpy applier gives the fitted scikit-learn calibrator's numbers, the
stored form is plain JSON, and on data with known probabilities the bins match."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from backend.ml.calibration import (
    ISOTONIC_MIN_ROWS,
    Calibration,
    fit_calibration,
    fit_method,
    logit,
)
from backend.ml.metrics import reliability_table
from tests.utils.cli import ROOT


def known_probabilities(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities p, outcomes y ~ Bernoulli(p), and a distorted raw score."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(np.int64)
    raw = 1.0 / (1.0 + np.exp(-2.5 * logit(p) + 0.7))  # over-confident and shifted
    return p, y, raw


def test_isotonic_applier_equals_sklearn() -> None:
    _, y, raw = known_probabilities(3000, seed=1)
    cal = fit_method("isotonic", y, raw)
    bound = 0.5 / y.size
    iso = IsotonicRegression(y_min=bound, y_max=1 - bound, out_of_bounds="clip").fit(raw, y)
    grid = np.concatenate([np.linspace(-0.1, 1.1, 2001), raw[:500], iso.X_thresholds_])
    np.testing.assert_allclose(cal.apply(grid), iso.predict(grid), rtol=1e-12, atol=1e-15)
    again = Calibration.from_json(json.loads(json.dumps(cal.to_json())))
    np.testing.assert_array_equal(again.apply(grid), cal.apply(grid))


def test_sigmoid_applier_equals_sklearn() -> None:
    _, y, raw = known_probabilities(3000, seed=2)
    cal = fit_method("sigmoid", y, raw)
    lr = LogisticRegression(max_iter=1000).fit(logit(raw)[:, None], y)
    grid = np.concatenate([np.linspace(0.0, 1.0, 2001), raw[:500]])
    np.testing.assert_allclose(cal.apply(grid), lr.predict_proba(logit(grid)[:, None])[:, 1],
                               rtol=1e-12, atol=1e-15)
    assert cal.to_json() == {"method": "sigmoid", "a": cal.a, "b": cal.b}
    # the distortion was logit(raw) = 2.5 logit(p) - 0.7: the fit undoes it
    assert cal.a == pytest.approx(1 / 2.5, abs=0.05)
    assert cal.b == pytest.approx(0.7 / 2.5, abs=0.1)


@pytest.mark.parametrize("n", [600, 20_000])
def test_reliability_bins_match_known_probabilities(n: int) -> None:
    _, y, raw = known_probabilities(n, seed=3)
    cal, summary = fit_calibration(y, raw)
    assert summary["method"] in (("sigmoid",) if n < ISOTONIC_MIN_ROWS else
                                 ("sigmoid", "isotonic"))
    assert set(summary["cv_log_loss"]) == ({"sigmoid"} if n < ISOTONIC_MIN_ROWS
                                           else {"sigmoid", "isotonic"})
    _, y_new, raw_new = known_probabilities(20_000, seed=4)  # fresh rows, same mechanism
    before = reliability_table(y_new, raw_new)
    after = reliability_table(y_new, cal.apply(raw_new))
    assert sum(b["count"] for b in after) == 20_000
    for b in after:
        if b["count"] > 1:
            assert abs(b["observed_rate"] - b["mean_predicted"]) <= 2.5 * b["observed_se"], b
    # the raw score is visibly miscalibrated in its outer bins
    assert max(abs(b["observed_rate"] - b["mean_predicted"]) / b["observed_se"]
               for b in before if b["count"] > 1) > 5


def test_calibration_is_monotone_and_refuses_to_invert() -> None:
    rng = np.random.default_rng(5)
    raw = rng.uniform(0.3, 0.4, 80)
    y = (raw < 0.35).astype(np.int64)  # in this sample the score ranks backwards
    cal = fit_method("sigmoid", y, raw)
    assert cal.a == 0.0  # no inverted map: the base rate instead
    np.testing.assert_allclose(cal.apply(raw), y.mean(), atol=0.02)


@pytest.mark.parametrize(
    "data",
    [{"method": "platt"}, {"method": "sigmoid", "a": float("nan"), "b": 0.0},
     {"method": "isotonic", "x": [0.2, 0.1], "y": [0.1, 0.2]},
     {"method": "isotonic", "x": [0.1, 0.2], "y": [0.3, 0.2]},
     {"method": "isotonic", "x": [0.1], "y": [1.5]}, {"method": "isotonic", "x": [], "y": []}],
)
def test_bad_stored_calibration_is_refused(data: dict) -> None:
    with pytest.raises(ValueError, match=r"^calibration:"):
        Calibration.from_json(data)


def test_identity_and_missing() -> None:
    p = np.array([0.0, 0.25, 1.0])
    for data in (None, {}, {"method": "identity"}):
        np.testing.assert_array_equal(Calibration.from_json(data).apply(p), p)


@pytest.mark.parametrize("module", ["backend.ml.calibration", "backend.ml.decision"])
def test_serving_modules_do_not_import_sklearn(module: str) -> None:
    code = f"import sys, {module}; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
