"""Candle files that are tiny on disk and huge in memory (what item 11 of issue 12 found)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def tiny_parquet(path: Path, rows: int = 5_000_000) -> Path:
    """Valid hourly candles, ``rows`` of them, in ~140 KB: delta-encoded times and
    dictionary/RLE-encoded constant prices (5M rows would take ~240 MB as a DataFrame)."""
    ones = pa.array(np.ones(rows))
    table = pa.table({"time": pa.array(np.arange(rows, dtype=np.int64) * 3600),
                      **{c: ones for c in ("open", "high", "low", "close", "volume")}})
    pq.write_table(table, path, use_dictionary=["open", "high", "low", "close", "volume"],
                   column_encoding={"time": "DELTA_BINARY_PACKED"}, compression="zstd")
    return path


def with_garbage_pages(path: Path) -> Path:
    """The same file with its data pages overwritten and its footer intact: a reader that
    touches a row group fails; one that reads only the footer does not notice."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    data[4:len(data) - footer] = b"\xff" * (len(data) - footer - 4)
    path.write_bytes(bytes(data))
    return path
