"""The one check both compiled libraries pass before dlopen (backend/ml/trusted_files.py),
exercised through the market-features library: another user's or a writable library is
refused, one that differs from its recorded sha256 is built again."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from backend.ml import market_features as mf
from backend.ml import native_features
from backend.ml.market_features import MIN_CANDLES
from backend.ml.trusted_files import check_trusted, digest_path, secure_dir, sha256_of
from tests.utils.planted import NOBODY, planted_library


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A market-features library built into a fresh cache (its own, with its record)."""
    return native_features.build(tmp_path / "cache")


def test_the_market_features_library_is_recorded_and_reused(built: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert digest_path(built).read_text().strip() == sha256_of(built)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    mtime = built.stat().st_mtime_ns
    assert native_features.build(cache) == built
    assert built.stat().st_mtime_ns == mtime  # trusted and unchanged: not rebuilt


@pytest.mark.parametrize("tamper", ["other_owner", "group_writable", "other_owner_dir"])
def test_an_untrusted_market_features_library_is_refused(
        built: Path, tmp_path: Path, tamper: str, caplog: pytest.LogCaptureFixture):
    cache, marker = tmp_path / "cache", tmp_path / "constructor-ran"
    planted_library(built, marker, compiler="cc")  # what native_features compiles with
    digest_path(built).write_text(sha256_of(built))
    if tamper == "other_owner":
        os.chown(built, NOBODY, NOBODY)
    elif tamper == "group_writable":
        os.chmod(built, 0o770)
    else:  # the digest directory between the cache and the library
        os.chown(built.parent, NOBODY, NOBODY)
    with pytest.raises(PermissionError, match="not loading it"):
        native_features.build(cache)
    with caplog.at_level(logging.WARNING, logger="backend.ml.native_features"):
        assert native_features.load(mf._market_values_py, min_candles=MIN_CANDLES,
                                    cache_dir=cache) is None  # the Python path instead
    assert "not loading it" in caplog.text
    assert not marker.exists()


def test_a_changed_market_features_library_is_rebuilt(built: Path, tmp_path: Path):
    marker = tmp_path / "constructor-ran"
    planted_library(built, marker, compiler="cc")  # same owner, record left as built
    lib = native_features.load(mf._market_values_py, min_candles=MIN_CANDLES,
                               cache_dir=tmp_path / "cache")
    assert lib is not None and lib.path == built
    assert not marker.exists()
    assert digest_path(built).read_text().strip() == sha256_of(built)


def test_another_users_cache_directory_is_refused_and_links_are_not_followed(tmp_path: Path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(PermissionError, match=f"belongs to another user \\(uid {NOBODY}\\)"):
        secure_dir(theirs)
    mine = secure_dir(tmp_path / "mine")
    (mine / "real.so").write_bytes(b"x")
    (mine / "link.so").symlink_to(mine / "real.so")
    check_trusted(mine / "real.so", up_to=mine)
    with pytest.raises(PermissionError, match="is a symbolic link"):
        check_trusted(mine / "link.so", up_to=mine)


def test_a_cache_in_a_directory_anyone_may_rename_in_is_refused(tmp_path: Path):
    open_parent = tmp_path / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)
    with pytest.raises(PermissionError, match="writable by others without the sticky bit"):
        secure_dir(open_parent / "cache")
    os.chmod(open_parent, 0o1777)  # sticky, as /tmp: only the owner renames its entries
    assert secure_dir(open_parent / "cache") == open_parent / "cache"
