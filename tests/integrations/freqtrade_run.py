"""Run freqtrade's backtest through the offline runner in the freqtrade virtualenv."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.utils.service import BOT_KEY, REPO

SAMPLE_CONFIG = REPO / "integrations/freqtrade/sample_config.json"
# The bootstrap model is trained on EURUSD rows 0-2500 (tests/api/conftest.py); the
# backtest covers the ~500 hourly candles after them.
TIMERANGE = "20170912-20171011"


@dataclass
class Run:
    trades: list[dict[str, Any]]
    events: list[dict[str, Any]]
    log: str

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "entry"]

    @property
    def exits(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "exit"]


def backtest(python: Path, workdir: Path, datadir: Path, *, tml: dict[str, Any],
             strategy: str = "TMLSampleStrategy", strategy_path: Path | None = None,
             env: dict[str, str] | None = None, timeout: float = 240) -> Run:
    """One backtest of ``strategy`` with the sample config's ``tml`` section updated."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "user_data/backtest_results").mkdir(parents=True, exist_ok=True)
    config = json.loads(SAMPLE_CONFIG.read_text())
    log = workdir / "decisions.jsonl"
    config["tml"] = {**config["tml"], "api_key": BOT_KEY, "decision_log": str(log),
                     "retries": 1, "backoff": 0.05, **tml}
    (workdir / "config.json").write_text(json.dumps(config))
    cmd = [str(python), "-m", "integrations.freqtrade.offline", "backtesting",
           "-c", str(workdir / "config.json"), "--userdir", str(workdir / "user_data"),
           "--datadir", str(datadir), "--timerange", TIMERANGE, "--strategy", strategy,
           "--export", "trades", "--cache", "none"]
    if strategy_path is not None:
        cmd += ["--strategy-path", str(strategy_path)]
    # COLUMNS: freqtrade logs through rich, which wraps lines at the terminal width
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          # this tree's client first (the virtualenv may hold another's)
                          env={**os.environ, "COLUMNS": "400",
                               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "client")]),
                               **(env or {})})
    output = proc.stdout + proc.stderr
    (workdir / "freqtrade.log").write_text(output)
    assert proc.returncode == 0, output[-5000:]
    events = ([json.loads(line) for line in log.read_text().splitlines()]
              if log.exists() else [])
    return Run(trades=_trades(workdir / "user_data/backtest_results", strategy),
               events=events, log=output)


def _trades(results: Path, strategy: str) -> list[dict[str, Any]]:
    latest = json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(results / latest) as z:
        name = latest.removesuffix(".zip") + ".json"
        return json.loads(z.read(name))["strategy"][strategy]["trades"]


def trade_key(t: dict[str, Any]) -> tuple:
    """What makes two runs' trades the same trade."""
    return (t["pair"], t["open_date"], t["close_date"], t["open_rate"], t["close_rate"],
            t["amount"], t["exit_reason"])
