"""Barriers set per run: horizon in bars or as a duration, from the CLI, stored with the model,
and the exit policies' time barrier following the model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from backend.config import Settings
from backend.ml.barrier_spec import Barrier, horizon_bars
from backend.ml.candle_files import candle_files
from backend.ml.candles import load_candles_file
from backend.ml.dataset import build_dataset, build_pooled_dataset
from backend.ml.labeling import breakout, triple_barrier
from backend.ml.validation import PurgedWalkForward
from backend.positions.params import make_params, model_max_bars
from tests.utils.cli import run_cli
from tests.utils.market_slices import sample, write_slice


@pytest.mark.parametrize(("horizon", "timeframe", "bars"), [
    (24, None, 24), ("24", "1d", 24), ("2d", "1h", 48), ("2d", "5m", 576), ("36h", "1d", 1),
    ("90m", "1h", 1), ("1w", "1d", 7), ("2.5h", "30m", 5),
])
def test_horizon_in_bars_or_as_a_duration(horizon: int | str, timeframe: str | None,
                                          bars: int) -> None:
    assert horizon_bars(horizon, timeframe) == bars


@pytest.mark.parametrize(("horizon", "timeframe", "problem"), [
    ("2d", None, "is a duration, so the candles need a timeframe"),
    ("30m", "1h", "shorter than one 1h bar"),
    ("2 days", "1h", "is not a duration"),
    (0, "1h", "at least 1 bar"),
    ("1M", "1d", "is not a duration"),  # months have no fixed length
])
def test_bad_horizons_are_refused(horizon: int | str, timeframe: str | None,
                                  problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        horizon_bars(horizon, timeframe)


def test_settings_and_values_choose_the_barrier() -> None:
    s = Settings(barrier_tp_atr=3.0, barrier_sl_atr=1.5, barrier_horizon="36h")
    assert Barrier.from_values(defaults=s) == Barrier(3.0, 1.5, "36h")
    assert Barrier.from_values(sl_atr=0.5, horizon="12", defaults=s) == Barrier(3.0, 0.5, 12)
    assert Barrier.from_values() == Barrier(2.0, 1.0, 24)
    with pytest.raises(ValueError, match="tp_atr: must be a finite number > 0"):
        Barrier(tp_atr=0)
    with pytest.raises(ValueError, match="not a duration"):
        Settings(barrier_horizon="soon")


def test_the_barrier_sets_the_labels() -> None:
    candles = sample("EURUSD").head(1500)
    barrier = Barrier(tp_atr=1.0, sl_atr=2.0, horizon="2d")
    data = build_dataset(candles, strategies=["breakout"], timeframe="1h", barrier=barrier)
    signals = breakout(candles)
    signals = signals[signals["pos"] >= 99]
    expected = triple_barrier(candles, signals, tp_atr=1.0, sl_atr=2.0, max_bars=48)
    np.testing.assert_array_equal(data.y, expected["label"].to_numpy())
    np.testing.assert_array_equal(data.meta["pos"], expected["pos"])
    assert data.barrier == {"tp_atr": 1.0, "sl_atr": 2.0, "atr_period": 14, "horizon": "2d",
                            "horizon_bars": 48, "timeframe": "1h",
                            "horizon_bars_by_timeframe": {"1h": 48}}
    default = build_dataset(candles, strategies=["breakout"], timeframe="1h")
    assert default.y.mean() != data.y.mean()  # another barrier, other labels


def test_exit_policies_follow_the_model_horizon() -> None:
    record = Barrier(horizon="2d").record(["1h", "1d"])
    assert model_max_bars(record, timeframe="1h") == 48
    assert model_max_bars(record, timeframe="4h") == 12  # not trained on: from the duration
    assert model_max_bars(record, bar_seconds=86_400) == 2
    assert model_max_bars(Barrier(horizon=10).record(["1h"]), bar_seconds=300) == 10
    assert model_max_bars(None, timeframe="1h") == 24  # no model: the shared default
    assert make_params("fixed", max_bars=48).max_bars == 48
    assert make_params("fixed", {"max_bars": 5}, max_bars=48).max_bars == 5  # the bot's wins


# ---- CLI: evaluate and train with barrier flags ---------------------------------------------
@pytest.fixture(scope="module")
def candle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("barrier_files")
    write_slice(d / "EURUSD-1h.csv", "EURUSD", 0, 1500)
    write_slice(d / "GOOG-1d.csv", "GOOG", 0, 1400)
    return d


@pytest.mark.slow  # nested evaluation in a subprocess
def test_evaluate_flags_change_the_labels_as_specified(candle_dir: Path,
                                                       tmp_path: Path) -> None:
    flags = ("--tp-atr", "1.5", "--sl-atr", "0.5", "--horizon", "3d")
    proc = run_cli("evaluate", "--candles", str(candle_dir), *flags, "--trials", "1",
                   "--seed", "3", "--json", "--workers", "1", data_dir=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    barrier = Barrier(tp_atr=1.5, sl_atr=0.5, horizon="3d")
    expected = build_pooled_dataset(candle_files([candle_dir]), barrier=barrier, workers=1)
    assert report["barrier"] == expected.barrier
    assert report["barrier"]["horizon_bars_by_timeframe"] == {"1d": 3, "1h": 72}
    assert report["n_samples"] == len(expected)
    tests = np.concatenate([te for _, te in PurgedWalkForward().split(expected.t0,
                                                                      expected.t1)])
    assert report["model"]["count"] == tests.size
    assert report["model"]["base_rate"] == pytest.approx(expected.y[tests].mean())
    default = build_pooled_dataset(candle_files([candle_dir]), workers=1)
    assert default.y.mean() != pytest.approx(expected.y.mean())


def test_a_duration_without_a_timeframe_fails_with_one_line(tmp_path: Path) -> None:
    path = write_slice(tmp_path / "eurusd.csv", "EURUSD", 0, 400)
    proc = run_cli("evaluate", "--candles", str(path), "--horizon", "2d", "--json",
                   data_dir=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: horizon: '2d' is a duration, so the candles need a "
                                   "timeframe (from the file name or --timeframe)")


@pytest.mark.slow  # trains in a subprocess
def test_train_stores_the_barrier_with_the_model(db_url: str, candle_dir: Path,
                                                 tmp_path: Path) -> None:
    path = candle_dir / "EURUSD-1h.csv"
    proc = run_cli("train", "--candles", str(path), "--tp-atr", "3", "--sl-atr", "1.5",
                   "--horizon", "36h", "--trials", "1", "--seed", "3", data_dir=tmp_path,
                   db_url=db_url, timeout=240)
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(db_url) as conn:
        metrics, n_samples = conn.execute("SELECT metrics, n_samples FROM ml_models").fetchone()
    assert metrics["barrier"] == {"tp_atr": 3.0, "sl_atr": 1.5, "atr_period": 14,
                                  "horizon": "36h", "horizon_bars": 36, "timeframe": "1h",
                                  "horizon_bars_by_timeframe": {"1h": 36}}
    expected = build_dataset(load_candles_file(path), timeframe="1h",
                             barrier=Barrier(3.0, 1.5, "36h"))
    holdout = metrics["holdout"]["model"]["count"]
    assert holdout == int(np.ceil(0.2 * len(expected)))
    assert metrics["holdout"]["model"]["base_rate"] == pytest.approx(
        expected.y[-holdout:].mean())
    assert n_samples < len(expected) - holdout + 1  # the rest, purged before the hold-out
    assert model_max_bars(metrics["barrier"], timeframe="1h") == 36
