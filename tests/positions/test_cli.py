"""``python -m backend backtest`` on a slice of real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.positions.cli import BACKTESTABLE, main
from tests.utils.market_slices import write_slice

ROOT = Path(__file__).resolve().parents[2]


def test_json_prints_one_object_with_a_key_per_policy(tmp_path, capsys):
    path = write_slice(tmp_path / "eurusd.csv", "EURUSD", 0, 1500)
    chart = tmp_path / "equity.png"
    code = main(["--candles", str(path), "--strategy", "ma_cross,breakout", "--fee-bps",
                 "0.2", "--slippage-bps", "0.3", "--json", "--chart", str(chart)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1  # exactly one JSON document
    report = json.loads(out)
    assert set(report) == {"fixed", *BACKTESTABLE}
    for name, entry in report.items():
        s = entry["summary"]
        assert s["trades"] > 0 and s["wins"] + s["losses"] <= s["trades"], name
        assert sum(s["exit_reasons"].values()) == s["trades"]
    assert report["fixed"]["summary"]["avg_loss_vs_baseline"] == 0.0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_split_tunes_on_the_first_part_and_reports_on_the_rest(tmp_path, capsys):
    path = write_slice(tmp_path / "goog.csv", "GOOG", 0, 2148)
    assert main(["--candles", str(path), "--policies", "combined", "--split", "0.5",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"fixed", "combined"}
    whole = json.loads(_run_json(path, capsys))
    # the report part trades only signals after the split: fewer trades than the whole
    assert 0 < report["fixed"]["summary"]["trades"] < whole["fixed"]["summary"]["trades"]


def _run_json(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--candles", str(path), "--policies", "combined", "--json"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["--candles", "/nonexistent/candles.csv"],
    ["--candles", "{bad}", "--policies", "fixed,teleport"],
])
def test_bad_input_is_one_stderr_line_and_exit_2(tmp_path, capsys, args):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,open,high,low,close\n1,1,1,1,1\n")  # no volume column
    args = [a.replace("{bad}", str(bad)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert main(["--candles", str(bad)]) == 2
    assert "volume" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    path = write_slice(tmp_path / "eurusd.csv", "EURUSD", 0, 600)
    proc = subprocess.run([sys.executable, "-m", "backend", "backtest", "--candles", str(path),
                           "--policies", "fixed", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"fixed"}
