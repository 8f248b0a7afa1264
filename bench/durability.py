"""The durability runs of issue 12, repeated against the real service: what was answered
against what is in Postgres, per scenario.

    python bench/durability.py [--requests 400] [--threads 4] [--scenario NAME ...]

One embedded PostgreSQL (pgserver, a private data directory, really stopped and started
for the outages) and the real service (``python -m backend serve``, started as
tests/utils/service.py does: its own TML_DATA_DIR, the writer process, the default
``TML_JOURNAL_FSYNC``). A model is bootstrapped once on real EURUSD candles. Per scenario,
--threads senders post --requests /predict calls (each a new trade_id of the scenario,
real candles, ~100/s per thread) while the fault happens:

- ``db_outage``: Postgres is stopped for ~2 s during the sending, then started again;
- ``kill_server``: kill -9 of the server process during the sending, then a restart on the
  same TML_DATA_DIR (the journal is replayed);
- ``kill_writer``: kill -9 of the writer process (the server starts another);
- ``disk_full``: the journal's directory is a 4 MB tmpfs, filled up for ~2 s (needs root
  and mount; the scenario is reported as not run otherwise);
- ``restart_in_outage``: Postgres is stopped, the service is stopped and started again
  while it is down (whatever model the service can serve then, it serves), then Postgres
  comes back.

Then the service is stopped cleanly (which writes what it holds) and the database is read:
``accepted`` = answered 200, ``503`` = answered 503, ``no answer`` = connection lost (a kill),
``stored`` = trade_ids with a stored prediction, ``lost`` = accepted but not stored with the
prediction_id it was answered, ``duplicated`` = trade_ids stored more than once,
``503'd but stored`` = answered 503 yet in the database. Expected: 0 lost, 0 duplicated,
0 503'd but stored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402

from tests.utils.disk_full import fill, tmpfs  # noqa: E402
from tests.utils.market_slices import predict_body, write_slice  # noqa: E402
from tests.utils.pg_outage import OwnPostgres  # noqa: E402
from tests.utils.service import BOT_KEY, Service, start_service  # noqa: E402

KEY = {"X-API-Key": BOT_KEY}  # /ready's details (the writer's queue) need a key

SCENARIOS = ("db_outage", "kill_server", "kill_writer", "disk_full", "restart_in_outage")
COLUMNS = ("sent", "accepted", "503", "no answer", "stored", "lost", "duplicated",
           "503'd but stored")


@dataclass
class Tally:
    """What the senders were answered, by trade_id."""

    accepted: dict[str, str] = field(default_factory=dict)  # trade_id -> prediction_id
    refused: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        return len(self.accepted) + len(self.refused) + len(self.unanswered)


class Target:
    """The service the senders post to (its port changes when it is restarted); while it
    is down the senders wait, so that the requests are spent on a running service."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.up = threading.Event()
        self.up.set()

    def replace(self, svc: Service) -> None:
        self.svc = svc
        self.up.set()


class Senders:
    """--threads threads posting /predict for ``prefix-0 .. prefix-(n-1)``, once each."""

    def __init__(self, target: Target, prefix: str, n: int, threads: int) -> None:
        self.target, self.prefix, self.n = target, prefix, n
        self.tally = Tally()
        self._ids = iter(range(n))
        self._ids_lock = threading.Lock()
        bodies = [predict_body("x", end=1500 + 17 * k) for k in range(16)]
        self._bodies = bodies
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]

    def __enter__(self) -> Senders:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: Any) -> None:
        for t in self._threads:
            t.join()

    def wait_sent(self, k: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.tally.sent < min(k, self.n) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _next(self) -> int | None:
        with self._ids_lock:
            return next(self._ids, None)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while self.target.up.wait(120) and (i := self._next()) is not None:
                trade_id = f"{self.prefix}-{i}"
                body = {**self._bodies[i % len(self._bodies)], "trade_id": trade_id}
                svc = self.target.svc
                try:
                    r = http.post(f"{svc.url}/api/v1/predict", json=body,
                                  headers={"X-API-Key": svc.env["TML_BOT_API_KEYS"]})
                except httpx.HTTPError:  # killed or stopped under it: accepted or not
                    with self.tally.lock:
                        self.tally.unanswered.add(trade_id)
                    time.sleep(0.05)
                    self.target.up.wait(120)
                    continue
                with self.tally.lock:
                    if r.status_code == 200:
                        self.tally.accepted[trade_id] = r.json()["prediction_id"]
                    elif r.status_code == 503:
                        self.tally.refused.add(trade_id)
                    else:
                        raise RuntimeError(f"{trade_id}: {r.status_code} {r.text[:200]}")
                time.sleep(0.01)


def outcome(db_url: str, prefix: str, tally: Tally) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT trade_id, id::text FROM ml_predictions "
                            "WHERE trade_id LIKE %s", (f"{prefix}-%",)).fetchall()
    ids: dict[str, list[str]] = {}
    for trade_id, pid in rows:
        ids.setdefault(trade_id, []).append(pid)
    lost = sum(1 for t, pid in tally.accepted.items() if pid not in ids.get(t, []))
    return {"sent": tally.sent, "accepted": len(tally.accepted), "503": len(tally.refused),
            "no answer": len(tally.unanswered), "stored": len(ids), "lost": lost,
            "duplicated": sum(1 for v in ids.values() if len(v) > 1),
            "503'd but stored": sum(1 for t in tally.refused if t in ids)}


def writer_process(svc: Service) -> psutil.Process:
    for child in psutil.Process(svc.proc.pid).children():
        if "spawn_main" in " ".join(child.cmdline()) and "resource_tracker" not in " ".join(
                child.cmdline()):
            return child
    raise RuntimeError("no writer process found")


def settle(svc: Service) -> None:
    """Until the writer holds nothing (bounded), then a clean stop, which writes the rest."""
    deadline = time.monotonic() + 60
    with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            if http.get(f"{svc.url}/ready", headers=KEY).json()["writer"]["queue_depth"] == 0:
                break
            time.sleep(0.2)
    svc.stop(timeout=60)


class Run:
    """One Postgres and one model for every scenario; a service per scenario."""

    def __init__(self, work: Path, requests: int, threads: int,
                 db_url: str | None = None) -> None:
        """``db_url``: a database that already holds an active model (the tests' own);
        then no Postgres of this run's, and no scenario that stops it."""
        self.work, self.requests, self.threads = work, requests, threads
        self.pg = None if db_url else OwnPostgres(work / "pg")
        self.url = db_url or self.pg.start()
        self.env = {"TML_COMPILED_MODEL_DIR": str(work / "compiled")}
        self.ready_while_full: str | None = None  # /ready's status during disk_full

    def bootstrap(self) -> None:
        candles = write_slice(self.work / "eurusd_slice.csv", "EURUSD", 0, 2500)
        svc = start_service(db_url=self.url, data_dir=self.work / "bootstrap", env={
            **self.env, "TML_BOOTSTRAP_ON_START": "true",
            "TML_BOOTSTRAP_CANDLES": str(candles), "TML_BOOTSTRAP_TRIALS": "2"}, timeout=600)
        svc.stop()

    def service(self, name: str, **kw: Any) -> Service:
        return start_service(db_url=self.url, data_dir=self.work / name, env=self.env, **kw)

    def scenario(self, name: str) -> dict[str, int] | str:
        actions: dict[str, Callable[[Target, Senders], None]] = {
            "db_outage": self._db_outage, "kill_server": self._kill_server,
            "kill_writer": self._kill_writer, "disk_full": self._disk_full,
            "restart_in_outage": self._restart_in_outage}
        if self.pg is None and name in ("db_outage", "restart_in_outage"):
            return "not run: needs a Postgres of the run's own"
        data_dir = self.work / name
        with tmpfs(data_dir / "journal", "4m") if name == "disk_full" else (
                contextlib.nullcontext(None)) as not_mounted:
            if not_mounted:
                return f"not run: cannot mount a tmpfs here ({not_mounted})"
            target = Target(self.service(name))
            try:
                with Senders(target, name, self.requests, self.threads) as senders:
                    actions[name](target, senders)
                settle(target.svc)
            except BaseException:  # leave no service running behind a failed scenario
                target.svc.stop(timeout=30)
                raise
        return outcome(self.url, name, senders.tally)

    # ---- the faults, each while the senders run -------------------------------------
    def _db_outage(self, target: Target, s: Senders) -> None:
        s.wait_sent(self.requests // 4)
        assert self.pg is not None
        self.pg.stop()
        time.sleep(2)
        self.pg.start()

    def _kill_server(self, target: Target, s: Senders) -> None:
        s.wait_sent(self.requests // 3)
        svc = target.svc
        writer = writer_process(svc)
        target.up.clear()
        os.kill(svc.proc.pid, signal.SIGKILL)  # with requests in flight
        svc.proc.wait()
        with contextlib.suppress(psutil.Error):  # it exits once the pipe closes
            writer.wait(30)
        target.replace(self.service("kill_server"))  # same data dir: the journal replayed

    def _kill_writer(self, target: Target, s: Senders) -> None:
        s.wait_sent(self.requests // 3)
        writer_process(target.svc).send_signal(signal.SIGKILL)

    def _disk_full(self, target: Target, s: Senders) -> None:
        s.wait_sent(self.requests // 4)
        filler = fill(self.work / "disk_full" / "journal")
        time.sleep(1)  # requests refused meanwhile: /ready must not say "ready"
        with httpx.Client(timeout=5) as http:
            self.ready_while_full = http.get(f"{target.svc.url}/ready").json()["status"]
        time.sleep(1)
        filler.unlink()

    def _restart_in_outage(self, target: Target, s: Senders) -> None:
        assert self.pg is not None
        s.wait_sent(self.requests // 4)
        self.pg.stop()
        s.wait_sent(self.requests // 2)
        target.up.clear()
        target.svc.stop(timeout=60)  # with the database away: its records stay journaled
        target.replace(self.service("restart_in_outage", wait_ready=False))
        s.wait_sent(3 * self.requests // 4)
        self.pg.start()

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()


def table(results: dict[str, dict[str, int] | str]) -> str:
    lines = ["| scenario | " + " | ".join(COLUMNS) + " |",
             "| --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
    for name, got in results.items():
        if isinstance(got, str):
            lines.append(f"| {name} | {got} |" + " |" * (len(COLUMNS) - 1))
        else:
            lines.append(f"| {name} | " + " | ".join(str(got[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400,
                    help="/predict calls per scenario (default 400)")
    ap.add_argument("--threads", type=int, default=4, help="concurrent senders (default 4)")
    ap.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS),
                    help="scenarios to run (default: all, in this order)")
    args = ap.parse_args()
    started = time.monotonic()
    results: dict[str, dict[str, int] | str] = {}
    with tempfile.TemporaryDirectory(prefix="tml-durability-") as tmp:
        run = Run(Path(tmp), args.requests, args.threads)
        try:
            print("bootstrapping a model ...", flush=True)
            run.bootstrap()
            for name in args.scenario:
                print(f"{name} ...", flush=True)
                results[name] = run.scenario(name)
                print(table({name: results[name]}), flush=True)
                if name == "disk_full" and run.ready_while_full:
                    print(f"/ready while the disk was full: {run.ready_while_full}")
        finally:
            run.close()
    print(f"\n{args.requests} requests per scenario, {args.threads} senders, "
          f"{time.monotonic() - started:.0f} s in all")
    print(table(results))
    bad = [n for n, r in results.items() if isinstance(r, dict)
           and (r["lost"] or r["duplicated"] or r["503'd but stored"])]
    print("ok: 0 lost, 0 duplicated, no 503'd record stored" if not bad
          else f"FAILED: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

