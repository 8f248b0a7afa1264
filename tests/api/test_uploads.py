"""Uploaded candle files (api/uploads.py): rows bounded before anything is materialised,
messages that never show the server's temporary paths."""

from __future__ import annotations

import io
import resource
import tempfile
from pathlib import Path

import pytest
from starlette.datastructures import UploadFile

from backend.api.errors import BadRequest
from backend.api.uploads import candles_from
from tests.utils.candle_bombs import tiny_parquet, with_garbage_pages
from tests.utils.market_slices import write_slice
from tests.utils.service import ADMIN_KEY, Service


def _upload(path: Path, name: str | None = None) -> UploadFile:
    return UploadFile(io.BytesIO(path.read_bytes()), filename=name or path.name)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def test_a_tiny_parquet_of_millions_of_rows_is_refused_before_it_is_read(tmp_path: Path):
    bomb = tiny_parquet(tmp_path / "EURUSD-1h.parquet")
    assert bomb.stat().st_size < 200_000
    before = _peak_rss_mb()
    with pytest.raises(BadRequest) as info:
        candles_from([_upload(bomb)], None, symbol=None, timeframe=None, max_rows=1_000_000)
    assert info.value.field == "file"
    assert info.value.reason == ("EURUSD-1h.parquet: 5,000,000 rows, more than the 1,000,000 "
                                 "rows an upload may hold (TML_MAX_UPLOAD_ROWS)")
    # materialised, 5M rows x 6 columns are >= 240 MB (pandas, then the float arrays)
    assert _peak_rss_mb() - before < 100


def test_the_bound_comes_from_the_footer_not_the_row_groups(tmp_path: Path):
    bomb = with_garbage_pages(tiny_parquet(tmp_path / "EURUSD-1h.parquet"))
    with pytest.raises(BadRequest, match="5,000,000 rows, more than"):
        candles_from([_upload(bomb)], None, symbol=None, timeframe=None, max_rows=1_000_000)


def test_rows_of_several_files_count_together_and_csv_is_counted_too(tmp_path: Path):
    a = write_slice(tmp_path / "EURUSD-1h.csv", "EURUSD", 0, 300)
    b = write_slice(tmp_path / "GOOG-1d.csv", "GOOG", 0, 300)
    loaded = candles_from([_upload(a), _upload(b)], None, symbol=None, timeframe=None,
                          max_rows=600)
    assert [len(c.candles) for c in loaded] == [300, 300]
    with pytest.raises(BadRequest) as info:
        candles_from([_upload(a), _upload(b)], None, symbol=None, timeframe=None,
                     max_rows=599)
    assert info.value.reason == ("GOOG-1d.csv: 600 rows with the files before it, more than "
                                 "the 599 rows an upload may hold (TML_MAX_UPLOAD_ROWS)")


@pytest.mark.parametrize("name, content", [
    ("EURUSD-1h.parquet", b"PAR1 not parquet at all"),
    ("EURUSD-1h.feather", b"ARROW1 nor feather"),
    ("EURUSD-1h.csv", b"time,open\n1,2\n"),
])
def test_errors_never_show_the_temporary_directory(tmp_path: Path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadRequest) as info:
        candles_from([_upload(path)], None, symbol=None, timeframe=None, max_rows=1_000_000)
    assert info.value.reason.startswith(name) or name in info.value.reason
    assert "/tmp" not in info.value.reason
    assert tempfile.gettempdir() not in info.value.reason
    assert "tml-upload-" not in info.value.reason


def _peak_rss_of(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmHWM:"))) / 1024


def test_the_service_refuses_the_bomb_with_a_422_and_does_not_grow(service: Service,
                                                                   tmp_path: Path):
    bomb = tiny_parquet(tmp_path / "EURUSD-1h.parquet")
    broken = with_garbage_pages(tiny_parquet(tmp_path / "GOOG-1d.parquet"))
    before = _peak_rss_of(service.proc.pid)
    with service.client(key=ADMIN_KEY) as http:
        for path in (bomb, broken):
            with open(path, "rb") as fh:
                r = http.post("/api/v1/models/train", data={"use_database": "false"},
                              files={"file": (path.name, fh, "application/octet-stream")})
            assert r.status_code == 422, r.text
            assert f"{path.name}: 5,000,000 rows, more than the 1,000,000 rows an upload may " \
                   "hold (TML_MAX_UPLOAD_ROWS)" in r.text
            assert "/tmp" not in r.text and tempfile.gettempdir() not in r.text
    assert _peak_rss_of(service.proc.pid) - before < 100  # was ~770 MB
