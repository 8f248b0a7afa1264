"""Boosters trained on a real Dask cluster (distributed.LocalCluster, two in-process workers)
match the in-process path out-of-sample; Optuna's shared storage keeps working there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from backend.ml import boosters
from backend.ml.dask_training import on_cluster
from backend.ml.dataset import Dataset, build_dataset
from backend.ml.model_trainer import ModelTrainer
from backend.ml.search import journal_storage
from tests.utils.market_slices import sample

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # trains on a Dask cluster (two in-process workers)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def data() -> Dataset:
    return build_dataset(sample("GOOG"), symbol="GOOG", timeframe="1d")


def _fit(data: Dataset, algorithm: str, **kwargs: object) -> ModelTrainer:
    return ModelTrainer(algorithm=algorithm, n_trials=2, seed=5, **kwargs).fit(
        data.X, data.y, data.t0, data.t1)


@pytest.mark.parametrize(("algorithm", "tolerance"), [("xgboost", 0.01), ("lightgbm", 0.03)])
def test_cluster_model_matches_the_in_process_one_out_of_sample(
        cluster: str, data: Dataset, algorithm: str, tolerance: float) -> None:
    local = _fit(data, algorithm)
    with on_cluster(cluster) as client:
        assert client is not None and boosters._cluster is client
        remote = _fit(data, algorithm)
    assert boosters._cluster is None  # the block restores in-process training
    # Data-parallel over two partitions: histogram bins (and row sampling) are built per
    # worker, so the trees differ slightly from one process's; their quality must not. (The
    # LightGBM tolerance, 0.03, is about one standard error of a log loss on these ~300 rows;
    # row weights chosen by the search widen the gap a little.)
    for key in ("log_loss", "brier"):
        assert remote.cv_report_["model"][key] == pytest.approx(
            local.cv_report_["model"][key], abs=tolerance), key
    assert remote.cv_report_["model"]["roc_auc"] == pytest.approx(
        local.cv_report_["model"]["roc_auc"], abs=max(tolerance, 0.05))
    assert remote.cv_report_["always_take"] == local.cv_report_["always_take"]


def test_without_a_scheduler_nothing_changes(data: Dataset) -> None:
    with on_cluster(None) as client:
        assert client is None and boosters._cluster is None


def test_shared_optuna_storage_works_with_the_cluster(cluster: str, data: Dataset,
                                                      tmp_path: Path) -> None:
    path = str(tmp_path / "journal.log")
    with on_cluster(cluster):
        first = _fit(data, "xgboost", storage=journal_storage(path), study_name="dask")
        _fit(data, "xgboost", storage=journal_storage(path), study_name="dask")
    name = first.study_.study_name
    study = optuna.load_study(study_name=name, storage=journal_storage(path))
    assert len(study.trials) == 4  # both runs' trials in one shared study
    assert study.best_value == pytest.approx(min(t.value for t in study.trials
                                                 if t.value is not None))
