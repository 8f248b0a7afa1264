"""The inputs of POST /models/train: a form, a candles file or sample, base strategies."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import HTTPException, Request, UploadFile

from backend.api.errors import BadRequest
from backend.ml.candles import CandleError, Candles, load_candles_file, sample_candles_path
from backend.ml.labeling import STRATEGIES

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


def candles_from(file: UploadFile | None, sample: str | None) -> Candles | None:
    """The uploaded candles file, else the named sample, else None."""
    if file is not None and file.filename:
        suffix = Path(file.filename).suffix.lower()
        if suffix not in CANDLE_FILE_SUFFIXES:
            raise BadRequest("file", f"unsupported file type {suffix!r} (csv, parquet, feather)")
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp.write(file.file.read())
            tmp.flush()
            return _load(tmp.name, "file")
    if sample is not None:
        return _load(str(sample_candles_path(sample)), "sample")
    return None


def _load(path: str, field: str) -> Candles:
    try:
        return load_candles_file(path)
    except CandleError as exc:
        raise BadRequest(field, exc.reason) from None
    except Exception as exc:  # unreadable/corrupt file from pandas/pyarrow
        raise BadRequest(field, f"cannot read candles: {exc}") from None
