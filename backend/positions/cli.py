"""``python -m backend backtest``: compare exit policies on a candle file.

Example::

    python -m backend backtest --candles EURUSD.csv --strategy ma_cross --split 0.5 \
        --fee-bps 0.2 --slippage-bps 0.3 --chart equity.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from backend.cli_help import HelpFormatter
from backend.ml.candles import CandleError, load_candles_file
from backend.positions.backtester import BacktestConfig, PolicyResult
from backend.positions.params import params_to_dict
from backend.positions.policies import POLICIES
from backend.positions.report import markdown_table
from backend.positions.state import PositionError
from backend.positions.tuning import market, walk_forward

STRATEGY_NAMES = ("ma_cross", "rsi_reversion", "breakout")
# ml_exit needs a model's probability provider, which a candle file does not have
BACKTESTABLE = tuple(p for p in POLICIES if p != "ml_exit")
MIN_CANDLES = 50


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend backtest",
                                formatter_class=HelpFormatter,
                                description="Backtest exit policies over a base strategy's "
                                            "entries (docs/positions.md).")
    p.add_argument("--candles", required=True, help="CSV, Parquet or Feather OHLCV file")
    p.add_argument("--strategy", default="ma_cross",
                   help=f"comma-separated, or 'all' ({', '.join(STRATEGY_NAMES)})")
    p.add_argument("--policies", default=",".join(BACKTESTABLE),
                   help="comma-separated policy names (the fixed baseline always runs)")
    p.add_argument("--fee-bps", type=float, default=0.0, help="per fill, on notional")
    p.add_argument("--slippage-bps", type=float, default=0.0, help="per fill, adverse")
    p.add_argument("--entry", choices=["signal_close", "next_open"], default="signal_close",
                   help="fill price of an entry: the signal bar's close or the next open")
    p.add_argument("--independent", action="store_true",
                   help="manage every signal (overlapping positions) instead of one "
                        "position at a time")
    p.add_argument("--split", type=float, default=None,
                   help="tune 'combined' on this first fraction, report on the rest "
                        "(default: no split, no tuning)")
    p.add_argument("--json", action="store_true", help="print one JSON object, a key per "
                                                       "policy")
    p.add_argument("--chart", default=None,
                   help="write the equity curves to this PNG (with --split, the "
                        "out-of-sample part is shaded; default: no chart)")
    return p


def _names(raw: str, known: Sequence[str], what: str) -> list[str]:
    names = list(known) if raw == "all" else [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise PositionError(what, f"unknown {what} {', '.join(unknown) or raw!r} "
                                  f"(known: {', '.join(known)})")
    return names


def _as_json(results: dict[str, PolicyResult]) -> dict[str, Any]:
    return {name: {"params": params_to_dict(r.params), "summary": r.summary.to_dict()}
            for name, r in results.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        strategies = _names(args.strategy, STRATEGY_NAMES, "strategy")
        policies = _names(args.policies, BACKTESTABLE, "policies")
        config = BacktestConfig(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps,
                                entry=args.entry, one_position=not args.independent)
        candles = load_candles_file(args.candles, min_length=MIN_CANDLES)
        m = market(str(args.candles), candles, strategies)
        results, tuning = walk_forward(m, ["fixed", *policies], config, split=args.split)
    except (CandleError, PositionError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.chart:
        from backend.positions.chart import plot_equity

        oos = (None if args.split is None
               else int(candles.time[int(len(candles) * args.split)]))  # split_market's cut
        written = plot_equity(results, args.chart, out_of_sample_from=oos,
                              title=f"{Path(args.candles).name}: {', '.join(strategies)}")
        print(f"wrote {written}", file=sys.stderr)  # stderr: --json keeps stdout one object
    if args.json:
        sys.stdout.write(orjson.dumps(_as_json(results)).decode() + "\n")
        return 0
    part = "whole file" if args.split is None else f"after the first {args.split:.0%}"
    print(f"{len(candles)} candles, strategies {', '.join(strategies)}, report on {part}, "
          f"fee {args.fee_bps} bps + slippage {args.slippage_bps} bps per fill")
    if tuning is not None:
        print(f"combined tuned on the first part: {params_to_dict(tuning.best)} "
              f"(target met there: {tuning.meets_target})")
    print(markdown_table({name: r.summary for name, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
