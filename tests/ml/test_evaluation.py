"""Nested evaluation on real and planted data: it sees skill where there is some, invents
none where there is none, catches a leak, and reproduces with the same seed.

Small searches (2 trials, 3 outer x 3 inner folds) keep each run to seconds or tens of
seconds; the runs on full data sets are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from backend.ml.dataset import Dataset, build_dataset
from backend.ml.decision import break_even_probability
from backend.ml.evaluation import WHO, DecisionConfig, NestedEvaluation, nested_evaluate
from backend.ml.evaluation_plots import write_plots
from tests.utils.market_data import sample
from tests.utils.synthetic import rsi_driven_candles

SMALL = {"n_trials": 2, "n_splits": 3, "inner_splits": 3, "seed": 1}


def run(data: Dataset, **kw: object) -> NestedEvaluation:
    return nested_evaluate(data, **(SMALL | kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def goog() -> tuple[Dataset, NestedEvaluation]:
    data = build_dataset(sample("GOOG"), symbol="GOOG", timeframe="1d")
    return data, run(data)


@pytest.fixture(scope="module")
def planted() -> tuple[Dataset, NestedEvaluation]:
    data = build_dataset(rsi_driven_candles(8000, strength=1.0), symbol="SYN")
    return data, run(data)


def check_section(part: dict, n: int) -> None:
    """Every metric with its SE; paired log loss and Brier beside both baselines."""
    assert part["count"] == n
    for who in WHO:
        m = part[who]
        assert m["count"] == n
        for key in ("accuracy", "roc_auc", "log_loss", "brier", "base_rate", "share_taken"):
            assert m[key] is not None and m[f"{key}_se"] is not None and m[f"{key}_se"] >= 0
        assert (m["precision"] is None) == (m["n_taken"] == 0)
    assert part["always_take"]["share_taken"] == 1.0
    for who in ("model", "model_calibrated"):
        for ref in ("vs_always_take", "vs_logistic"):
            for metric in ("log_loss", "brier"):
                diff = part["paired"][who][ref][metric]
                assert diff["n"] == n and diff["se"] > 0, (who, ref, metric)
    assert set(part["paired"]["logistic"]) == {"vs_always_take"}
    # the paired difference is the difference of the pooled figures
    diff = part["paired"]["model"]["vs_always_take"]["log_loss"]["mean"]
    assert diff == pytest.approx(part["model"]["log_loss"] - part["always_take"]["log_loss"])
    for who in ("model", "model_calibrated"):
        bins = part["reliability"][who]
        assert sum(b["count"] for b in bins) == n
    tv = part["taken_vs_all"]
    assert tv["taken"]["count"] + tv["skipped"]["count"] == tv["all"]["count"] == n


def check_report(report: dict, data: Dataset) -> None:
    assert report["n_samples"] == len(data)
    assert report["embargo_seconds"] == (data.t1 - data.t0).max() / np.timedelta64(1, "s")
    folds = report["folds"]
    check_section(report, sum(f["test_size"] for f in folds))
    check_section(report["holdout"], report["holdout"]["test_size"])
    for window in (*folds, report["holdout"]):
        search = window["search"]
        assert search["n_complete"] + search["n_pruned"] == SMALL["n_trials"]
        assert {"n_estimators", "learning_rate"} <= set(search["best_params"])
        assert set(search["weighting"]) == {"sample_weight", "class_weight"}
        # the only tuned figure is labelled so; it never enters the pooled metrics
        assert "inner_best_log_loss_tuned" in search
        assert window["calibration"]["method"] in ("isotonic", "sigmoid")
    starts = [f["test_start"] for f in folds]
    assert starts == sorted(starts)
    assert report["holdout"]["test_end"] == folds[-1]["test_end"]  # the last signals
    for key in ("walk_forward", "holdout"):
        table = report["feature_importance"][key]
        assert len(table) == data.X.shape[1]
        assert {"feature", "gain", "mean_abs_shap"} <= set(table[0])
    for who in WHO:
        assert report["across_folds"][who]["log_loss"]["n"] == len(folds)


@pytest.mark.slow
def test_goog_nested_report(goog: tuple[Dataset, NestedEvaluation]) -> None:
    data, result = goog
    check_report(result.report, data)


@pytest.mark.slow
def test_eurusd_nested_report() -> None:
    data = build_dataset(sample("EURUSD"), symbol="EURUSD", timeframe="1h")
    check_report(run(data, algorithm="lightgbm").report, data)


@pytest.mark.slow
def test_same_seed_same_json(goog: tuple[Dataset, NestedEvaluation]) -> None:
    data, result = goog
    assert orjson.dumps(run(data).report) == orjson.dumps(result.report)


@pytest.mark.slow
def test_expected_value_rule_follows_probabilities_and_reward_risk(
        goog: tuple[Dataset, NestedEvaluation]) -> None:
    """The share taken is exactly the share of calibrated probabilities above the
    break-even of the barrier's reward/risk; costs move it, as they should."""
    data, result = goog
    for oos, part in ((result.walk_forward, result.report),
                      (result.holdout, result.report["holdout"])):
        p = oos.prob["model_calibrated"]
        above = p > break_even_probability(2.0)  # bootstrap rows: the 2:1 barrier
        np.testing.assert_array_equal(oos.taken, above)
        assert part["taken_vs_all"]["share_taken"] == pytest.approx(above.mean())
        assert part["model_calibrated"]["n_taken"] == int(above.sum())
    costly = run(data, decision=DecisionConfig(costs_r=0.2)).walk_forward
    assert costly.taken.sum() <= result.walk_forward.taken.sum()
    np.testing.assert_array_equal(costly.taken,
                                  costly.prob["model_calibrated"] > 1.2 / 3)


@pytest.mark.slow
def test_planted_edge_is_found(planted: tuple[Dataset, NestedEvaluation]) -> None:
    _, result = planted
    report = result.report
    assert report["model_calibrated"]["roc_auc"] > 0.6
    assert report["model"]["roc_auc"] > 0.6
    tv = report["taken_vs_all"]
    assert 0 < tv["share_taken"] < 1
    assert tv["taken"]["mean_r"]["mean"] > tv["all"]["mean_r"]["mean"]
    # and it is not a rounding: better than always-take by more than two paired SEs
    diff = report["paired"]["model_calibrated"]["vs_always_take"]["log_loss"]
    assert diff["mean"] + 2 * diff["se"] < 0


@pytest.mark.slow
def test_shuffled_labels_show_no_skill(planted: tuple[Dataset, NestedEvaluation]) -> None:
    data, _ = planted
    y = np.random.default_rng(0).permutation(data.y)
    shuffled = Dataset(data.X, y, data.t0, data.t1, data.returns, data.meta)
    report = run(shuffled).report
    for who in ("model", "model_calibrated"):
        m = report[who]
        assert abs(m["roc_auc"] - 0.5) < 2 * m["roc_auc_se"], who


@pytest.mark.slow
def test_planted_leak_is_caught(goog: tuple[Dataset, NestedEvaluation]) -> None:
    data, _ = goog
    leaky = Dataset(data.X.assign(leak=data.y.astype(float)), data.y, data.t0, data.t1,
                    data.returns, data.meta)
    report = run(leaky).report
    assert report["model"]["roc_auc"] > 0.98
    assert report["feature_importance"]["walk_forward"][0]["feature"] == "leak"


@pytest.mark.slow
def test_plots_are_written(goog: tuple[Dataset, NestedEvaluation], tmp_path: Path) -> None:
    _, result = goog
    paths = write_plots(result, tmp_path / "plots")
    assert [p.name for p in paths] == ["reliability.png", "cumulative_r.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
