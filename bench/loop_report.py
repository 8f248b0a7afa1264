"""The loop report: does the service make a freqtrade bot better? (docs/freqtrade.md)

    python bench/loop_report.py --candles FILE [FILE ...] [--timeframe TF] [--json]

For each candle file (anything ``load_candles_file`` reads): convert it to freqtrade's data
format, bootstrap a model on the candles BEFORE the backtest window only (the first
``--bootstrap-fraction``, a truncated file as ``TML_BOOTSTRAP_CANDLES``, in a fresh embedded
Postgres of this run), then backtest the sample strategy (TMLSampleStrategy) over the rest
with freqtrade four ways, each on its own copy of the bootstrapped database:

  a  the base strategy alone (``entry: observe``: the service judges every signal and the
     trades stay the base strategy's)
  b  with the service's take/skip (``entry: follow``)
  c  b + exit advice (``exit_advice: true``)
  d  c + continual learning: the service retrains after every ``--retrain-after`` outcomes
     the bot reports (``TML_RETRAIN_AFTER_OUTCOMES``, with the bootstrap candles); the bot
     waits for each retrain (``retrain: true``), so the run reproduces

The service's accuracy is scored against what each judged signal's base trade did: a
labels run (entry off, position stacking) trades EVERY signal with the base exits; a
signal is a win when that trade's net profit is > 0. Same seed, same figures.
Requires the freqtrade virtualenv (``make freqtrade-venv``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.db.pool import embedded_url  # noqa: E402
from backend.ml.candles import load_candles_file  # noqa: E402
from backend.positions.barriers import DEFAULT_SL_ATR, DEFAULT_TP_ATR  # noqa: E402
from integrations.freqtrade.convert import convert  # noqa: E402

BOT_KEY, ADMIN_KEY = "loop-bot-key-0123456789", "loop-admin-key-0123456789"
SAMPLE_CONFIG = REPO / "integrations/freqtrade/sample_config.json"
STRATEGY = "TMLSampleStrategy"
WALLET, STAKE = 10_000.0, 1_000.0
VARIANTS = {
    "a": ("base strategy alone (service observes)", {"entry": "observe"}),
    "b": ("take/skip", {"entry": "follow"}),
    "c": ("take/skip + exit advice", {"entry": "follow", "exit_advice": True}),
    "d": ("c + continual learning", {"entry": "follow", "exit_advice": True,
                                     "retrain": True}),
}
TARGETS = {"accuracy": 0.55, "avg_loss_cut": 0.10, "profit_gain": 0.05}


# -- the service and freqtrade, as subprocesses ---------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def service(db_url: str, data_dir: Path, env: dict[str, str]) -> Iterator[str]:
    """``python -m backend serve`` on a free port until the block ends; its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    full = {**os.environ, "DATABASE_URL": db_url, "TML_DATA_DIR": str(data_dir),
            "TML_PORT": str(port), "TML_BOT_API_KEYS": BOT_KEY,
            "TML_ADMIN_API_KEYS": ADMIN_KEY, "TML_VIEWER_API_KEYS": "",
            "TML_BOOTSTRAP_ON_START": "false", "TML_LOG_LEVEL": "warning",
            "TML_WRITER_FLUSH_SECONDS": "0.05", **env}
    with open(data_dir / "service.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO,
                                env=full, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited {proc.returncode}: see {data_dir}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not ready: see {data_dir}")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def freqtrade_python() -> Path:
    path = Path(os.environ.get("TML_FREQTRADE_PYTHON", REPO / ".venv-freqtrade/bin/python"))
    if not path.is_file():
        sys.exit(f"no freqtrade virtualenv at {path}: run `make freqtrade-venv`")
    return path


@dataclass
class Market:
    """One candle file, ready for freqtrade."""

    name: str
    pair: str
    timeframe: str
    datadir: Path
    bootstrap_file: Path
    rows: int
    bootstrap_rows: int
    start: int  # first backtest candle (epoch seconds)
    end: int
    stoploss: float
    roi: float


def backtest(market: Market, workdir: Path, *, tml: dict[str, Any],
             extra_args: tuple[str, ...] = (), config_overrides: dict[str, Any] | None = None,
             env: dict[str, str] | None = None) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]], float]:
    """freqtrade's backtest of the sample strategy over the backtest window (offline
    runner); its trades, the mixin's decision log and the seconds it took."""
    (workdir / "user_data/backtest_results").mkdir(parents=True, exist_ok=True)
    config = json.loads(SAMPLE_CONFIG.read_text())
    log = workdir / "decisions.jsonl"
    config.update({"timeframe": market.timeframe, "stoploss": -market.stoploss,
                   "minimal_roi": {"0": market.roi}, "stake_amount": STAKE,
                   "dry_run_wallet": WALLET, **(config_overrides or {})})
    config["exchange"]["pair_whitelist"] = [market.pair]
    config["tml"] = {**config["tml"], "api_key": BOT_KEY, "decision_log": str(log),
                     "symbols": {market.pair: market.name}, "retries": 1, **tml}
    (workdir / "config.json").write_text(json.dumps(config))
    cmd = [str(freqtrade_python()), "-m", "integrations.freqtrade.offline", "backtesting",
           "-c", str(workdir / "config.json"), "--userdir", str(workdir / "user_data"),
           "--datadir", str(market.datadir), "--timerange", f"{market.start}-{market.end + 1}",
           "--strategy", STRATEGY, "--export", "trades", "--cache", "none", *extra_args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=7200,
                          env={**os.environ, "COLUMNS": "400", "TML_ADMIN_API_KEY": ADMIN_KEY,
                               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "client")]),
                               **(env or {})})
    seconds = time.perf_counter() - started
    (workdir / "freqtrade.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"freqtrade failed ({workdir / 'freqtrade.log'}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    results = workdir / "user_data/backtest_results"
    latest = json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(results / latest) as z:
        trades = json.loads(z.read(latest.removesuffix(".zip") + ".json"))["strategy"][
            STRATEGY]["trades"]
    events = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return trades, events, seconds


# -- preparing a candle file ---------------------------------------------------------------

def _timeframe(seconds: float) -> str:
    for tf, s in (("1m", 60), ("5m", 300), ("15m", 900), ("30m", 1800), ("1h", 3600),
                  ("4h", 14_400), ("1d", 86_400), ("1w", 604_800)):
        if seconds <= s * 1.5:
            return tf
    raise ValueError(f"no freqtrade timeframe for a median spacing of {seconds}s")


def prepare(path: Path, workdir: Path, *, timeframe: str | None,
            bootstrap_fraction: float) -> Market:
    candles = load_candles_file(path)
    name = Path(path).stem.split("_")[0].upper()
    # EURUSD -> EUR/USD (a currency pair); anything else is quoted in USD: GOOG -> GOOG/USD
    pair = f"{name[:3]}/{name[3:]}" if len(name) == 6 and name.isalpha() else f"{name}/USD"
    timeframe = timeframe or _timeframe(float(np.median(np.diff(candles.time))))
    split = int(len(candles) * bootstrap_fraction)
    datadir = workdir / "ft-data"
    convert(path, pair=pair, timeframe=timeframe, datadir=datadir)
    boot = workdir / f"{name}_bootstrap.csv"
    candles.to_frame().iloc[:split].to_csv(boot)
    # stop and target as the service's barrier labels them: SL/TP ATR multiples of the
    # median ATR% of the bootstrap candles (nothing of the backtest window)
    h, low, c = candles.high[:split], candles.low[:split], candles.close[:split]
    tr = np.maximum(h[1:] - low[1:], np.maximum(abs(h[1:] - c[:-1]), abs(low[1:] - c[:-1])))
    atr = np.convolve(tr, np.ones(14) / 14, mode="valid") / c[14:]
    atr_pct = float(np.median(atr))
    return Market(name=name, pair=pair, timeframe=timeframe, datadir=datadir,
                  bootstrap_file=boot, rows=len(candles), bootstrap_rows=split,
                  start=int(candles.time[split]), end=int(candles.time[-1]),
                  stoploss=round(DEFAULT_SL_ATR * atr_pct, 6),
                  roi=round(DEFAULT_TP_ATR * atr_pct, 6))


# -- figures -------------------------------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def trade_figures(trades: list[dict[str, Any]]) -> dict[str, Any]:
    profit = [float(t["profit_abs"]) for t in trades]
    ratio = [float(t["profit_ratio"]) for t in trades]
    losses = [r for r in ratio if r <= 0]
    equity = WALLET + np.cumsum([0.0, *profit])
    peak = np.maximum.accumulate(equity)
    return {
        "trades": len(trades),
        "profit_pct": round(100 * sum(profit) / WALLET, 4),
        "win_rate": round(float(np.mean([p > 0 for p in profit])), 4) if trades else None,
        "avg_loss_pct": round(100 * _mean(losses), 4) if losses else None,
        "expectancy_pct": round(100 * _mean(ratio), 4) if trades else None,
        "max_drawdown_pct": round(float(np.max((peak - equity) / peak)) * 100, 4),
        "exit_reasons": dict(sorted({r: sum(t["exit_reason"] == r for t in trades)
                                     for r in {t["exit_reason"] for t in trades}}.items())),
    }


def signal_labels(trades: list[dict[str, Any]], timeframe_seconds: int) -> dict[int, int]:
    """Signal candle time -> 1 when the base trade from it won (the labels run)."""
    labels = {}
    for t in trades:
        opened = int(t["open_timestamp"]) // 1000
        labels[opened - timeframe_seconds] = int(float(t["profit_abs"]) > 0)
    return labels


def service_figures(events: list[dict[str, Any]], labels: dict[int, int]) -> dict[str, Any]:
    """The service's take/skip on the signals it judged, against their base outcome."""
    from datetime import datetime

    judged = [e for e in events if e["event"] == "entry" and e.get("decision")]
    scored = [(e["decision"] == "take", labels[k]) for e in judged
              if (k := int(datetime.fromisoformat(e["signal_time"]).timestamp())) in labels]
    take = [y for d, y in scored if d]
    return {
        "judged": len(judged), "scored": len(scored), "take": sum(d for d, _ in scored),
        "accuracy": round(float(np.mean([d == bool(y) for d, y in scored])), 4)
        if scored else None,
        "precision": round(float(np.mean(take)), 4) if take else None,
        "base_rate": round(float(np.mean([y for _, y in scored])), 4) if scored else None,
        # what always-take or always-skip would score, whichever is higher
        "majority_accuracy": round(max(m := float(np.mean([y for _, y in scored])), 1 - m), 4)
        if scored else None,
        "models": sorted({e["answer"]["model"]["id"] for e in judged}),
        # a model whose (calibrated) probability is one value for every signal is no model
        "distinct_probabilities": len({round(e["probability"], 6) for e in judged}),
        "probability_range": [round(min(e["probability"] for e in judged), 4),
                              round(max(e["probability"] for e in judged), 4)]
        if judged else None,
    }


def targets(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The product's first-plan targets per variant with the service deciding (b, c, d)."""
    a = variants["a"]
    out: dict[str, dict[str, Any]] = {}
    for key in ("b", "c", "d"):
        v, s = variants[key], variants[key]["service"]
        acc, base = s["accuracy"], s["base_rate"]
        cut = (1 - v["avg_loss_pct"] / a["avg_loss_pct"]
               if v["avg_loss_pct"] is not None and a["avg_loss_pct"] else None)
        gain = ((v["profit_pct"] - a["profit_pct"]) / abs(a["profit_pct"])
                if a["profit_pct"] else None)
        # "Above the base rate it must beat, not skip everything": the accuracy must beat
        # the better constant rule (always-take scores the base rate, always-skip 1 - it),
        # and a profit "gain" of a variant that made no trade is a bot that stopped trading.
        majority = s["majority_accuracy"]
        out[key] = {
            "accuracy": {"value": acc, "base_rate": base, "to_beat": majority,
                         "met": acc is not None and base is not None
                         and acc > TARGETS["accuracy"] and acc > base
                         and majority is not None and acc > majority},
            "avg_loss_cut": {"value": None if cut is None else round(cut, 4),
                             "met": cut is not None and cut >= TARGETS["avg_loss_cut"]},
            "profit_gain": {"value": None if gain is None else round(gain, 4),
                            "points": round(v["profit_pct"] - a["profit_pct"], 4),
                            "met": gain is not None and v["profit_pct"] > a["profit_pct"]
                            and gain >= TARGETS["profit_gain"] and v["trades"] > 0},
        }
    return out


# -- one candle file -----------------------------------------------------------------------

def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(stmt)
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def run_file(path: Path, workdir: Path, args: argparse.Namespace, admin_url: str
             ) -> dict[str, Any]:
    m = prepare(path, workdir, timeframe=args.timeframe,
                bootstrap_fraction=args.bootstrap_fraction)
    base_env = {"TML_BOOTSTRAP_CANDLES": str(m.bootstrap_file), "TML_BOOTSTRAP_SYMBOL": m.name,
                "TML_BOOTSTRAP_TIMEFRAME": m.timeframe,
                "TML_BOOTSTRAP_TRIALS": str(args.trials), "TML_TRAIN_SEED": str(args.seed),
                "TML_TRACKER_INTERVAL_SECONDS": "86400"}
    boot_db = _create_database(admin_url, f"loop_{m.name.lower()}_boot")
    started = time.perf_counter()
    with service(boot_db, workdir / "svc-boot", {**base_env, "TML_BOOTSTRAP_ON_START": "true"}
                 ) as url, httpx.Client(headers={"X-API-Key": ADMIN_KEY}) as http:
        bootstrap = http.get(f"{url}/api/v1/models", params={"status": "active"}).json()[
            "data"][0]
    boot_seconds = time.perf_counter() - started
    tf_seconds = int(np.median(np.diff(load_candles_file(path).time)))
    label_trades, _, _ = backtest(
        m, workdir / "labels", tml={"entry": "off", "report_exits": False},
        extra_args=("--enable-position-stacking",),
        config_overrides={"max_open_trades": -1, "dry_run_wallet": 1e12})
    labels = signal_labels(label_trades, tf_seconds)
    variants: dict[str, dict[str, Any]] = {}
    retrains: list[dict[str, Any]] = []
    for key, (title, tml) in VARIANTS.items():
        env = dict(base_env)
        if tml.get("retrain"):
            env.update({"TML_RETRAIN_AFTER_OUTCOMES": str(args.retrain_after),
                        "TML_RETRAIN_WITH_BOOTSTRAP": "true",
                        "TML_RETRAIN_TRIALS": str(args.trials)})
        db = _create_database(admin_url, f"loop_{m.name.lower()}_{key}",
                              template=f"loop_{m.name.lower()}_boot")
        with service(db, workdir / f"svc-{key}", env) as url:
            trades, events, seconds = backtest(
                m, workdir / f"run-{key}",
                tml={"url": url, "trade_id_prefix": f"loop-{key}", **tml})
            if tml.get("retrain"):
                with httpx.Client(headers={"X-API-Key": ADMIN_KEY}) as http:
                    rows = http.get(f"{url}/api/v1/models/retrains",
                                    params={"limit": 500}).json()["data"]
                retrains = [{k: r[k] for k in ("id", "reason", "n_outcomes",
                                               "candidate_model_id", "promoted", "status")}
                            | {"comparison": r["result"].get("reason")}
                            for r in reversed(rows)]
        variants[key] = {"title": title, **trade_figures(trades),
                         "service": service_figures(events, labels),
                         "seconds": round(seconds, 1)}
    return {"file": Path(path).name, "pair": m.pair, "symbol": m.name,
            "timeframe": m.timeframe, "rows": m.rows, "bootstrap_rows": m.bootstrap_rows,
            "backtest_start": m.start, "backtest_end": m.end, "stoploss": m.stoploss,
            "roi": m.roi, "bootstrap_model": {"id": bootstrap["id"],
                                              "n_samples": bootstrap["n_samples"],
                                              "train_end": bootstrap["train_end"],
                                              "seconds": round(boot_seconds, 1)},
            "signals_labelled": len(labels),
            "signals_base_rate": round(float(np.mean(list(labels.values()))), 4)
            if labels else None,
            "variants": variants, "targets": targets(variants), "retrains": retrains}


# -- output --------------------------------------------------------------------------------

def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if pct else f"{value:.2f}"
    return str(value)


def render(report: dict[str, Any]) -> str:
    lines = [f"loop report (seed {report['seed']}, bootstrap on the first "
             f"{report['bootstrap_fraction']:.0%} of each file, retrain every "
             f"{report['retrain_after']} outcomes in d)"]
    for r in report["datasets"]:
        lines += ["", f"## {r['file']}: {r['pair']} {r['timeframe']}, {r['rows']} candles, "
                      f"backtest on the last {r['rows'] - r['bootstrap_rows']}; stop "
                      f"{100 * r['stoploss']:.3f} %, ROI {100 * r['roi']:.3f} %; "
                      f"{r['signals_labelled']} signals, base rate "
                      f"{_fmt(r['signals_base_rate'], True)}", "",
                  "| variant | trades | profit % | win rate | avg loss % | expectancy % "
                  "| max DD % | judged | accuracy | precision | base rate | models |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, v in r["variants"].items():
            s = v["service"]
            lines.append(
                f"| {key}: {v['title']} | {v['trades']} | {_fmt(v['profit_pct'])} | "
                f"{_fmt(v['win_rate'], True)} | {_fmt(v['avg_loss_pct'])} | "
                f"{_fmt(v['expectancy_pct'])} | {_fmt(v['max_drawdown_pct'])} | "
                f"{s['scored']}/{s['judged']} | {_fmt(s['accuracy'], True)} | "
                f"{_fmt(s['precision'], True)} | {_fmt(s['base_rate'], True)} | "
                f"{len(s['models'])} |")
        lines += ["", "| target | " + " | ".join(r["targets"]) + " |",
                  "|---|" + "---|" * len(r["targets"])]
        rows = {"accuracy > 55 %, > base rate and > always-take/skip": lambda t: (
                    f"{_fmt(t['accuracy']['value'], True)} vs "
                    f"{_fmt(t['accuracy']['base_rate'], True)} / "
                    f"{_fmt(t['accuracy']['to_beat'], True)}", t["accuracy"]["met"]),
                "average loss cut >= 10 % vs a": lambda t: (
                    _fmt(t["avg_loss_cut"]["value"], True), t["avg_loss_cut"]["met"]),
                "profit >= +5 % over a, with trades": lambda t: (
                    f"{_fmt(t['profit_gain']['value'], True)} "
                    f"({t['profit_gain']['points']:+.2f} pts)", t["profit_gain"]["met"])}
        for label, get in rows.items():
            cells = [f"{v} {'met' if ok else 'NOT met'}" for v, ok in
                     (get(t) for t in r["targets"].values())]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        for key, v in r["variants"].items():  # what the targets' literal reading hides
            s = v["service"]
            if s["accuracy"] is not None and s["accuracy"] <= s["majority_accuracy"]:
                lines.append(f"note {key}: accuracy {_fmt(s['accuracy'], True)} is no better "
                             f"than always-take/always-skip "
                             f"({_fmt(s['majority_accuracy'], True)}); the service took "
                             f"{s['take']} of {s['scored']} signals")
            if s["distinct_probabilities"] == 1:
                lines.append(f"note {key}: one probability for every signal "
                             f"({s['probability_range'][0]}): the model does not tell "
                             "them apart")
            if key != "a" and v["trades"] == 0:
                lines.append(f"note {key}: no trade at all (profit 0 vs a's "
                             f"{r['variants']['a']['profit_pct']:.2f} %): nothing to learn "
                             "from, the skipped signals report no outcome")
        promoted = sum(bool(x["promoted"]) for x in r["retrains"])
        lines.append(f"d: {len(r['retrains'])} retrain(s), {promoted} promoted"
                     + (": " if r["retrains"] else "")
                     + "; ".join(f"#{x['id']} {x['reason']} n={x['n_outcomes']} "
                                 f"{'promoted' if x['promoted'] else 'kept'} "
                                 f"({x['comparison']})" for x in r["retrains"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--candles", nargs="+", required=True, type=Path,
                   help="candle files of the loop (one backtest each)")
    p.add_argument("--timeframe", default=None, help="default: from the candles' spacing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--seed", type=int, default=42, help="training seed")
    p.add_argument("--trials", type=int, default=8, help="Optuna trials per training")
    p.add_argument("--bootstrap-fraction", type=float, default=0.6,
                   help="first fraction of the candles the bootstrap model trains on")
    p.add_argument("--retrain-after", type=int, default=10, help="outcomes per retrain (d)")
    p.add_argument("--json-out", type=Path, default=None,
                   help="also write the JSON here (default: not written)")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tml-loop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)  # pgserver runs postgres as its own user
    try:
        admin_url = embedded_url(workdir / "pg")
        report = {"seed": args.seed, "bootstrap_fraction": args.bootstrap_fraction,
                  "retrain_after": args.retrain_after, "trials": args.trials,
                  "datasets": [run_file(f, workdir / f"file{i}", args, admin_url)
                               for i, f in enumerate(args.candles)]}
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
