"""The inputs of POST /models/train: a form, a candles file or sample, base strategies."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi import HTTPException, Request, UploadFile

from backend.api.errors import BadRequest
from backend.ml.candle_files import candle_files, load_candle_file
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
                 symbol: str | None, timeframe: str | None) -> list[TrainingCandles]:
    """The uploaded candle files (several: pooled into one model, each file's symbol and
    timeframe from its name or the form), else the named sample, else none."""
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
                path.write_bytes(f.file.read())
                paths.append(path)
            try:
                found = candle_files(paths, symbol=symbol, timeframe=timeframe)
            except CandleError as exc:
                raise BadRequest("file", exc.reason) from None
            return [TrainingCandles(_load(lambda f=f: load_candle_file(f), "file"), f.symbol,
                                    f.timeframe) for f in found]
    if sample is not None:
        path = sample_candles_path(sample)
        return [TrainingCandles(_load(lambda: load_candles_file(path), "sample"),
                                symbol or sample, timeframe or "")]
    return []


def _load(read: Callable[[], Candles], field: str) -> Candles:
    try:
        return read()
    except CandleError as exc:
        raise BadRequest(field, exc.reason) from None
    except Exception as exc:  # unreadable/corrupt file from pandas/pyarrow
        raise BadRequest(field, f"cannot read candles: {exc}") from None
