"""Run every benchmark in sequence (the figures docs/performance.md quotes).

    python bench/run_all.py [--skip-api]

Run on an otherwise idle machine; each script prints its own table and command.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from backend.cli_help import HelpFormatter  # noqa: E402

SCRIPTS = ["bench_features.py", "bench_predictor.py", "bench_training.py", "ml_report.py",
           "backtest_report.py", "bench_api.py"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--skip-api", action="store_true",
                   help="leave out bench_api.py (needs wrk and a free port)")
    skip_api = p.parse_args(argv).skip_api
    failed = 0
    for script in SCRIPTS:
        if skip_api and script == "bench_api.py":
            continue
        print(f"\n===== python bench/{script} =====", flush=True)
        failed |= subprocess.call([sys.executable, str(BENCH / script)], cwd=BENCH.parent)
    return failed


if __name__ == "__main__":
    sys.exit(main())
