"""Run every benchmark in sequence (the figures docs/performance.md quotes).

    python bench/run_all.py [--skip-api]

Run on an otherwise idle machine; each script prints its own table and command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = ["bench_features.py", "bench_predictor.py", "bench_training.py", "ml_report.py",
           "backtest_report.py", "bench_api.py"]


def main() -> int:
    skip_api = "--skip-api" in sys.argv[1:]
    failed = 0
    for script in SCRIPTS:
        if skip_api and script == "bench_api.py":
            continue
        print(f"\n===== python bench/{script} =====", flush=True)
        failed |= subprocess.call([sys.executable, str(BENCH / script)], cwd=BENCH.parent)
    return failed


if __name__ == "__main__":
    sys.exit(main())
