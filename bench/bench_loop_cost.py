"""Cost of the loop: the same freqtrade backtest without the service and with it, side by
side in one run (docs/performance.md, "Cost of the loop").

    python bench/bench_loop_cost.py [--candles FILE] [--repeat 3]

Without: the sample strategy alone (``entry: off``, nothing reported: no call at all).
With: ``entry: observe``: /predict before every entry and every closed trade to /exits,
against the real service over HTTP (its model bootstrapped on the candles before the
window), every entry taken, so both runs make exactly the same trades and the difference
is the service's cost. (``follow`` would skip entries and do less work.) A third run adds
exit advice (/exits/evaluate on every candle of an open trade; its exits, so its trades,
differ). Wall-clock of the whole ``freqtrade backtesting`` process (start-up included)
and of its backtest loop alone (from freqtrade's log), median of ``--repeat`` runs,
alternated so load on the machine hits all alike. Target: with / without <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.db.pool import embedded_url  # noqa: E402
from backend.ml.candles import sample_candles_path  # noqa: E402
from bench.loop_report import (  # noqa: E402
    ADMIN_KEY,
    _create_database,
    backtest,
    prepare,
    service,
)

TARGET = 2.0
MODES = {"without": {"entry": "off", "report_exits": False},
         "with": {"entry": "observe"},
         "with_exit_advice": {"entry": "observe", "exit_advice": True}}


def loop_seconds(log: Path) -> float:
    """freqtrade's backtest loop alone: from "Backtesting with data from" to the results."""
    stamps = {}
    for line in log.read_text().splitlines():
        for key, marker in (("start", "Backtesting with data from"),
                            ("end", "dumping json to")):
            if marker in line and key not in stamps:
                stamps[key] = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return (stamps["end"] - stamps["start"]).total_seconds()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--candles", type=Path, default=sample_candles_path("EURUSD"),
                   help="candle file the backtests run on")
    p.add_argument("--timeframe", default=None,
                   help="timeframe of the candles (default: from their spacing)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each variant (median)")
    p.add_argument("--trials", type=int, default=4,
                   help="Optuna trials of the bootstrap model")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tml-loop-cost-"))
    os.chmod(workdir, 0o755)  # pgserver runs postgres as its own user
    try:
        m = prepare(args.candles, workdir, timeframe=args.timeframe, bootstrap_fraction=0.6)
        admin_url = embedded_url(workdir / "pg")
        db = _create_database(admin_url, "loop_cost")
        env = {"TML_BOOTSTRAP_CANDLES": str(m.bootstrap_file), "TML_BOOTSTRAP_SYMBOL": m.name,
               "TML_BOOTSTRAP_TIMEFRAME": m.timeframe, "TML_BOOTSTRAP_TRIALS": str(args.trials),
               "TML_BOOTSTRAP_ON_START": "true", "TML_TRACKER_INTERVAL_SECONDS": "86400"}
        runs: dict[str, dict[str, list[float]]] = {
            k: {"process": [], "loop": []} for k in MODES}
        shape: dict[str, dict[str, int]] = {}
        with service(db, workdir / "svc", env) as url:
            for i in range(args.repeat):
                for mode, tml in MODES.items():
                    run_dir = workdir / f"{mode}-{i}"
                    trades, events, seconds = backtest(
                        m, run_dir, tml={"url": url, "trade_id_prefix": f"cost-{mode}-{i}",
                                         **tml})
                    runs[mode]["process"].append(seconds)
                    runs[mode]["loop"].append(loop_seconds(run_dir / "freqtrade.log"))
                    shape[mode] = {"trades": len(trades), "entries_asked": sum(
                        e["event"] == "entry" for e in events), "exits_reported": sum(
                        e["event"] == "exit" for e in events)}
            with httpx.Client(headers={"X-API-Key": ADMIN_KEY}) as http:
                model = http.get(f"{url}/api/v1/models", params={"status": "active"}
                                 ).json()["data"][0]["id"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    med = {k: {p: float(np.median(v[p])) for p in v} for k, v in runs.items()}
    ratio = med["with"]["process"] / med["without"]["process"]
    result = {"candles": Path(args.candles).name, "pair": m.pair, "timeframe": m.timeframe,
              "backtest_candles": m.rows - m.bootstrap_rows, "repeat": args.repeat,
              "model_id": model, "runs": {k: {"seconds": {p: [round(x, 2) for x in v[p]]
                                                          for p in v},
                                              "median": {p: round(x, 2)
                                                         for p, x in med[k].items()},
                                              **shape[k]} for k, v in runs.items()},
              "ratio": round(ratio, 3),
              "loop_ratio": round(med["with"]["loop"] / med["without"]["loop"], 3),
              "target": TARGET, "met": ratio <= TARGET,
              "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['candles']} ({m.pair} {m.timeframe}, {result['backtest_candles']} candles "
          f"backtested, {args.repeat} runs of each, medians)\n"
          f"| run | trades | entries asked | exits reported | freqtrade process | "
          f"backtest loop | process ratio | loop ratio |\n|---|---|---|---|---|---|---|---|")
    for mode in MODES:
        r, x = result["runs"][mode], med[mode]
        print(f"| {mode} | {r['trades']} | {r['entries_asked']} | {r['exits_reported']} | "
              f"{x['process']:.2f} s | {x['loop']:.2f} s | "
              f"{x['process'] / med['without']['process']:.2f}x | "
              f"{x['loop'] / med['without']['loop']:.2f}x |")
    print(f"with / without: {ratio:.2f}x (target <= {TARGET:.0f}x: "
          f"{'met' if result['met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
