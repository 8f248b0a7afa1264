"""The inputs of POST /models/train: a form, a candles file or sample, base strategies."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi import HTTPException, Request, UploadFile

from backend.api.errors import BadRequest
from backend.ml.candle_files import candle_files, count_rows, load_candle_file
from backend.ml.candles import CandleError, Candles, load_candles_file, sample_candles_path
from backend.ml.labeling import STRATEGIES
from backend.ml.training import TrainingCandles

CANDLE_FILE_SUFFIXES = {".csv", ".parquet", ".pq", ".feather", ".arrow"}  # the ones accepted
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def require_form(request: Request) -> None:
    """415 unless the body is a form: a JSON body would be ignored and the job run on
    defaults (promotion included)."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        raise HTTPException(415, "send the form as multipart/form-data or "
                                 "application/x-www-form-urlencoded")


def strategies_from(text: str | None) -> list[str] | None:
    """Comma-separated base strategies, each a known one; None for all."""
    chosen = [s.strip() for s in (text or "").split(",") if s.strip()] or None
    for s in chosen or []:
        if s not in STRATEGIES:
            raise BadRequest("strategies", f"unknown strategy {s!r}; known: {sorted(STRATEGIES)}")
    return chosen


def candles_from(files: Sequence[UploadFile] | None, sample: str | None, *,
                 symbol: str | None, timeframe: str | None,
                 max_rows: int) -> list[TrainingCandles]:
    """The uploaded candle files (several: pooled into one model, each file's symbol and
    timeframe from its name or the form), else the named sample, else none.

    Called from a sync route, so the files are read in a worker thread, never on the event
    loop. At most ``max_rows`` rows in all: counted from each file's metadata (or by
    streaming a CSV) before any file is materialised."""
    uploads = [f for f in files or () if f.filename]
    if uploads:
        with tempfile.TemporaryDirectory(prefix="tml-upload-") as tmp:
            paths = []
            for f in uploads:
                name = Path(f.filename or "").name  # no directories from the client
                if Path(name).suffix.lower() not in CANDLE_FILE_SUFFIXES:
                    raise BadRequest("file", f"{name}: unsupported file type "
                                             f"{Path(name).suffix!r} (csv, parquet, feather)")
                if len(uploads) > 1 and any(p.name == name for p in paths):
                    raise BadRequest("file", f"{name}: uploaded twice")
                path = Path(tmp) / name
                with path.open("wb") as out:
                    shutil.copyfileobj(f.file, out)
                paths.append(path)
            _check_rows(paths, max_rows, tmp)
            try:
                found = candle_files(paths, symbol=symbol, timeframe=timeframe)
            except CandleError as exc:
                raise BadRequest("file", _hide(exc.reason, tmp)) from None
            return [TrainingCandles(_load(lambda f=f: load_candle_file(f), "file", tmp,
                                          f.path.name), f.symbol, f.timeframe)
                    for f in found]
    if sample is not None:
        path = sample_candles_path(sample)
        return [TrainingCandles(_load(lambda: load_candles_file(path), "sample", None),
                                symbol or sample, timeframe or "")]
    return []


def _check_rows(paths: Sequence[Path], max_rows: int, tmp: str) -> None:
    total = 0
    for path in paths:
        try:
            total += count_rows(path)
        except Exception as exc:  # not Parquet/Feather after all, truncated footer, ...
            raise BadRequest("file", _hide(f"{path.name}: cannot read candles: {exc}",
                                           tmp)) from None
        if total > max_rows:
            held = f"{total:,} rows" + (" with the files before it" if len(paths) > 1 else "")
            # 422 before pandas allocates anything: a 142 KB Parquet file can hold 5M rows
            raise BadRequest("file", f"{path.name}: {held}, more than the {max_rows:,} rows "
                                     "an upload may hold (TML_MAX_UPLOAD_ROWS)")


def _hide(reason: str, tmp: str | None) -> str:
    """The message without the server's temporary directory (pandas and pyarrow name the
    file they failed on by its full path)."""
    return reason if tmp is None else reason.replace(f"{tmp}/", "").replace(tmp, "")


def _load(read: Callable[[], Candles], field: str, tmp: str | None,
          name: str | None = None) -> Candles:
    try:
        return read()
    except CandleError as exc:
        reason = exc.reason
    except Exception as exc:  # unreadable/corrupt file from pandas/pyarrow
        reason = f"cannot read candles: {exc}"
    reason = _hide(reason, tmp)
    if name and not reason.startswith(f"{name}:"):  # which of several files
        reason = f"{name}: {reason}"
    raise BadRequest(field, reason)
