"""ProcessWriteBehind against a real Postgres: the server process only journals, a spawned
writer process writes the segments (with contributions of models loaded by id), is started
again if it dies, and nothing is lost or written twice; an outage leaves the journal for the
next start."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import pytest
import xgboost as xgb

from backend.db import trade_features
from backend.db.records import JournalRecord
from backend.db.writer_messages import Ack, WriterConfig
from backend.db.writer_process import ProcessWriteBehind
from tests.db.test_write_behind import UNREACHABLE, counts, entries, journal_lines, wait_until
from tests.utils.db_factories import make_model

StartWriter = Callable[..., ProcessWriteBehind]


@pytest.fixture
def start_writer(tmp_path: Path) -> Iterator[StartWriter]:
    """Starts ProcessWriteBehinds (journal ``tmp_path/journal`` unless told otherwise) and
    makes sure none of them leaves a writer process behind."""
    made: list[ProcessWriteBehind] = []

    def start(db_url: str, *, journal: Path | None = None, flush_seconds: float = 0.05,
              **overrides: Any) -> ProcessWriteBehind:
        options: dict[str, Any] = {
            "db_url": db_url, "journal_dir": str(journal or tmp_path / "journal"),
            "batch_size": 1000, "retry_seconds": 0.1, "top_contributions": None,
            "connect_kwargs": {"connect_timeout": 2}, "pool_timeout": 2, **overrides}
        w = ProcessWriteBehind(WriterConfig(**options), flush_seconds=flush_seconds)
        w.start()
        made.append(w)
        return w

    yield start
    for w in made:
        if w.alive or (w._child is not None and w._child.alive):
            w.close(timeout=5)
        if w._child is not None and w._child.alive:  # never leave a process behind
            os.kill(w._child.process.pid, signal.SIGKILL)
            w._child.process.join(5)


def child_stopped(w: ProcessWriteBehind) -> bool:
    return w._child is None or not w._child.process.is_alive()


def segment_files(journal: Path) -> list[Path]:
    return list(journal.glob("segment-*.jsonl"))


def trade_ids(pending: list[JournalRecord]) -> list[str]:
    return sorted(e.prediction["trade_id"] for e in pending)


def without_contributions(batch: list[JournalRecord]) -> list[JournalRecord]:
    for e in batch:
        e.prediction["contributions"] = None  # left for the writer to compute
    return batch


def blocked_on_a_trade_lock(conn: psycopg.Connection) -> bool:
    """A session of this database waits for a trade's advisory lock (the writer process,
    inside its batch transaction)."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()[0] > 0


NAMES = ["rsi_14", "atr_pct", "adx_14"]


def tiny_booster() -> xgb.Booster:
    """A real (small) XGBoost model on NAMES, trained on random data."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, len(NAMES)))
    y = (X[:, 0] - 0.7 * X[:, 1] + 0.3 * X[:, 2] + rng.normal(0, 0.3, 300) > 0)
    data = xgb.DMatrix(X, label=y.astype(np.float64), feature_names=NAMES)
    return xgb.train({"objective": "binary:logistic", "max_depth": 2, "eta": 0.3,
                      "nthread": 1}, data, num_boost_round=8)


def test_n_entries_become_n_rows_with_contributions_and_the_journal_empties(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter,
        tmp_path: Path) -> None:
    booster = tiny_booster()
    model = make_model(conn, artifact=bytes(booster.save_raw(raw_format="json")),
                       feature_names=NAMES, artifact_format="xgboost-json")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(25, len(NAMES)))
    batch = without_contributions(entries(model.id, 25, "wp"))
    for e, x in zip(batch, X.tolist(), strict=True):
        e.feature["features"] = dict(zip(NAMES, x, strict=True))

    w = start_writer(db_url, batch_size=7, top_contributions=2)  # several batches, top 2
    for e in batch:
        w.submit(e)
    assert w.stats.accepted == 25
    assert w.flush()
    assert w.depth == 0 and w.pending_records() == []
    journal = tmp_path / "journal"
    assert journal_lines(journal) == 0 and w.journal_bytes() == 0
    assert len(segment_files(journal)) == 1  # only the open (empty) segment is left
    assert counts(conn) == (25, 25)
    assert w.stats.written_batches >= 1 and w.stats.rejected == 0
    assert w.stats.db_healthy is True and w.restarts == 0
    w.close()
    assert child_stopped(w) and w._child is not None and w._child.exitcode == 0

    # The writer process loaded the model by id and stored the top-2 SHAP contributions.
    contribs = booster.predict(xgb.DMatrix(X, feature_names=NAMES), pred_contribs=True)
    stored = dict(conn.execute("SELECT trade_id, contributions FROM ml_predictions"))
    for i, row in enumerate(contribs[:, :-1].astype(np.float64)):
        top = sorted(range(len(NAMES)), key=lambda j, r=row: -abs(r[j]))[:2]
        expected = {NAMES[j]: row[j] for j in top if row[j] != 0.0}
        assert stored[f"wp-{i}"] == pytest.approx(expected, rel=1e-6)


def test_a_killed_writer_process_is_restarted_and_every_record_lands_once(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter) -> None:
    model_id = make_model(conn).id
    batch = entries(model_id, 30, "kill")
    w = start_writer(db_url)
    assert wait_until(lambda: w._child is not None and w._child.alive)
    with psycopg.connect(db_url) as blocker, blocker.transaction():
        # Hold the first trade's lock: the writer process's batch transaction waits on it,
        # so its segments are sent but not acknowledged when it is killed.
        trade_features.lock_trades(blocker, trade_ids=["kill-0"])
        for e in batch[:20]:
            w.submit(e)
        assert wait_until(lambda: blocked_on_a_trade_lock(conn))
        assert w._child is not None
        first = w._child.process
        os.kill(first.pid, signal.SIGKILL)
        assert wait_until(lambda: w.restarts >= 1 and w._child is not None
                          and w._child.process is not first and w._child.alive)
        for e in batch[20:]:
            w.submit(e)  # accepted while the new process takes over
        assert counts(conn) == (0, 0)
        assert w.depth == 30  # nothing acknowledged yet: all kept in the server
        assert first.exitcode == -signal.SIGKILL
    assert w.flush(timeout=10)
    assert counts(conn) == (30, 30)
    assert conn.execute("SELECT count(DISTINCT trade_id) FROM ml_predictions"
                        ).fetchone()[0] == 30
    assert w.depth == 0 and journal_lines(Path(w.config.journal_dir)) == 0
    w.close()
    assert child_stopped(w)
    assert counts(conn) == (30, 30)


def test_an_unreachable_database_keeps_the_journal_for_the_next_start(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter,
        tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    model_id = make_model(conn).id
    batch = entries(model_id, 8, "down")
    w = start_writer(UNREACHABLE, pool_timeout=0.5, connect_kwargs={"connect_timeout": 1})
    for e in batch:
        w.submit(e)  # accepted: journaled, no database needed
    assert w.stats.accepted == 8
    assert wait_until(lambda: w.stats.failed_attempts >= 1)
    assert w.stats.db_healthy is False and w.stats.last_error
    assert w.depth == 8
    assert trade_ids(w.pending_records()) == sorted(f"down-{i}" for i in range(8))
    assert not w.flush(timeout=0.3)
    started = time.monotonic()
    w.close(timeout=10)
    assert time.monotonic() - started < 10
    assert child_stopped(w)
    assert journal_lines(journal) == 8 and w.journal_bytes() > 0

    after = start_writer(db_url, journal=journal)  # the next start, database back
    assert after.stats.replayed == 8
    assert wait_until(lambda: after.depth == 0)  # flush() waits only for new submits
    assert after.stats.db_healthy is True
    assert counts(conn) == (8, 8)
    assert journal_lines(journal) == 0
    after.close()
    assert child_stopped(after)
    assert counts(conn) == (8, 8)
    stored = {r[0] for r in conn.execute("SELECT trade_id FROM ml_trade_features")}
    assert stored == {f"down-{i}" for i in range(8)}


@pytest.mark.parametrize("flush_seconds", [0.05, 3600.0])
def test_close_writes_everything_submitted(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter, tmp_path: Path,
        flush_seconds: float) -> None:
    """With flush_seconds=3600 nothing is rotated (and no writer process started) before
    close(). The model's artifact is not a loadable booster: no contributions, no failure."""
    model_id = make_model(conn).id  # tiny placeholder artifact: does not parse
    w = start_writer(db_url, flush_seconds=flush_seconds, top_contributions=5)
    for e in without_contributions(entries(model_id, 40, "close")):
        w.submit(e)
    w.close()
    assert child_stopped(w)
    assert counts(conn) == (40, 40)
    assert w.depth == 0
    assert journal_lines(tmp_path / "journal") == 0
    assert [p for p in segment_files(tmp_path / "journal") if p.stat().st_size] == []
    assert conn.execute("SELECT count(*) FROM ml_predictions WHERE contributions IS NULL"
                        ).fetchone()[0] == 40


def test_a_record_the_database_rejects_is_set_aside_and_does_not_block_the_rest(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter,
        tmp_path: Path) -> None:
    model_id = make_model(conn).id
    batch = entries(model_id, 6, "fk")
    batch[2].prediction["model_id"] = model_id + 1000  # no such model: foreign key
    w = start_writer(db_url, top_contributions=5)
    for e in batch:
        w.submit(e)
    assert w.flush()
    assert w.stats.rejected == 1 and w.stats.db_healthy is True
    assert w.depth == 0
    w.close()
    assert child_stopped(w)
    # the rejected entry is atomic: neither its prediction nor its feature row is stored
    assert counts(conn) == (5, 5)
    stored = {r[0] for r in conn.execute("SELECT trade_id FROM ml_trade_features")}
    assert stored == {f"fk-{i}" for i in (0, 1, 3, 4, 5)}
    [line] = (tmp_path / "journal" / "rejected.jsonl").read_bytes().splitlines()
    rejected = orjson.loads(line)
    assert rejected["entry"]["prediction"]["trade_id"] == "fk-2"
    assert "foreign key" in rejected["error"]
    assert journal_lines(tmp_path / "journal") == 0


def test_pending_records_hold_a_record_until_it_is_acknowledged(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter) -> None:
    model_id = make_model(conn).id
    batch = entries(model_id, 3, "ack")
    w = start_writer(db_url)
    with psycopg.connect(db_url) as blocker, blocker.transaction():
        trade_features.lock_trades(blocker, trade_ids=["ack-0"])  # the write waits on it
        for e in batch:
            w.submit(e)
        assert wait_until(lambda: blocked_on_a_trade_lock(conn))
        # sent to the writer process, in its transaction, not yet committed nor acknowledged
        assert trade_ids(w.pending_records()) == ["ack-0", "ack-1", "ack-2"]
        assert w.depth == 3
        assert not w.flush(timeout=0.3)
        assert trade_ids(w.pending_records()) == ["ack-0", "ack-1", "ack-2"]
    assert w.flush(timeout=10)
    assert w.pending_records() == [] and w.depth == 0
    assert counts(conn) == (3, 3)
    w.close()
    assert child_stopped(w)


def test_a_late_acknowledgement_from_a_killed_writer_removes_only_what_it_wrote(
        db_url: str, conn: psycopg.Connection, start_writer: StartWriter,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first writer process's acknowledgements are read late (as under GIL load). It is
    killed after writing a1; its late ack, read once a2 is written and a3 (held by a trade
    lock) is the only pending segment, must not drop a3."""
    from backend.db import writer_process

    real_init = writer_process._WriterChild.__init__
    generation = [0]
    delay = 6.0

    def init(self: Any, config: WriterConfig, on_message: Callable[[Ack], None]) -> None:
        if generation[0] == 0:
            def late(message: Ack, deliver: Callable[[Ack], None] = on_message) -> None:
                time.sleep(delay)
                deliver(message)
            on_message = late
        generation[0] += 1
        real_init(self, config, on_message)

    monkeypatch.setattr(writer_process._WriterChild, "__init__", init)
    model_id = make_model(conn).id
    a1, a2, a3 = (entries(model_id, 1, name)[0] for name in ("a1", "a2", "a3"))
    w = start_writer(db_url)
    w.submit(a1)
    assert wait_until(lambda: counts(conn) == (1, 1))  # written; its ack is being delayed
    late_ack_read = time.monotonic() + delay
    os.kill(w._child.process.pid, signal.SIGKILL)
    assert wait_until(lambda: w.restarts >= 1)
    with psycopg.connect(db_url) as hold_a3:
        trade_features.lock_trades(hold_a3, trade_ids=[a3.feature["trade_id"]])
        w.submit(a2)
        assert wait_until(lambda: counts(conn) == (2, 2))
        w.submit(a3)
        time.sleep(max(0.0, late_ack_read - time.monotonic()) + 0.5)
        assert not w.flush(timeout=0.5)
        assert trade_ids(w.pending_records()) == ["a3-0"]
        hold_a3.rollback()
    assert w.flush(timeout=10)
    assert counts(conn) == (3, 3) and w.pending_records() == []


def test_records_read_during_an_outage_are_kept_in_hand_for_the_retries(
        pg_admin_url: str, migrated_template: str, start_writer: StartWriter,
        tmp_path: Path) -> None:
    """The writer process reads a segment once and keeps its records across retries: the
    segment files are removed while the database does not exist yet, and every record
    still lands once it does (a writer that re-read them on each retry would find none)."""
    import uuid

    from tests.utils.pg import create_database, drop_database, with_dbname

    name = f"late_{uuid.uuid4().hex[:12]}"
    journal = tmp_path / "journal"
    batch = entries(1, 6, "kept")  # model id 1: the first model of the database made below
    w = start_writer(with_dbname(pg_admin_url, name), pool_timeout=0.5,
                     connect_kwargs={"connect_timeout": 1})
    for e in batch:
        w.submit(e)
    try:
        assert wait_until(lambda: w.stats.failed_attempts >= 2)  # read, tried, retried
        for path in journal.glob("segment-*.jsonl"):
            if path.stat().st_size:
                path.unlink()
        url = create_database(pg_admin_url, name, template=migrated_template)
        with psycopg.connect(url, autocommit=True) as conn:
            assert make_model(conn).id == 1
            assert w.flush(timeout=20)
            assert counts(conn) == (6, 6)
        w.close()
    finally:
        drop_database(pg_admin_url, name)
