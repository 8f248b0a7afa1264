"""Exit-policy report on EURUSD hourly and GOOG daily (docs/positions.md quotes it).

    python bench/backtest_report.py            # tables on the second halves (out-of-sample)
    python bench/backtest_report.py --tune     # redo the tuning of the shipped defaults
    python bench/backtest_report.py --chart-dir bench/out   # + equity PNGs

The shipped ``CombinedParams`` defaults were chosen by ``--tune``: the grid in
backend/positions/tuning.py on the FIRST half of both files only (all three base
strategies, the costs below). The report runs every policy with its defaults on the
SECOND halves, which the tuning never saw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.ml.candles import load_candles_file, sample_candles_path  # noqa: E402
from backend.positions.backtester import BacktestConfig, run_policy  # noqa: E402
from backend.positions.params import CombinedParams, params_to_dict  # noqa: E402
from backend.positions.report import markdown_table  # noqa: E402
from backend.positions.tuning import (  # noqa: E402
    TARGET_LOSS_CUT,
    Market,
    backtest_market,
    market,
    split_market,
    tune_combined,
)

DATASETS = {"EURUSD": "EURUSD hourly", "GOOG": "GOOG daily"}
STRATEGIES = ("ma_cross", "rsi_reversion", "breakout")
POLICIES = ("fixed", "atr_trailing", "breakeven", "time_stop", "partial", "combined")


def paired(m: Market, config: BacktestConfig) -> tuple[int, float, float]:
    """Combined minus fixed on exactly the same signals (every signal managed on its
    own): (n, mean R difference, its standard error). Pairing removes the entry noise
    that an unpaired comparison carries."""
    independent = BacktestConfig(**{**{f: getattr(config, f) for f in config.__slots__},
                                    "one_position": False})
    diffs: list[float] = []
    for entries in m.entries.values():
        fixed = run_policy(m.candles, entries, "fixed", None, independent)
        combined = run_policy(m.candles, entries, "combined", None, independent)
        assert [t.signal_pos for t in fixed] == [t.signal_pos for t in combined]
        diffs += [c.r_multiple - f.r_multiple for f, c in zip(fixed, combined, strict=True)]
    d = np.array(diffs)
    return d.size, float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--fee-bps", type=float, default=0.2, help="fee per fill, in bps of notional")
    p.add_argument("--slippage-bps", type=float, default=0.3,
                   help="adverse slippage per fill, in bps")
    p.add_argument("--split", type=float, default=0.5,
                   help="fraction of each file for tuning; the report runs on the rest")
    p.add_argument("--tune", action="store_true", help="redo the tuning of the defaults")
    p.add_argument("--chart-dir", type=Path, default=None,
                   help="write equity PNGs into this directory (default: no charts)")
    args = p.parse_args(argv)
    config = BacktestConfig(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
    markets = {name: market(name, load_candles_file(sample_candles_path(name)), STRATEGIES)
               for name in DATASETS}
    parts = {name: split_market(m, args.split) for name, m in markets.items()}
    print(f"costs per fill: fee {args.fee_bps} bps + slippage {args.slippage_bps} bps; "
          f"strategies {', '.join(STRATEGIES)}; split {args.split}")

    if args.tune:
        result = tune_combined([tune for tune, _ in parts.values()], config)
        chosen = params_to_dict(result.best)
        print(f"\ntuned on the first part of {', '.join(DATASETS)}: {chosen}")
        print(f"target met on the tuning part: {result.meets_target}")
        shipped = params_to_dict(CombinedParams())
        print("shipped CombinedParams defaults " +
              ("match" if chosen == shipped else f"DIFFER: {shipped}"))
        return 0

    verdicts = []
    for name, (tune, rest) in parts.items():
        for label, part in (("tuning part (in-sample)", tune),
                            ("report part (out-of-sample)", rest)):
            results = backtest_market(part, dict.fromkeys(POLICIES), config)
            first, last = _span(part)
            print(f"\n### {DATASETS[name]}, {label}: signals {first} .. {last}\n")
            print(markdown_table({k: v.summary for k, v in results.items()}))
            if part is rest:
                c, f = results["combined"].summary, results["fixed"].summary
                n, diff, se = paired(rest, config)
                cut = -(c.avg_loss_vs_baseline or 0.0)
                verdicts.append(
                    f"{DATASETS[name]}: average loss {f.avg_loss_r:.3f} R -> "
                    f"{c.avg_loss_r:.3f} R ({cut:+.1f} % cut, target {TARGET_LOSS_CUT:.0f} %: "
                    f"{'met' if cut >= TARGET_LOSS_CUT else 'NOT met'}); expectancy "
                    f"{f.expectancy_r:+.3f} -> {c.expectancy_r:+.3f} R "
                    f"({'kept' if c.expectancy_r >= f.expectancy_r else 'NOT kept'}); "
                    f"paired on the same {n} signals: {diff:+.3f} R/trade (SE {se:.3f})")
                if args.chart_dir:
                    from backend.positions.chart import plot_equity

                    out = plot_equity(results, args.chart_dir / f"equity_{name}.png",
                                      title=f"{DATASETS[name]}, out-of-sample half")
                    print(f"\nchart: {out}")
    print("\n### Verdict (default policy 'combined' vs the fixed baseline, out-of-sample)\n")
    print("\n".join(f"- {v}" for v in verdicts))
    return 0


def _span(m: Market) -> tuple[str, str]:
    pos = np.concatenate([e["pos"].to_numpy() for e in m.entries.values()])
    t = m.candles.time[[pos.min(), pos.max()]].astype("datetime64[s]")
    return str(t[0])[:10], str(t[1])[:10]


if __name__ == "__main__":
    sys.exit(main())
