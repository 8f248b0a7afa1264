"""XGBoost and LightGBM for serving, without scikit-learn.

Both libraries import scikit-learn in their compat modules whenever it is installed (about
1 s and 60 MB), only for their estimator wrappers, which this project never uses: training
calls ``xgb.train`` / ``lgb.train``. A process whose first import of them comes from the
serving path (the API server) therefore imports them with scikit-learn hidden. A process that
imported scikit-learn first (the CLI's training, tests) gets the libraries as usual; our own
training code imports scikit-learn directly, so an API training job works either way.
``lightgbm.dask``'s classes are those wrappers: :func:`load_lightgbm_wrappers` loads them
on demand (training on a Dask cluster only).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import sys
from collections.abc import Iterator

HIDDEN = "sklearn"


class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == HIDDEN or name.startswith(HIDDEN + "."):
            raise ModuleNotFoundError(f"{name} is hidden while the boosters load",
                                      name=name)


@contextlib.contextmanager
def _scikit_learn_hidden() -> Iterator[None]:
    if HIDDEN in sys.modules:  # already loaded by this process: nothing to save
        yield
        return
    finder = _Hide()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


with _scikit_learn_hidden():
    import lightgbm
    import xgboost

__all__ = ["lightgbm", "load_lightgbm_wrappers", "xgboost"]


def load_lightgbm_wrappers() -> None:
    """Re-import LightGBM's compat, estimator and Dask modules with scikit-learn visible, if
    they were first loaded without it."""
    import lightgbm.compat

    if lightgbm.compat.SKLEARN_INSTALLED:
        return
    import lightgbm.dask
    import lightgbm.sklearn

    for module in (lightgbm.compat, lightgbm.sklearn, lightgbm.dask):
        importlib.reload(module)
