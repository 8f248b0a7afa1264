"""The search space and Optuna storages: what ModelTrainer tunes and where studies live."""

from __future__ import annotations

from typing import Any

import optuna

from backend.ml.weights import CLASS_WEIGHTS, SAMPLE_WEIGHTS

# One INFO line per trial drowns the progress bar (CLI) and the service's log (train jobs).
optuna.logging.set_verbosity(optuna.logging.WARNING)

# Bumped whenever the search space changes, so shared studies never mix two spaces.
SEARCH_SPACE_VERSION = 3
WEIGHTING_KEYS = ("sample_weight", "class_weight")


def suggest_params(trial: optuna.Trial, algorithm: str) -> dict[str, Any]:
    """The search space: small and sane for a few hundred to a few thousand signals.

    It reaches down to an almost constant model (20 trees at a learning rate of 0.005, one
    split or none, leaves of up to 100 hessian units or 200 rows), which predicts about the
    training base rate: on data with little signal the search can then fall back to the
    always-take baseline's calibration instead of being forced to overfit.
    """
    params: dict[str, Any] = {
        "n_estimators": trial.suggest_int("n_estimators", 20, 400, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.3, log=True),
    }
    if algorithm == "xgboost":
        params |= {
            "max_depth": trial.suggest_int("max_depth", 1, 6),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
        }
    else:
        params |= {
            "num_leaves": trial.suggest_int("num_leaves", 2, 48),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.6, 1.0),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        }
    return params


def suggest_weighting(trial: optuna.Trial) -> dict[str, str]:
    """Row weighting as part of the search: uniqueness weights and class balance are each
    kept only when the folds' log loss says so (backend.ml.weights)."""
    return {"sample_weight": trial.suggest_categorical("sample_weight", list(SAMPLE_WEIGHTS)),
            "class_weight": trial.suggest_categorical("class_weight", list(CLASS_WEIGHTS))}


def resolve_storage(storage: str | optuna.storages.BaseStorage | None) -> Any:
    """An Optuna storage from a database URL (shared study) or a storage object.

    Postgres URLs and libpq ``key=value`` strings (the forms ``DATABASE_URL`` takes) are
    parsed by psycopg itself and handed to SQLAlchemy's psycopg 3 driver, with server-side
    prepared statements off so Supabase's transaction pooler works. Other SQLAlchemy URLs
    (e.g. ``sqlite:///study.db``) pass unchanged. For a dependency-free shared study between
    processes on one machine pass ``journal_storage(path)``.
    """
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    url = str(storage)
    if url.startswith(("postgres://", "postgresql://")) or ("://" not in url and "=" in url):
        import psycopg

        params: dict[str, Any] = psycopg.conninfo.conninfo_to_dict(url)
        params["prepare_threshold"] = None
        return optuna.storages.RDBStorage(
            "postgresql+psycopg://", engine_kwargs={"connect_args": params}
        )
    return optuna.storages.RDBStorage(url)


def journal_storage(path: str) -> optuna.storages.JournalStorage:
    """A file-backed Optuna journal: several processes can share one study through it."""
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
