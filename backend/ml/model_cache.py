"""A verified local copy of the active model, so a restart during a database outage serves.

One file per model name in ``TML_DATA_DIR/model_copy`` (mode 0700), mode 0600::

    TML-MODEL-COPY 1 <sha256 of everything after this line>\\n
    <the ml_models row without its artifact, as one JSON line>\\n
    <the artifact bytes>

Written atomically (temp file, fsync, rename, directory fsync), so a crash leaves the old
copy or the new one, never half of one. Read back only when the file belongs to this
service's user, nobody else can write it, and both digests match: the file's own (header
and metadata: calibration, barrier...) and the artifact's, checked again by ``load_booster``
against the sha256 the registry recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backend.db.journal import sync_directory  # one directory fsync for every durable write
from backend.db.models import ModelRow
from backend.ml.registry import ModelIntegrityError
from backend.ml.trusted_files import check_private, secure_dir

MAGIC = b"TML-MODEL-COPY 1 "
DIR_NAME = "model_copy"
_DATETIMES = ("train_start", "train_end", "created_at", "activated_at")


class ModelCopyError(ModelIntegrityError):
    """The local copy is corrupt, tampered with, or not safely owned: it is not served."""


def copy_path(data_dir: Path, name: str) -> Path:
    """Where the copy of model ``name``'s active version lives (name percent-encoded)."""
    return Path(data_dir) / DIR_NAME / f"{quote(name, safe='')}.model"


def write_copy(data_dir: Path, row: ModelRow) -> Path:
    """Replace the copy of ``row.name`` with ``row`` (atomically, fsynced, mode 0600)."""
    path = copy_path(data_dir, row.name)
    try:
        secure_dir(path.parent)
    except PermissionError as exc:
        raise ModelCopyError(str(exc)) from None
    meta = {k: v for k, v in dataclasses.asdict(row).items() if k != "artifact"}
    for key in _DATETIMES:
        meta[key] = meta[key].isoformat() if meta[key] is not None else None
    body = json.dumps(meta).encode() + b"\n" + bytes(row.artifact)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sync_directory(path.parent)
    return path


def read_copy(data_dir: Path, name: str) -> ModelRow | None:
    """The verified row of the copy of ``name``, or None when there is none.

    Raises
    ------
    ModelCopyError
        Not owned by this user, writable by others, malformed, or a digest mismatch.
    """
    path = copy_path(data_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:  # e.g. a symlink planted in its place
        raise ModelCopyError(f"{path}: cannot open the local copy safely: {exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        try:  # a copy another user could have written would let them choose the model
            check_private(path, os.fstat(fh.fileno()))
            check_private(path.parent, os.stat(path.parent))
        except PermissionError as exc:
            raise ModelCopyError(str(exc)) from None
        data = fh.read()
    header, _, body = data.partition(b"\n")
    if not header.startswith(MAGIC) or not body:
        raise ModelCopyError(f"{path}: not a model copy (bad header)")
    recorded = header[len(MAGIC):].decode("ascii", "replace")
    digest = hashlib.sha256(body).hexdigest()
    if digest != recorded:
        raise ModelCopyError(f"{path}: sha256 is {digest} but the copy recorded {recorded}")
    meta_line, _, artifact = body.partition(b"\n")
    try:
        return _row(json.loads(meta_line), artifact)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelCopyError(f"{path}: unreadable metadata: {exc}") from exc


def _row(meta: dict[str, Any], artifact: bytes) -> ModelRow:
    for key in _DATETIMES:
        if meta[key] is not None:
            meta[key] = datetime.fromisoformat(meta[key])
    return ModelRow(**meta, artifact=artifact)
