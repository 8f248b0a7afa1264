"""Native code loaded from a cache directory: only what this user built, unchanged since
(and the local model copy, which decides what is served: the same owner and mode checks).

dlopen runs a library's constructors before a single symbol is looked up, so a library is
checked before it is loaded: the cache directory belongs to this user with mode 0700, the
library (and its digest file) belong to this user and are writable by no one else, and its
sha256 is the one recorded when it was built here. Both compiled libraries (model trees and
market features) go through these functions.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from pathlib import Path

DIGEST_SUFFIX = ".sha256"


def _owned_by_me(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def secure_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) with mode 0700, or tighten an existing one of ours
    to 0700 (e.g. a 1777 directory made by hand).

    Raises
    ------
    PermissionError
        ``path`` is not a directory, belongs to another user, or sits in a directory that
        anyone may write without the sticky bit.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{path} is not a directory; not using it as a cache")
    if not _owned_by_me(st):
        raise PermissionError(f"{path} belongs to another user (uid {st.st_uid}); not "
                              "loading code from it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
    parent = path.resolve().parent.stat()
    if parent.st_mode & stat.S_IWOTH and not parent.st_mode & stat.S_ISVTX:
        # anyone could rename our directory away and put theirs in its place (/tmp is
        # sticky: only the owner may rename there)
        raise PermissionError(f"{path.resolve().parent} is writable by others without the "
                              f"sticky bit; not loading code from {path}")
    return path


def check_private(path: Path, st: os.stat_result) -> None:
    """Refuse a file (or directory) of another user, or one group or others may write: its
    contents decide what runs or what is served.

    Raises
    ------
    PermissionError
        Naming ``path`` and why.
    """
    if not _owned_by_me(st):
        raise PermissionError(f"{path} belongs to another user (uid {st.st_uid}); "
                              "not loading it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"{path} is writable by group or others (mode "
                              f"{stat.S_IMODE(st.st_mode):o}); not loading it")


def check_trusted(path: Path, *, up_to: Path) -> None:
    """Refuse ``path`` unless it and every directory from it up to ``up_to`` belong to this
    user and are writable by no one else (group or others could swap the file).

    Raises
    ------
    PermissionError
        Naming the first offending file or directory.
    """
    top = Path(up_to).resolve()
    current = Path(path)
    while True:
        is_top = current.resolve() == top
        st = current.stat() if is_top else current.lstat()  # the top may be a configured link
        if stat.S_ISLNK(st.st_mode):  # whoever owns the target decides what loads
            raise PermissionError(f"{current} is a symbolic link; not loading it")
        check_private(current, st)
        if is_top or current.parent == current:
            return
        current = current.parent


def digest_path(libpath: Path) -> Path:
    """The file holding the sha256 recorded when ``libpath`` was built."""
    return libpath.with_name(libpath.name + DIGEST_SUFFIX)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verified(libpath: Path, *, cache_dir: Path) -> bool:
    """True when ``libpath`` may be loaded: trusted (see :func:`check_trusted`) and its
    sha256 equal to the recorded one. False when it or its record is missing or the digests
    differ: build it again, never load it.

    Raises
    ------
    PermissionError
        The library, its record or a directory above them fails :func:`check_trusted`.
    """
    record = digest_path(libpath)
    if not libpath.exists() or not record.exists():
        return False
    check_trusted(libpath, up_to=cache_dir)
    check_trusted(record, up_to=cache_dir)
    # hashed, then loaded by path: safe because no one else can write in the checked dirs
    return record.read_text(encoding="ascii").strip() == sha256_of(libpath)


def publish(built: Path, libpath: Path) -> None:
    """Move a freshly built library to ``libpath`` and record its sha256 beside it.

    The record is written last: a crash in between leaves a mismatch, hence a rebuild."""
    os.chmod(built, 0o700)
    record_tmp = libpath.with_name(f".{libpath.name}.{os.getpid()}.{uuid.uuid4().hex}"
                                   f"{DIGEST_SUFFIX}")
    try:
        record_tmp.write_text(sha256_of(built) + "\n", encoding="ascii")
        os.chmod(record_tmp, 0o600)
        os.replace(built, libpath)
        os.replace(record_tmp, digest_path(libpath))
    finally:
        record_tmp.unlink(missing_ok=True)
