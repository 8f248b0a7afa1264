"""Convert a candle file the service reads (CSV/Parquet/Feather, see
``backend.ml.candles.load_candles_file``) into freqtrade's data directory.

    python -m integrations.freqtrade.convert --candles FILE --pair EUR/USD --timeframe 1h \\
        --datadir user_data/data/binance

Writes ``<BASE>_<QUOTE>-<tf>.feather`` (columns date/open/high/low/close/volume, dates UTC):
the file freqtrade's ``dataformat_ohlcv: feather`` loads. Runs in the service's environment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from backend.ml.candles import Candles, load_candles_file


def freqtrade_name(pair: str, timeframe: str) -> str:
    """``EUR/USD`` + ``1h`` -> ``EUR_USD-1h.feather`` (freqtrade's pair_to_filename)."""
    safe = pair.replace("/", "_").replace(":", "_").replace(" ", "_")
    return f"{safe}-{timeframe}.feather"


def to_frame(candles: Candles) -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.to_datetime(candles.time, unit="s", utc=True).as_unit("ms"),
        "open": candles.open, "high": candles.high, "low": candles.low,
        "close": candles.close, "volume": candles.volume,
    })


def convert(candles_file: str | Path, *, pair: str, timeframe: str, datadir: str | Path,
            start: int | None = None, stop: int | None = None) -> Path:
    """Write rows ``[start, stop)`` of ``candles_file`` as freqtrade candles; the path."""
    frame = to_frame(load_candles_file(candles_file)).iloc[start:stop].reset_index(drop=True)
    out = Path(datadir) / freqtrade_name(pair, timeframe)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_feather(out, compression_level=9, compression="lz4")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candles", required=True, help="CSV, Parquet or Feather candles")
    ap.add_argument("--pair", required=True, help="freqtrade pair, e.g. EUR/USD")
    ap.add_argument("--timeframe", required=True, help="e.g. 1h, 1d")
    ap.add_argument("--datadir", required=True, help="freqtrade data dir (of the exchange)")
    ap.add_argument("--start", type=int, default=None, help="first row (default: all)")
    ap.add_argument("--stop", type=int, default=None, help="row after the last")
    args = ap.parse_args(argv)
    out = convert(args.candles, pair=args.pair, timeframe=args.timeframe,
                  datadir=args.datadir, start=args.start, stop=args.stop)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
