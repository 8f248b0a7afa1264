"""Several candle files (or a directory of them) with their symbol and timeframe.

Names follow freqtrade (``BTC_USDT-5m.feather``, futures ``BTC_USDT_USDT-5m-futures.feather``)
or ``SYMBOL-TF.csv`` (``EURUSD-1h.csv``). ``--symbol``/``--timeframe`` fill in what a name
does not give; a flag that contradicts a name is an error, as is a pooled file whose symbol
or timeframe is unknown (its rows could not be told apart or its horizon turned into bars).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.ml.barrier_spec import timeframe_seconds
from backend.ml.candles import CandleError, Candles, load_candles_file

SUFFIXES = (".csv", ".parquet", ".pq", ".feather", ".arrow")
_NAME = re.compile(r"^(?P<symbol>[A-Za-z0-9.]+(?:_[A-Za-z0-9.]+){0,2})-(?P<timeframe>\d+[smhdw])"
                   r"(?:-(?P<kind>spot|futures|mark|index|premiumIndex|funding_rate))?$")


@dataclass(frozen=True, slots=True)
class CandleFile:
    """One candle file and the series it holds (symbol and timeframe may be '')."""

    path: Path
    symbol: str
    timeframe: str


def name_parts(path: str | Path) -> tuple[str | None, str | None]:
    """(symbol, timeframe) from a file name, or (None, None) when it follows no convention.

    freqtrade writes ``BASE/QUOTE`` as ``BASE_QUOTE`` and ``BASE/QUOTE:SETTLE`` as
    ``BASE_QUOTE_SETTLE``; the symbol is returned in that pair form."""
    match = _NAME.match(Path(path).stem)
    if match is None:
        return None, None
    parts = match.group("symbol").split("_")
    symbol = parts[0] if len(parts) == 1 else f"{parts[0]}/{parts[1]}"
    if len(parts) == 3:
        symbol += f":{parts[2]}"
    return symbol, match.group("timeframe")


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise CandleError("candles", f"no candle files ({', '.join(SUFFIXES)}) in {p}")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise CandleError("candles", "give at least one candle file or directory")
    return out


def candle_files(paths: Sequence[str | Path], *, symbol: str | None = None,
                 timeframe: str | None = None) -> list[CandleFile]:
    """The files of `paths` (directories expanded, sorted by name) with symbol and timeframe.

    With one file, a symbol or timeframe that neither the name nor a flag gives stays ''
    (as before pooling). With several, each must be known.

    Raises
    ------
    CandleError
        A flag contradicts a name, a pooled file has no symbol or timeframe, or the same
        (symbol, timeframe) comes twice (its rows would count double).
    """
    files = _expand(paths)
    pooled = len(files) > 1
    out: list[CandleFile] = []
    for p in files:
        named_symbol, named_tf = name_parts(p)
        for what, named, flag in (("symbol", named_symbol, symbol),
                                  ("timeframe", named_tf, timeframe)):
            if named is not None and flag and flag != named:
                raise CandleError("candles", f"{p.name}: the name says {what} {named!r} but "
                                  f"--{what} says {flag!r}")
        sym, tf = named_symbol or symbol or "", named_tf or timeframe or ""
        if pooled and not (sym and tf):
            missing = " and ".join(w for w, v in (("symbol", sym), ("timeframe", tf)) if not v)
            raise CandleError("candles", f"{p.name}: no {missing}; name the file SYMBOL-TF.csv "
                              "(e.g. EURUSD-1h.csv) or BASE_QUOTE-TF.feather (e.g. "
                              "BTC_USDT-5m.feather), or give --symbol/--timeframe")
        if tf:
            timeframe_seconds(tf)  # a bad --timeframe fails here, before any work
        out.append(CandleFile(p, sym, tf))
    seen: dict[tuple[str, str], Path] = {}
    for f in out:
        key = (f.symbol, f.timeframe)
        if pooled and key in seen:
            raise CandleError("candles", f"{f.path.name} and {seen[key].name} both hold "
                              f"{f.symbol} {f.timeframe}")
        seen[key] = f.path
    return out


def count_rows(path: Path) -> int:
    """Rows of a candle file, read without materialising it: Parquet and Feather/Arrow from
    their metadata, CSV by counting lines while streaming (the header excluded).

    A tiny Parquet file can declare millions of rows (a 142 KB one holds 5M): a bound on
    uploads must be checked here, before pandas allocates them."""
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        # the larger of the footer's total and its row groups': either may be what a reader
        # allocates, and a crafted file could make them disagree
        return max(meta.num_rows, sum(meta.row_group(i).num_rows
                                      for i in range(meta.num_row_groups)))
    if suffix in {".feather", ".arrow"}:
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.feather as feather

        try:
            return int(ds.dataset(path, format="ipc").count_rows())  # batch headers only
        except pa.ArrowInvalid:  # Feather v1 is no IPC file; it is never compressed, so
            return feather.read_table(path, memory_map=True).num_rows  # mapping is cheap
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"  # a last line without its newline
    return max(0, lines - 1)


def load_candle_file(f: CandleFile, *, min_length: int = 1) -> Candles:
    """The candles of `f`, checked against its timeframe: the typical (median) spacing of
    the bars must be one bar (gaps such as weekends are fine)."""
    candles = load_candles_file(f.path, min_length=min_length)
    if f.timeframe and len(candles) > 1:
        spacing = float(np.median(np.diff(candles.time)))
        expected = timeframe_seconds(f.timeframe)
        if spacing != expected:
            raise CandleError("candles", f"{f.path.name}: bars are typically {spacing:g} s "
                              f"apart, but timeframe {f.timeframe} means {expected} s")
    return candles
