"""Nested ``evaluate --json`` through the real CLI on both shipped samples pooled into one
model (EURUSD hourly + GOOG daily; each alone is covered in test_evaluation.py).

The same small search as there (2 trials, 3 outer x 3 inner folds, seed 1), so the report
checks are shared; two subprocess runs on ~1,000 pooled signals, hence slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend.ml.candle_files import candle_files
from backend.ml.candles import load_candles_file, sample_candles_path
from backend.ml.dataset import Dataset, build_dataset, build_pooled_dataset
from backend.ml.decision import break_even_probability
from tests.ml.test_evaluation import SMALL, check_report
from tests.utils.cli import run_cli

SAMPLES = {"EURUSD": "1h", "GOOG": "1d"}


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full samples under names that give symbol and timeframe (SYMBOL-TF.csv)."""
    d = tmp_path_factory.mktemp("pooled_samples")
    for symbol, tf in SAMPLES.items():
        shutil.copyfile(sample_candles_path(symbol), d / f"{symbol}-{tf}.csv")
    return d


def evaluate(pool_dir: Path, data_dir: Path) -> str:
    proc = run_cli("evaluate", "--candles", *(str(p) for p in sorted(pool_dir.iterdir())),
                   "--json", "--trials", str(SMALL["n_trials"]), "--seed", str(SMALL["seed"]),
                   "--splits", str(SMALL["n_splits"]),
                   "--inner-splits", str(SMALL["inner_splits"]), "--workers", "1",
                   data_dir=data_dir, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def pooled(pool_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Dataset, str]:
    data = build_pooled_dataset(candle_files([pool_dir]), workers=1)
    return data, evaluate(pool_dir, tmp_path_factory.mktemp("eval_pooled"))


@pytest.mark.slow
def test_pooled_nested_report_beside_both_baselines(pooled: tuple[Dataset, str]) -> None:
    data, stdout = pooled
    report = json.loads(stdout)
    # every metric with its SE, paired log loss and Brier against always-take and logistic,
    # on the walk-forward test rows and on the hold-out
    check_report(report, data)
    # one model on both samples: every signal of each, each labelled in its own bars
    alone = {s: len(build_dataset(load_candles_file(sample_candles_path(s)), symbol=s,
                                  timeframe=tf)) for s, tf in SAMPLES.items()}
    assert report["n_samples"] == sum(alone.values())
    assert sorted(data.meta["symbol"].unique()) == sorted(SAMPLES)
    assert report["barrier"]["horizon_bars_by_timeframe"] == {"1d": 24, "1h": 24}


@pytest.mark.slow
def test_pooled_expected_value_rule_takes_some_but_not_all(
        pooled: tuple[Dataset, str]) -> None:
    _, stdout = pooled
    report = json.loads(stdout)
    decision = report["decision"]
    assert decision["rule"] == "expected_value"
    assert decision["break_even_probability"] == pytest.approx(break_even_probability(2.0))
    for part in (report, report["holdout"]):
        tv = part["taken_vs_all"]
        assert tv["probability"] == "model_calibrated"
        assert 0 < tv["taken"]["count"] < part["count"], tv["taken"]["count"]
        assert 0 < tv["share_taken"] < 1
        assert part["model_calibrated"]["n_taken"] == tv["taken"]["count"]
        assert tv["share_taken_se"] > 0


@pytest.mark.slow
def test_pooled_same_seed_same_json(pool_dir: Path, pooled: tuple[Dataset, str],
                                    tmp_path: Path) -> None:
    _, stdout = pooled
    assert evaluate(pool_dir, tmp_path) == stdout
