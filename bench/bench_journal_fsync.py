"""Journal submits per second for each TML_JOURNAL_FSYNC mode, side by side.

    python bench/bench_journal_fsync.py [--seconds 3] [--rounds 2] [--dir DIR]
                                        [--fsync-ms 1000] [--threads 4]

What it measures: ``Intake.submit`` (the journal append plus the ledger entry: all that a
request does with the journal before it answers) from --threads threads at once, as the
server's request threads do, with a rotation every 0.25 s as the writer's timer does
(segments are deleted after each round, as the writer does once they commit). No database:
this is the cost of the fsync mode alone. Records are real-sized journal lines (a feature
row of 40 features and its prediction, ~1.6 kB). The journal goes in --dir (default: a
temporary directory under ./data, i.e. on the disk TML_DATA_DIR uses). Modes are
interleaved round by round and the best round of each is quoted, with the ratio to `off`,
the p99 of one submit and the fsyncs made per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from backend.db.batch_writer import WriterStats  # noqa: E402
from backend.db.intake import Intake  # noqa: E402
from backend.db.records import JournalRecord  # noqa: E402

MODES = ("off", "batch", "always")


def make_record(i: int) -> JournalRecord:
    trade_id = f"bench-{i}"
    features = {f"feature_{k}": 0.123456789 * k for k in range(40)}
    return JournalRecord(
        feature={"trade_id": trade_id, "symbol": "EURUSD", "timeframe": "1h", "side": "long",
                 "strategy": "bench", "signal_time": "2026-01-01T00:00:00+00:00",
                 "features": features, "feature_version": 3},
        prediction={"id": str(uuid.uuid4()), "trade_id": trade_id, "model_id": 1,
                    "probability": 0.61, "decision": "take", "threshold": 0.5,
                    "predicted_at": "2026-01-01T00:00:00+00:00"})


class CountingFsync:
    def __init__(self) -> None:
        self.real = os.fsync
        self.n = 0

    def __call__(self, fd: int) -> None:
        self.n += 1  # += under the GIL from several threads: close enough for a rate
        self.real(fd)


def one_round(mode: str, directory: Path, seconds: float, threads: int,
              fsync_ms: float) -> tuple[float, float, float]:
    """(submits/s, p99 seconds of one submit, fsyncs/s) for one mode."""
    journal = directory / f"journal-{mode}"
    intake = Intake(journal, WriterStats(), keep_vectors=False, fsync=mode,
                    fsync_ms=fsync_ms)
    intake.open()
    records = [make_record(i) for i in range(2000)]
    counter = CountingFsync()
    os.fsync = counter  # type: ignore[assignment]  # counted at the OS boundary
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def submitter(k: int) -> None:
        lat = latencies[k]
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            intake.submit(records[i % len(records)])
            lat.append(time.perf_counter() - t0)
            i += 1

    def rotator() -> None:  # the writer's timer: rotate, then "commit" (delete) segments
        while not stop.wait(0.25):
            intake.take()
            with intake.lock:
                done = intake.ledger.commit_taken()
            for segment in done:
                segment.path.unlink(missing_ok=True)

    workers = [threading.Thread(target=submitter, args=(k,)) for k in range(threads)]
    rot = threading.Thread(target=rotator)
    t0 = time.perf_counter()
    for t in [*workers, rot]:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in [*workers, rot]:
        t.join()
    elapsed = time.perf_counter() - t0
    syncs = counter.n
    os.fsync = counter.real
    intake.close()
    shutil.rmtree(journal, ignore_errors=True)
    lat = np.concatenate([np.asarray(x) for x in latencies])
    return len(lat) / elapsed, float(np.percentile(lat, 99)), syncs / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of a round (default 3)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per mode (default 2)")
    ap.add_argument("--threads", type=int, default=4, help="submitting threads (default 4)")
    ap.add_argument("--fsync-ms", type=float, default=1000.0,
                    help="TML_JOURNAL_FSYNC_MS of the batch mode (default 1000)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the journal goes (default: a temporary directory in ./data)")
    args = ap.parse_args()
    base = args.dir or REPO / "data"
    base.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="bench-fsync-", dir=base))
    best: dict[str, tuple[float, float, float]] = {}
    try:
        for _ in range(args.rounds):
            for mode in MODES:
                got = one_round(mode, directory, args.seconds, args.threads, args.fsync_ms)
                if mode not in best or got[0] > best[mode][0]:
                    best[mode] = got
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    off = best["off"][0]
    print(f"journal on {base} ({args.threads} threads, {args.rounds} x {args.seconds:g} s "
          f"per mode, batch every {args.fsync_ms:g} ms)")
    print("| TML_JOURNAL_FSYNC | submits/s | vs off | p99 of a submit | fsyncs/s |")
    print("| --- | --- | --- | --- | --- |")
    for mode in MODES:
        rate, p99, syncs = best[mode]
        print(f"| `{mode}` | {rate:,.0f} | {rate / off:.1%} | {p99 * 1e6:,.0f} us | "
              f"{syncs:,.0f} |")


if __name__ == "__main__":
    main()
