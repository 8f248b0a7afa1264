"""Compiled market features: one C call instead of a dozen TA-Lib calls and numpy operations.

``native/fs1_market.c`` is the C twin of the Python reference ``_market_values_py`` in
:mod:`backend.ml.market_features`. It is built at first use with the system C compiler
against the TA-Lib shared library that the ``ta-lib`` wheel ships (and the talib module has
loaded), cached by content hash, loaded with ctypes and checked against the Python reference
on real candles before it is used; like the compiled trees, it is loaded only when trusted
and unchanged since it was built (:mod:`backend.ml.trusted_files`). Any failure (no
compiler or headers, no TA-Lib library, an untrusted file, a build error, a mismatch)
returns None with one warning: the caller keeps the Python path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import talib

from backend.ml.candles import Candles, load_candles_file, make_candles
from backend.ml.trusted_files import check_trusted, publish, secure_dir, verified

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native") / "fs1_market.c"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "tml-native"
# No FMA contraction: products and sums round exactly as in numpy and Python. The source is
# C99; C11 because recent Python headers ask for it.
CFLAGS = ("-O2", "-std=c11", "-shared", "-fPIC", "-ffp-contract=off")
BUILD_TIMEOUT = 120  # seconds
TOLERANCE = 1e-9  # relative (absolute below 1): log/dot differ from numpy's by a few ulp
VERIFY_WINDOWS = 300

# Return codes of fs1_market_rows (> 0: a TA-Lib TA_RetCode).
TOO_FEW_CANDLES = -1
NO_MEMORY = -2
BAD_ARRAYS = -3  # an argument is not a plain contiguous int64/float64 ndarray of the right size

ReferenceFn = Callable[..., np.ndarray]
"""``(time, open, high, low, close, volume) -> (n_market,)`` of the last bar of a window."""

RowsFn = Callable[..., int]
"""``(time, open, high, low, close, volume, first, last, window, out) -> return code``."""


def talib_library() -> Path:
    """Path of the TA-Lib shared library the talib extension has loaded.

    Read from the process's memory map (the library actually in use); the wheel's bundled
    copy next to the talib package when there is no ``/proc`` (the same file on Linux).
    """
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if "libta-lib" in Path(path).name or "libta_lib" in Path(path).name:
                    return Path(path)
    except OSError:
        pass
    site = Path(talib.__file__).resolve().parents[1]
    for pattern in ("ta_lib.libs/libta-lib*", "talib/.dylibs/libta-lib*", "ta_lib.libs/libta_lib*"):
        found = sorted(site.glob(pattern))
        if found:
            return found[0]
    raise FileNotFoundError(f"no TA-Lib shared library loaded or found under {site}")


def _build_flags() -> list[str]:
    includes = (sysconfig.get_paths()["include"], np.get_include())
    return [*CFLAGS, *(f"-I{d}" for d in includes)]


def library_path(cache_dir: Path, ta_lib: Path, compiler: str) -> Path:
    """Where the library is cached: a directory named by the sha256 of everything that goes
    into the build (source, TA-Lib library, compiler, flags, numpy and Python versions)."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    for part in (str(ta_lib), compiler, *_build_flags(), np.__version__, sys.version):
        digest.update(b"\0" + part.encode())
    return Path(cache_dir) / digest.hexdigest() / "fs1_market.so"


def build(cache_dir: Path | None = None, *, compiler: str = "cc") -> Path:
    """Compile ``fs1_market.c`` unless already cached; returns the library path.

    Raises
    ------
    FileNotFoundError
        No TA-Lib library, or no such compiler.
    RuntimeError
        The compiler failed (its error output is in the message).
    """
    ta_lib = talib_library()
    cache = secure_dir(Path(cache_dir or DEFAULT_CACHE_DIR))
    libpath = library_path(cache, ta_lib, compiler)
    if verified(libpath, cache_dir=cache):  # PermissionError: another user's or writable
        return libpath
    libpath.parent.mkdir(exist_ok=True, mode=0o700)
    # Build under a unique name, then rename: a concurrent process sees no file or a whole one.
    tmp = libpath.with_name(f".{libpath.stem}.{os.getpid()}.{uuid.uuid4().hex}.so")
    cmd = [compiler, *_build_flags(), "-o", str(tmp), str(SOURCE), str(ta_lib),
           f"-Wl,-rpath,{ta_lib.parent}", "-lm"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed ({done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        publish(tmp, libpath)  # with the library's sha256 beside it
    finally:
        tmp.unlink(missing_ok=True)
    check_trusted(libpath, up_to=cache)
    return libpath


class NativeMarket:
    """The loaded library.

    Attributes
    ----------
    rows : callable
        ``rows(time, open, high, low, close, volume, first, last, window, out) -> int``:
        market rows of bars ``first..last-1`` of whole candle arrays (int64 time, float64
        prices), each from its trailing ``window`` candles, into ``out``, a C-contiguous
        float64 array of ``(last - first) * n_market`` items. Returns 0, or
        :data:`BAD_ARRAYS` when an argument is not a plain contiguous array of that kind
        and size (nothing written), or another error code. Holds the GIL for one row and
        releases it while computing many.
    n_market, min_candles : int
        Number of market features and the smallest window the library accepts.
    """

    def __init__(self, libpath: Path) -> None:
        lib = ctypes.PyDLL(str(libpath))  # the call reads Python objects: keep the GIL
        fn = lib.fs1_market_rows
        obj, size = ctypes.py_object, ctypes.c_ssize_t
        fn.argtypes = [obj] * 7 + [size] * 3 + [obj]
        fn.restype = ctypes.c_int
        self.path = libpath
        self.n_market = int(lib.fs1_n_market())
        self.min_candles = int(lib.fs1_min_candles())
        # py_object arguments cost ~0.1 us each; array addresses via .ctypes or
        # __array_interface__ ~0.8 us each. The C side reads the ndarray structs itself and
        # checks the type against this one.
        self.rows: RowsFn = functools.partial(fn, np.ndarray)
        self._lib = lib  # keep the library loaded as long as `rows` may be called


def _sample_candles() -> Candles:
    # The EURUSD file of the backtesting package, located without importing it (its import
    # pulls in bokeh: ~0.3 s).
    spec = importlib.util.find_spec("backtesting")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the backtesting package (sample candles) is not installed")
    return load_candles_file(Path(spec.origin).parent / "test" / "EURUSD.csv")


def verification_cases(window: int, min_candles: int) -> list[tuple[Candles, int, int]]:
    """``(candles, bar, window)`` cases: real EURUSD windows (full, shortest, and longer than
    the C stack buffers), no volume at all, flat bars (open = high = low = close) at the end,
    and a window of identical bars (zero ATR: the NaN guards)."""
    c = _sample_candles()
    rng = np.random.default_rng(0)
    cases = [(c, int(t), window) for t in rng.integers(window - 1, len(c), VERIFY_WINDOWS)]
    cases += [(c.head(min_candles), min_candles - 1, window), (c, len(c) - 1, 600)]
    piece = c.head(window + 20)
    n = len(piece)
    cases.append((make_candles(piece.time, piece.open, piece.high, piece.low, piece.close,
                               np.zeros(n)), n - 1, window))
    price = float(piece.close[-21])  # the last 20 bars: flat at the close before, no volume
    ohlc = [np.r_[a[:-20], np.full(20, price)] for a in (piece.open, piece.high, piece.low,
                                                           piece.close)]
    flat = make_candles(piece.time, *ohlc, np.r_[piece.volume[:-20], np.zeros(20)])
    cases += [(flat, t, window) for t in (n - 20, n - 15, n - 1)]
    same = make_candles(piece.time, *([np.full(n, price)] * 4), piece.volume)
    cases.append((same, n - 1, window))
    return cases


def _arrays(c: Candles) -> tuple[np.ndarray, ...]:
    return (c.time, c.open, c.high, c.low, c.close, c.volume)


def verify(native: NativeMarket, reference: ReferenceFn, *, window: int, min_candles: int
           ) -> None:
    """Raise ValueError unless the library matches ``reference`` on :func:`verification_cases`
    within :data:`TOLERANCE` with the same NaN pattern."""
    if native.min_candles != min_candles:
        raise ValueError(f"library min_candles {native.min_candles} != {min_candles}")
    for c, t, w in verification_cases(window, min_candles):
        arrays = _arrays(c)
        expected = reference(*(a[max(0, t + 1 - w):t + 1] for a in arrays))
        got = np.empty(native.n_market)
        rc = native.rows(*arrays, t, t + 1, w, got)
        if rc != 0 or got.shape != expected.shape:
            raise ValueError(f"library returned code {rc} for bar {t} (window {w})")
        ok = (np.isnan(got) & np.isnan(expected)) | (
            np.abs(got - expected) <= TOLERANCE * np.maximum(1.0, np.abs(expected)))
        if not ok.all():
            raise ValueError(f"library differs from the Python reference at bar {t} (window "
                             f"{w}) in feature {int(np.argmin(ok))}")


def load(reference: ReferenceFn, *, min_candles: int, window: int = 100,
         enabled: bool = True, cache_dir: Path | None = None, compiler: str = "cc"
         ) -> NativeMarket | None:
    """Build (or reuse), load and verify the compiled market features.

    Parameters
    ----------
    reference : the Python market-row function to verify against.
    min_candles, window : the extractor's warm-up and default window.
    enabled : False skips everything and returns None (the Python path).
    cache_dir : where built libraries are kept (default ``DEFAULT_CACHE_DIR``).
    compiler : the C compiler command.

    Returns
    -------
    NativeMarket, or None after one warning when anything fails. Never raises.
    """
    if not enabled:
        return None
    try:
        native = NativeMarket(build(cache_dir, compiler=compiler))
        verify(native, reference, window=window, min_candles=min_candles)
    except Exception as exc:  # no compiler/headers/TA-Lib, build error, mismatch
        log.warning("compiled market features unavailable, using the Python path: %s", exc)
        return None
    return native
