"""count_rows: the rows of a candle file without reading it, equal to what a read gives."""

from __future__ import annotations

from pathlib import Path

import pyarrow.feather as feather
import pytest

from backend.ml.candle_files import count_rows
from backend.ml.candles import load_candles_file
from tests.utils.candle_bombs import tiny_parquet, with_garbage_pages
from tests.utils.market_slices import sample


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".feather", ".feather-v1"])
def test_count_rows_matches_the_rows_read(tmp_path: Path, suffix: str) -> None:
    frame = sample("GOOG").to_frame().iloc[:321].reset_index(names="time")
    path = tmp_path / f"GOOG-1d{suffix.split('-')[0]}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        feather.write_feather(frame, path, version=1 if suffix.endswith("v1") else 2)
    assert count_rows(path) == len(load_candles_file(path)) == 321


def test_a_csv_without_its_last_newline_is_counted_whole(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"time,open,high,low,close,volume\n1,1,1,1,1,1\n2,1,1,1,1,1")
    assert count_rows(path) == 2
    path.write_bytes(b"time,open,high,low,close,volume\n")
    assert count_rows(path) == 0


def test_parquet_rows_come_from_the_footer(tmp_path: Path) -> None:
    path = with_garbage_pages(tiny_parquet(tmp_path / "big.parquet", rows=2_000_000))
    assert count_rows(path) == 2_000_000  # no data page was decoded
