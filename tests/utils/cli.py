"""Run ``python -m backend ...`` as a real subprocess with only the settings a test chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, data_dir: Path, db_url: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a clean environment: only the settings this test chose."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TML_") and k != "DATABASE_URL"}
    env["TML_DATA_DIR"] = str(data_dir)
    if db_url is not None:
        env["DATABASE_URL"] = db_url
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
