"""Cost of the loop: the same freqtrade backtest without the service and with it, side by
side in one run (docs/performance.md, "Cost of the loop").

    python bench/bench_loop_cost.py [--candles FILE] [--repeat 3]

Without: the sample strategy alone (``entry: off``, nothing reported: no call at all).
With: variant b of the loop report (``entry: follow``: /predict before every entry, every
closed trade to /exits) against the real service over HTTP, its model bootstrapped on the
candles before the window. Wall-clock of the whole ``freqtrade backtesting`` process
(start-up included, the same in both), median of ``--repeat`` runs, alternated so load
on the machine hits both alike. Target: with / without <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candles", type=Path, default=sample_candles_path("EURUSD"))
    p.add_argument("--timeframe", default=None)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--json", action="store_true")
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
        without: list[float] = []
        with_service: list[float] = []
        calls: list[int] = []
        with service(db, workdir / "svc", env) as url:
            for i in range(args.repeat):
                _, _, seconds = backtest(m, workdir / f"off-{i}",
                                         tml={"entry": "off", "report_exits": False})
                without.append(seconds)
                trades, events, seconds = backtest(
                    m, workdir / f"on-{i}", tml={"url": url, "entry": "follow",
                                                 "trade_id_prefix": f"cost-{i}"})
                with_service.append(seconds)
                calls.append(len(events))
                n_trades = len(trades)
            with httpx.Client(headers={"X-API-Key": ADMIN_KEY}) as http:
                model = http.get(f"{url}/api/v1/models", params={"status": "active"}
                                 ).json()["data"][0]["id"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    a, b = float(np.median(without)), float(np.median(with_service))
    result = {"candles": Path(args.candles).name, "pair": m.pair, "timeframe": m.timeframe,
              "backtest_candles": m.rows - m.bootstrap_rows, "repeat": args.repeat,
              "model_id": model, "trades_with_service": n_trades,
              "service_calls_per_run": calls[-1],
              "without_seconds": [round(x, 2) for x in without],
              "with_seconds": [round(x, 2) for x in with_service],
              "without_median": round(a, 2), "with_median": round(b, 2),
              "ratio": round(b / a, 3), "target": TARGET, "met": b / a <= TARGET,
              "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['candles']} ({m.pair} {m.timeframe}, {result['backtest_candles']} "
              f"candles backtested, {args.repeat} runs each, median wall-clock of the "
              f"freqtrade process)\n"
              f"  without the service: {a:6.2f} s  {result['without_seconds']}\n"
              f"  with the service:    {b:6.2f} s  {result['with_seconds']}  "
              f"({calls[-1]} entries asked and exits reported per run, {n_trades} trades)\n"
              f"  ratio: {b / a:.2f}x (target <= {TARGET:.0f}x: "
              f"{'met' if result['met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
