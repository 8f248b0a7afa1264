"""ThreadWriteBehind against a real Postgres: batches land once, the journal survives a
crash and is replayed idempotently, bad records are set aside, an outage loses nothing."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from backend.db import predictions, trade_features
from backend.db.batch_writer import json_array
from backend.db.records import JournalRecord
from backend.db.write_behind import ThreadWriteBehind
from tests.utils.db_factories import feature_row, make_model, prediction_row

UNREACHABLE = "postgresql://tml:pw@127.0.0.1:1/postgres"  # port 1: connection refused


@pytest.fixture
def pool(db_url: str) -> Iterator[ConnectionPool]:
    p = ConnectionPool(db_url, min_size=1, max_size=2, timeout=5, open=False)
    p.open(wait=True)
    yield p
    p.close()


@pytest.fixture
def model_id(conn: psycopg.Connection) -> int:
    return make_model(conn).id


def entries(model_id: int, n: int, prefix: str = "wb") -> list[JournalRecord]:
    """Journal records shaped like ``Scored.journal_entry()``: a feature row and its
    prediction for each of ``n`` trades."""
    out = []
    for i in range(n):
        trade_id = f"{prefix}-{i}"
        out.append(JournalRecord(feature=asdict(feature_row(trade_id=trade_id)),
                                 prediction=asdict(prediction_row(model_id, trade_id=trade_id))))
    return out


def writer_on(pool: ConnectionPool, journal_dir: Path, **kwargs: Any) -> ThreadWriteBehind:
    options = {"flush_seconds": 0.05, "retry_seconds": 0.1, **kwargs}
    w = ThreadWriteBehind(pool, journal_dir, **options)
    w.start()
    return w


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT count(*) FROM ml_predictions").fetchone()[0],
            conn.execute("SELECT count(*) FROM ml_trade_features").fetchone()[0])


def crash(w: ThreadWriteBehind) -> None:
    """What a SIGKILL leaves: the journal on disk, nothing of the in-memory queue. (The
    writer thread is stopped only so that it does not linger in the test process; with
    the queue emptied it has nothing left to write.)"""
    with w.intake.lock:
        os.close(w.intake.journal._fd)
        w.intake.journal._fd = None
        w.intake.ledger._queued.clear()
    w._stop.set()
    w._wake.set()
    assert w._thread is not None
    w._thread.join(5)
    journal = w.intake.journal
    if journal._lock_fd is not None:  # the kernel drops a dead process's flock
        os.close(journal._lock_fd)
        journal._lock_fd = None


def journal_lines(journal_dir: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in journal_dir.glob("segment-*.jsonl"))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_n_entries_become_n_rows_and_the_journal_empties(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    w = writer_on(pool, tmp_path / "journal", batch_size=7)  # several batches
    for e in entries(model_id, 25):
        w.submit(e)
    assert w.stats.accepted == 25
    assert w.flush()
    w.close()
    assert counts(conn) == (25, 25)
    assert w.depth == 0 and w.journal_bytes() == 0
    assert w.stats.written_batches >= 1 and w.stats.rejected == 0
    stored = {r[0] for r in conn.execute("SELECT trade_id FROM ml_predictions")}
    assert stored == {f"wb-{i}" for i in range(25)}


def test_journal_is_replayed_after_a_crash_and_a_second_replay_adds_nothing(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    w = writer_on(pool, journal, flush_seconds=3600, batch_size=100_000)
    for e in entries(model_id, 12):
        w.submit(e)
    crash(w)
    del w
    assert counts(conn) == (0, 0)  # nothing reached the database before the crash
    assert journal_lines(journal) == 12
    kept = tmp_path / "kept"
    shutil.copytree(journal, kept)  # as if the replay committed but died before deleting

    second = writer_on(pool, journal)
    assert second.stats.replayed == 12
    assert second.flush()
    second.close()
    assert counts(conn) == (12, 12)

    for seg in kept.glob("segment-*.jsonl"):
        shutil.copy(seg, journal / seg.name)
    third = writer_on(pool, journal)
    assert third.stats.replayed == 12
    assert third.flush()
    third.close()
    assert counts(conn) == (12, 12)  # idempotent: replayed, inserted nothing twice
    assert journal_lines(journal) == 0


def test_a_torn_last_journal_line_is_skipped(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    w = writer_on(pool, journal, flush_seconds=3600, batch_size=100_000)
    for e in entries(model_id, 5):
        w.submit(e)
    crash(w)
    [segment] = [p for p in journal.glob("segment-*.jsonl") if p.stat().st_size]
    torn = entries(model_id, 1, prefix="torn")[0].to_json()
    with open(segment, "ab") as fh:
        fh.write(torn[: len(torn) // 2])  # the process died half-way through a write

    replay = writer_on(pool, journal)
    assert replay.stats.replayed == 5
    assert replay.flush()
    replay.close()
    assert counts(conn) == (5, 5)
    assert conn.execute("SELECT count(*) FROM ml_trade_features "
                        "WHERE trade_id LIKE 'torn%'").fetchone()[0] == 0


def test_a_record_the_database_rejects_is_set_aside_and_does_not_block_the_rest(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    batch = entries(model_id, 6)
    batch[2].prediction["probability"] = 1.5  # violates CHECK (probability <= 1)
    w = writer_on(pool, tmp_path / "journal", batch_size=1000)
    for e in batch:
        w.submit(e)
    assert w.flush()
    w.close()
    # The rejected entry is atomic: neither its prediction nor its feature row is stored.
    assert counts(conn) == (5, 5)
    stored = {r[0] for r in conn.execute("SELECT trade_id FROM ml_trade_features")}
    assert stored == {f"wb-{i}" for i in (0, 1, 3, 4, 5)}
    assert w.stats.rejected == 1
    [line] = (tmp_path / "journal" / "rejected.jsonl").read_bytes().splitlines()
    rejected = orjson.loads(line)
    assert rejected["entry"]["prediction"]["trade_id"] == "wb-2"
    assert "probability" in rejected["error"]


def test_unreachable_database_keeps_everything_journaled_for_the_next_start(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    dead = ConnectionPool(UNREACHABLE, min_size=1, max_size=1, timeout=0.5,
                          kwargs={"connect_timeout": 1}, open=False)
    dead.open(wait=False)
    batch = entries(model_id, 8)
    try:
        w = writer_on(dead, journal)
        for e in batch[:5]:
            w.submit(e)  # accepted: journaled, no database needed
        assert wait_until(lambda: w.stats.failed_attempts >= 1)
        assert w.stats.db_healthy is False and w.stats.last_error
        assert w.depth == 5
        for e in batch[5:]:
            w.submit(e)
        assert w.depth == 8  # the backlog grows while the database is away
        w.close(timeout=10)
        assert w._thread is not None and not w._thread.is_alive()
        assert journal_lines(journal) == 8 and w.journal_bytes() > 0
    finally:
        dead.close()

    after = writer_on(pool, journal)  # the next start, database back
    assert after.stats.replayed == 8
    assert after.flush()
    after.close()
    assert counts(conn) == (8, 8)


def test_a_malformed_journal_entry_is_set_aside_and_does_not_stop_the_writer(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    good = entries(model_id, 3)
    lines = [good[0].to_json(), b'{"feature": {"trade_id": "half"}, "prediction": null}',
             *(e.to_json() for e in good[1:])]
    (journal / "segment-00000001.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    w = writer_on(pool, journal)
    try:
        assert w.flush(timeout=3)
    finally:
        w.close()
    assert counts(conn) == (3, 3)
    [line] = (journal / "rejected.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["entry"]["feature"]["trade_id"] == "half"


# --- faults found in review: each reproduced, then fixed ------------------------------------

@pytest.mark.parametrize("fault", ["disk_full", "journal_dir_removed"])
def test_a_failed_journal_rotation_does_not_kill_the_writer(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path,
        fault: str) -> None:
    journal = tmp_path / "journal"
    w = writer_on(pool, journal, flush_seconds=3600)  # rotates only when woken
    a, b, c = entries(model_id, 3, "fault")
    w.submit(a)
    if fault == "disk_full":  # the journal's device fills up: ENOSPC from now on
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, w.intake.journal._fd)
        os.close(full)
        with pytest.raises(OSError):
            w.submit(b)  # refused, so the request answers 503: never accepted
    else:
        journal.rename(tmp_path / "moved")  # e.g. someone cleaned the data directory
    w._wake.set()
    time.sleep(0.5)
    assert w.alive
    if fault == "journal_dir_removed":
        (tmp_path / "moved").rename(journal)
    w._wake.set()
    time.sleep(0.3)
    if fault == "disk_full":
        w.submit(c)  # after a successful rotation the new segment is on a sane file
    assert w.flush(timeout=5)
    w.close()
    assert counts(conn)[0] == (2 if fault == "disk_full" else 1)


def test_flush_waits_only_for_records_accepted_before_it(
        pool: ConnectionPool, model_id: int, tmp_path: Path) -> None:
    w = writer_on(pool, tmp_path / "journal", flush_seconds=0.25)
    stream = iter(entries(model_id, 2000, "load"))
    stop = threading.Event()

    def producer() -> None:  # a steady trickle of new predictions
        while not stop.is_set():
            w.submit(next(stream))
            time.sleep(0.01)

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert w.flush(timeout=5.0)
    waited = time.monotonic() - started
    stop.set()
    t.join()
    w.close()
    assert waited < 2.0


def test_a_second_writer_on_the_same_journal_is_refused(pool: ConnectionPool,
                                                       tmp_path: Path) -> None:
    first = writer_on(pool, tmp_path / "journal")
    try:
        with pytest.raises(RuntimeError, match="in use by another process"):
            writer_on(pool, tmp_path / "journal")
    finally:
        first.close()
    writer_on(pool, tmp_path / "journal").close()  # released at close


@pytest.mark.slow  # a stress run of rotations and deletes (~10 s)
def test_journal_size_never_raises_while_segments_are_deleted(
        pool: ConnectionPool, model_id: int, tmp_path: Path) -> None:
    w = writer_on(pool, tmp_path / "journal", flush_seconds=0.001)
    stream = iter(entries(model_id, 100_000, "jb"))
    stop = threading.Event()

    def producer() -> None:
        while not stop.is_set():
            w.submit(next(stream))
            time.sleep(0.0005)

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    deadline = time.monotonic() + 2
    calls = 0
    try:
        while time.monotonic() < deadline:
            w.journal_bytes()
            calls += 1
    finally:
        stop.set()
        t.join()
        w.close()
    assert calls > 0


def test_a_journal_line_that_is_not_a_record_is_skipped(
        pool: ConnectionPool, conn: psycopg.Connection, model_id: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    good = entries(model_id, 2)
    lines = [good[0].to_json(), b"null", b"[1, 2]", good[1].to_json()]
    (journal / "segment-00000001.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    w = writer_on(pool, journal)
    try:
        assert w.flush(timeout=3)
        assert w.alive
    finally:
        w.close()
    assert counts(conn) == (2, 2)


@pytest.mark.parametrize("exit_first", [False, True])
def test_an_exit_reported_while_its_batch_is_in_flight_still_labels_the_trade(
        pool: ConnectionPool, conn: psycopg.Connection, db_url: str, model_id: int,
        tmp_path: Path, exit_first: bool) -> None:
    """The writer's transaction and the exit report's run at once (the bot retries its
    exits while the writer replays after an outage); whichever commits first, the trade
    ends labelled and resolved."""
    from backend.api.routes.exits import store_exit
    from backend.api.schemas.exits import ExitRecordRequest
    from backend.positions.service import exit_row

    [entry] = entries(model_id, 1, "race")
    signal_time = entry.feature["signal_time"]
    report = ExitRecordRequest(
        trade_id="race-0", symbol="EURUSD", side="long",
        entry_time=signal_time + timedelta(minutes=1),
        exit_time=signal_time + timedelta(hours=5), entry_price=1.07, exit_price=1.08,
        quantity=10_000, exit_reason="take_profit")
    w = ThreadWriteBehind(pool, tmp_path / "journal")
    with psycopg.connect(db_url) as exit_conn:
        if exit_first:  # the exit's transaction is open when the batch starts
            with exit_conn.transaction():
                record = threading.Thread(target=w._batches.write_batch, args=([entry],))
                store_exit(exit_conn, exit_row(report))
                record.start()
                time.sleep(0.3)  # the batch now waits on the trade's lock
            record.join(10)
        else:  # the batch's transaction is open when the exit arrives
            with pool.connection() as batch_conn, batch_conn.transaction():
                trade_features.lock_trades(batch_conn, trade_ids=["race-0"])
                trade_features.insert_json(batch_conn, rows_json=json_array([entry.feature]))
                predictions.insert_json(batch_conn, rows_json=json_array([entry.prediction]))
                exiting = threading.Thread(target=store_exit, args=(exit_conn, exit_row(report)))
                exiting.start()
                time.sleep(0.3)  # the exit now waits on the trade's lock
            exiting.join(10)
    label = conn.execute("SELECT label FROM ml_trade_features WHERE trade_id = 'race-0'"
                         ).fetchone()
    outcome = conn.execute("SELECT outcome FROM ml_predictions WHERE trade_id = 'race-0'"
                           ).fetchone()
    assert (label, outcome) == ((1,), (1,))


def test_the_in_thread_writer_computes_contributions_from_the_in_memory_vector(
        pool: ConnectionPool, conn: psycopg.Connection, tmp_path: Path) -> None:
    """The vector a record keeps in memory (never journaled) is what the in-thread
    enricher scores, not the stored feature dict."""
    import numpy as np
    import xgboost as xgb

    from backend.ml.contributions import add_contributions
    from backend.ml.predictor import LoadedModel
    from backend.ml.registry import load_booster
    from tests.db.test_writer_process import NAMES, tiny_booster

    booster = tiny_booster()
    row = make_model(conn, artifact=bytes(booster.save_raw(raw_format="json")),
                     feature_names=NAMES, artifact_format="xgboost-json")
    model = LoadedModel(row, load_booster(row), None)
    X = np.random.default_rng(2).normal(size=(5, len(NAMES)))
    batch = entries(row.id, 5, "vec")
    for r, x in zip(batch, X, strict=True):
        r.prediction["contributions"] = None  # left for the writer to compute
        r.feature["features"] = dict.fromkeys(NAMES, 0.0)  # not what was scored
        r.vector = x
    w = writer_on(pool, tmp_path / "journal",
                  enrich=lambda records: add_contributions(records, model, 2))
    for r in batch:
        w.submit(r)
    assert w.flush()
    w.close()
    assert b"vector" not in b"".join(r.to_json() for r in batch)
    contribs = booster.predict(xgb.DMatrix(X, feature_names=NAMES), pred_contribs=True)
    stored = dict(conn.execute("SELECT trade_id, contributions FROM ml_predictions"))
    for i, values in enumerate(contribs[:, :-1].astype(np.float64)):
        top = sorted(range(len(NAMES)), key=lambda j, v=values: -abs(v[j]))[:2]
        expected = {NAMES[j]: values[j] for j in top if values[j] != 0.0}
        assert stored[f"vec-{i}"] == pytest.approx(expected, rel=1e-6)
