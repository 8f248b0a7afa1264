"""API throughput: a bare FastAPI endpoint vs POST /api/v1/predict (100 candles), side by
side in one run, same uvicorn settings (one worker, uvloop, httptools, no access log), wrk
on loopback at 16 connections. (c) is the service as `python -m backend serve` runs it:
the same app behind the connection guards of backend/server.py (header/body deadlines, the
connection cap), so (c)/(b) is what the guards cost.

    python bench/bench_api.py [--duration 10] [--rounds 2] [--connections 16]

Needs `wrk` (Debian package). Starts the embedded database in bench/out/data (emptying the
prediction tables of earlier runs) and trains a bootstrap model there on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.cli_help import HelpFormatter  # noqa: E402
from backend.db.pool import embedded_url  # noqa: E402
from tests.utils.market_slices import predict_body  # noqa: E402
from tests.utils.service import BOT_KEY, free_port  # noqa: E402

UVICORN = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1",
           "--log-level", "warning"]
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
-- the body around its trade_id: concatenation is cheaper than a gsub over 5 kB per request,
-- and the load generator shares the two cores with the server
local head = [[{head}]]
local tail = [[{tail}]]
counter = 0
request = function()
  counter = counter + 1
  -- unique per run and per request: a repeated trade_id would be answered from memory
  return wrk.format(nil, nil, nil, head .. "{prefix}-" .. counter .. tail)
end
"""


def fresh_embedded_database(pg_dir: Path) -> str:
    """The bench's own embedded Postgres, with the rows of earlier runs removed: an insert
    into a table of millions of rows costs more, and the figure would drift run by run."""
    url = embedded_url(pg_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.ml_predictions')").fetchone()[0]:
            conn.execute("TRUNCATE public.ml_predictions, public.ml_trade_features")
    return url


def wait(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def wrk(url: str, duration: int, connections: int, script: Path | None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "requests": int(re.search(r"(\d+) requests in", out).group(1))}


def stored_predictions(db_url: str, timeout: float = 120) -> int:
    """Rows in ml_predictions once the writer has caught up (the count stops growing)."""
    deadline = time.monotonic() + timeout
    last = -1
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            count = conn.execute("SELECT count(*) FROM public.ml_predictions").fetchone()[0]
            if count == last:
                return count
            last = count
            time.sleep(2)
    return last


def new_signals(body: dict) -> Path:
    """A wrk script whose every request is a new signal (a trade_id of its own)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        head, tail = json.dumps(body).split("BENCH_TRADE_ID")
        lua = LUA.replace("{key}", BOT_KEY).replace("{head}", head)
        fh.write(lua.replace("{tail}", tail).replace("{prefix}", f"bench-{time.time_ns()}"))
    return Path(fh.name)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    p.add_argument("--rounds", type=int, default=2,
                   help="alternating rounds of bare endpoint and /predict")
    p.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = p.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    data_dir = REPO / "bench" / "out" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TML_DATA_DIR": str(data_dir), "TML_BOT_API_KEYS": BOT_KEY,
           "TML_ADMIN_API_KEYS": BOT_KEY + "-admin", "TML_BOOTSTRAP_TRIALS": "4"}
    env.pop("DATABASE_URL", None)
    env["DATABASE_URL"] = fresh_embedded_database(data_dir / "pg")
    bare_port, api_port, served_port = free_port(), free_port(), free_port()
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port",
                             str(bare_port), *UVICORN], cwd=REPO, env=env)
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                            "backend.app:create_app", "--port", str(api_port), *UVICORN],
                           cwd=REPO, env=env)
    # the same database, a journal of its own
    served = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port",
                               str(served_port)], cwd=REPO,
                              env={**env, "TML_LOG_LEVEL": "warning",
                                   "TML_DATA_DIR": str(data_dir / "served")})
    try:
        wait(f"http://127.0.0.1:{bare_port}/constant")
        wait(f"http://127.0.0.1:{api_port}/ready")
        wait(f"http://127.0.0.1:{served_port}/ready")
        body = predict_body("BENCH_TRADE_ID", n=100)
        results: dict[str, list[dict[str, float]]] = {"bare": [], "predict": [], "served": []}
        for _ in range(args.rounds):  # interleaved, so machine noise hits all alike
            results["bare"].append(wrk(f"http://127.0.0.1:{bare_port}/constant",
                                       args.duration, args.connections, None))
            for name, port in (("predict", api_port), ("served", served_port)):
                results[name].append(wrk(f"http://127.0.0.1:{port}/api/v1/predict",
                                         args.duration, args.connections, new_signals(body)))
        best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}
        print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} rounds "
              "interleaved, best round of each")
        print(f"{'endpoint':<34}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>10}")
        for name, label in (("bare", "(a) bare FastAPI constant JSON"),
                            ("predict", "(b) POST /predict, 100 candles"),
                            ("served", "(c) (b) as python -m backend serve")):
            r = best[name]
            print(f"{label:<34}{r['rps']:>10.0f}{r['p99_ms']:>10.2f}{r['errors']:>10}")
        ratio = best["predict"]["rps"] / best["bare"]["rps"]
        print(f"\n(b)/(a) = {ratio:.1%} (goal >= 35%), p99 of (b) = "
              f"{best['predict']['p99_ms']:.2f} ms (goal <= 15 ms)")
        print(f"(c)/(b) = {best['served']['rps'] / best['predict']['rps']:.1%} (the connection "
              "guards' cost; 100% = none)")
        print("all rounds:", json.dumps(results))
        # every request of (b) was a new signal: one stored prediction each, none repeated
        done = sum(r["requests"] for r in results["predict"] + results["served"])
        stored = stored_predictions(env["DATABASE_URL"])
        in_flight = 2 * args.connections * args.rounds  # cut off by wrk at a round's end
        verdict = "ok" if done <= stored <= done + in_flight else "MISMATCH"
        print(f"stored predictions: {stored} for {done} completed requests to (b), plus at "
              f"most {in_flight} in flight when a round ended: {verdict}")
    finally:
        for proc in (bare, api, served):
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
