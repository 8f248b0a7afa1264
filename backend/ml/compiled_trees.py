"""Compiled trees for the hot path (treelite + tl2cgen): build, verify, load.

A model's trees are compiled to a shared library keyed by the artifact's sha256. It is
loaded only when it is trusted and its own sha256 is the one recorded when it was built
(:mod:`backend.ml.trusted_files`; otherwise it is built again), and serves only after it
reproduced the native booster within ``COMPILED_TOLERANCE`` on rows that hit every split
threshold, its float neighbours and NaN (:func:`verification_rows`).
"""

from __future__ import annotations

import _ctypes
import ctypes
import json
import logging
import os
import sys
import tempfile
import threading
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tl2cgen
import treelite

from backend.ml.boosters import Booster, predict_booster
from backend.ml.native_libs import lightgbm as lgb
from backend.ml.native_libs import xgboost as xgb
from backend.ml.trusted_files import publish, secure_dir, verified

if TYPE_CHECKING:
    from backend.db.models import ModelRow

log = logging.getLogger(__name__)

COMPILED_TOLERANCE = 1e-6
VERIFY_ROWS = 300
COMPILE_UNITS = 16
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "tml-compiled-models"


# LightGBM reads any |x| <= kZeroThreshold (1e-35 as float) as exactly 0 before the trees see
# it; the compiled trees would compare the raw value, so the same rounding is applied first.
LIGHTGBM_ZERO_THRESHOLD = 1.0000000180025095e-35


class CompiledTrees:
    """A tl2cgen shared library: probabilities of class 1.

    Batches go through ``tl2cgen.Predictor``. One row calls the library's generated
    ``predict(union Entry*, int, float*)`` directly through ctypes: the wrapper's DMatrix and
    output-shape calls cost ~10 us, the trees themselves ~1-2 us. An ``Entry`` is a union of
    ``int missing`` and the value, so a row is the value array with the int word of each
    missing entry set to -1 (what tl2cgen's DMatrix builds). The load-time verification
    checks both paths against the native booster.

    That union has a blind spot with float64 values (LightGBM): a present value whose low
    32 bits are all ones (e.g. -0.49999999999999994, one ulp above -0.5) reads as missing,
    in tl2cgen's own DMatrix too. Rows holding such a value are sent to the native booster.
    """

    def __init__(self, libpath: Path, booster: Booster) -> None:
        if sys.byteorder != "little":
            raise ValueError("the single-row path assumes a little-endian machine")
        self._predictor = tl2cgen.Predictor(libpath, nthread=1)
        if self._predictor.num_target != 1 or list(self._predictor.num_class) != [1]:
            raise ValueError("compiled path supports binary models only")
        # XGBoost thresholds are float32 and XGBoost casts inputs to float32 itself, so the
        # library is fed float32 there (same comparisons); LightGBM's are float64.
        self.dtype = np.float32 if self._predictor.threshold_type == "float32" else np.float64
        self._booster = booster
        self._lightgbm = isinstance(booster, lgb.Booster)
        # tl2cgen documents Predictor.predict as callable by one thread at a time; the
        # generated predict() itself is a pure function (no lock on the single-row path).
        self._lock = threading.Lock()
        self._result_type = (ctypes.c_float if self._predictor.leaf_output_type == "float32"
                             else ctypes.c_double)
        # PyDLL: the call keeps the GIL. A few microseconds are not worth releasing it for,
        # and each release lets the writer thread take the GIL for up to a switch interval.
        self._library = ctypes.PyDLL(str(libpath))
        self._row_fn = self._library.predict
        self._row_fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._row_fn.restype = None

    def __del__(self) -> None:
        # ctypes never unloads a library; without this every model ever served would stay
        # mapped. dlopen reference-counts, so other holders of the same file are unaffected.
        library = getattr(self, "_library", None)
        if library is not None and _ctypes is not None:  # None at interpreter shutdown
            _ctypes.dlclose(library._handle)

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        data = np.array(X, dtype=self.dtype, order="C")  # always a copy we may edit
        if self._lightgbm:
            data[np.abs(data) <= LIGHTGBM_ZERO_THRESHOLD] = 0.0
        return data

    def _int_words(self, data: np.ndarray) -> np.ndarray:
        """The ``int missing`` member of each entry (the low word on little-endian)."""
        words = data.view(np.int32)
        return words if self.dtype == np.float32 else words[..., ::2]

    def _unrepresentable(self, data: np.ndarray) -> np.ndarray:
        if self.dtype == np.float32:  # an all-ones float32 is a NaN: no blind spot
            return np.zeros(data.shape, dtype=bool)
        return (self._int_words(data) == -1) & ~np.isnan(data)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n,), for X of shape (n, n_features)."""
        data = self._prepare(X)
        matrix = tl2cgen.DMatrix(data)
        with self._lock:
            out = self._predictor.predict(matrix).ravel().astype(np.float64)  # was (n, 1, 1)
        blind = self._unrepresentable(data).any(axis=1)
        if blind.any():
            out[blind] = predict_booster(self._booster, np.asarray(X)[blind])
        return out

    def predict_one(self, x: np.ndarray) -> float:
        """Probability for one row of shape (n_features,)."""
        data = self._prepare(x)
        missing = np.isnan(data)
        words = self._int_words(data)
        if self.dtype == np.float64 and ((words == -1) & ~missing).any():
            return float(predict_booster(self._booster, x.reshape(1, -1))[0])
        np.putmask(words, missing, -1)
        result = self._result_type(0.0)  # the generated code accumulates into it
        self._row_fn(data.__array_interface__["data"][0], 0, ctypes.byref(result))
        return float(result.value)


def _treelite_model(booster: Booster) -> Any:
    if isinstance(booster, lgb.Booster):
        return treelite.frontend.from_lightgbm(booster)
    model = json.loads(booster.save_raw(raw_format="json"))
    # XGBoost >= 3 writes base_score as a vector ("[5E-1]"); treelite 4.1 reads only a scalar
    # and would silently take -inf, so unwrap the single value.
    params = model["learner"]["learner_model_param"]
    base = str(params["base_score"]).strip("[]")
    if "," in base:
        raise ValueError(f"base_score: multi-target {params['base_score']} not supported")
    params["base_score"] = base
    with warnings.catch_warnings():  # newer keys ("cats") are ignored by design
        warnings.simplefilter("ignore")
        return treelite.frontend.from_xgboost_json(json.dumps(model), allow_unknown_field=True)


def _build_library(booster: Booster, libpath: Path) -> None:
    # Build under a unique name, then rename: a concurrent process sees no file or a whole one.
    tmp = libpath.with_name(f".{libpath.stem}.{os.getpid()}.{uuid.uuid4().hex}.so")
    try:
        # Smaller translation units compile faster even on 2 cores (400 trees x 48 leaves:
        # 6.0 s with 2 units, 4.1 s with 32); the extra calls cost nothing measurable.
        tl2cgen.export_lib(_treelite_model(booster), toolchain="gcc", libpath=tmp,
                           params={"parallel_comp": COMPILE_UNITS}, nthread=os.cpu_count())
        publish(tmp, libpath)  # with the library's sha256 beside it
    finally:
        tmp.unlink(missing_ok=True)


def _split_values(booster: Booster, feature_names: list[str]) -> dict[int, np.ndarray]:
    if isinstance(booster, xgb.Booster):
        frame = booster.trees_to_dataframe()
        frame = frame[frame["Feature"] != "Leaf"]
        pairs = zip(frame["Feature"], frame["Split"], strict=True)
    else:
        frame = booster.trees_to_dataframe()
        frame = frame[frame["split_feature"].notna()]
        pairs = zip(frame["split_feature"], frame["threshold"], strict=True)
    index = {name: i for i, name in enumerate(feature_names)}
    found: dict[int, list[float]] = {}
    for name, value in pairs:
        found.setdefault(index[name], []).append(float(value))
    return {i: np.unique(v) for i, v in found.items()}


def verification_rows(
    booster: Booster, feature_names: list[str], n_rows: int = VERIFY_ROWS, seed: int = 0
) -> np.ndarray:
    """Rows of shape (n_rows, n_features) built to take every branch: each split threshold,
    its nearest neighbours on both sides (in the precision the model compares in), zero,
    random values and 10 % NaN."""
    rng = np.random.default_rng(seed)
    precision = np.float32 if isinstance(booster, xgb.Booster) else np.float64
    splits = _split_values(booster, feature_names)
    rows = rng.normal(size=(n_rows, len(feature_names)))
    for column, thresholds in splits.items():
        t = thresholds.astype(precision)
        pool = np.concatenate([t, np.nextafter(t, precision(-np.inf)),
                               np.nextafter(t, precision(np.inf)), [0.0]]).astype(np.float64)
        pick = rng.random(n_rows) < 0.7
        rows[pick, column] = rng.choice(pool, size=int(pick.sum()))
    rows[rng.random(rows.shape) < 0.1] = np.nan
    return rows


def library_path(row: ModelRow, cache_dir: Path) -> Path:
    """Where the compiled library of ``row`` is cached (named by artifact digest)."""
    return Path(cache_dir) / f"{row.artifact_sha256}-tl2cgen{tl2cgen.__version__}.so"


def compile_model(row: ModelRow, booster: Booster, cache_dir: Path) -> CompiledTrees:
    """The verified compiled trees of ``row``, built into ``cache_dir`` unless a trusted
    library with the recorded sha256 is already there.

    Raises
    ------
    PermissionError
        The cache, the library or its record belongs to another user or is writable by
        others: nothing is loaded (the caller serves with the native booster).
    ValueError
        The library does not reproduce the booster.
    """
    secure_dir(cache_dir)
    libpath = library_path(row, cache_dir)
    if not verified(libpath, cache_dir=cache_dir):  # missing, or changed since it was built
        _build_library(booster, libpath)
    compiled = CompiledTrees(libpath, booster)
    rows = verification_rows(booster, list(row.feature_names))
    native = predict_booster(booster, rows)
    batch_gap = float(np.max(np.abs(compiled.predict(rows) - native)))
    row_gap = max(abs(compiled.predict_one(r) - p) for r, p in zip(rows, native, strict=True))
    gap = max(batch_gap, row_gap)
    if not gap <= COMPILED_TOLERANCE:  # also catches NaN
        raise ValueError(f"compiled predictions differ from the booster by {gap:.3g}")
    return compiled
