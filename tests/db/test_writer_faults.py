"""Both writer strategies under journal faults, against a real Postgres (issue 12, items 1
and 2): a full disk (a real tmpfs), a journal rotation failing (EMFILE at os.open), a
committed segment that cannot be deleted (an immutable file: PermissionError even for
root)."""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from backend.db import batch_writer
from backend.db.write_behind import ThreadWriteBehind, WriteBehind
from backend.db.writer_messages import WriterConfig
from backend.db.writer_process import ProcessWriteBehind
from tests.db.test_journal_faults import segment_opens_fail, tmpfs  # noqa: F401
from tests.db.test_write_behind import entries, wait_until
from tests.utils.db_factories import make_model
from tests.utils.disk_full import fill

StartWriter = Callable[..., WriteBehind]


@pytest.fixture
def model_id(conn: psycopg.Connection) -> int:
    return make_model(conn).id


@pytest.fixture(params=["thread", "process"])
def start_writer(request: pytest.FixtureRequest, db_url: str) -> Iterator[StartWriter]:
    """Starts writers of one strategy; closes them (and their pools) afterwards."""
    made: list[WriteBehind] = []
    pools: list[ConnectionPool] = []

    def start(journal: Path, *, flush_seconds: float = 0.05) -> WriteBehind:
        w: WriteBehind
        if request.param == "thread":
            pool = ConnectionPool(db_url, min_size=1, max_size=2, timeout=5, open=False)
            pool.open(wait=True)
            pools.append(pool)
            w = ThreadWriteBehind(pool, journal, flush_seconds=flush_seconds,
                                  retry_seconds=0.1)
        else:
            config = WriterConfig(db_url=db_url, journal_dir=str(journal), batch_size=1000,
                                  retry_seconds=0.1, top_contributions=None,
                                  connect_kwargs={"connect_timeout": 2}, pool_timeout=2)
            w = ProcessWriteBehind(config, flush_seconds=flush_seconds)
        w.start()
        made.append(w)
        return w

    yield start
    for w in made:
        w.close(timeout=5)
    for pool in pools:
        pool.close()


def stored(conn: psycopg.Connection) -> list[str]:
    return sorted(r[0] for r in conn.execute("SELECT trade_id FROM ml_predictions"))


def test_records_refused_on_a_full_disk_never_reach_the_database(
        tmpfs: Path, start_writer: StartWriter, conn: psycopg.Connection,  # noqa: F811
        model_id: int, monkeypatch: pytest.MonkeyPatch) -> None:  # tmpfs first: unmounted
    monkeypatch.setattr(batch_writer, "REFUSAL_HOLD_S", 0.5)  # after the writer is closed
    w = start_writer(tmpfs / "journal", flush_seconds=3600)  # one segment throughout
    accepted, refused = [], []
    batch = entries(model_id, 20, "full")
    w.submit(batch[0])
    accepted.append("full-0")
    filler = fill(tmpfs)
    for i, e in enumerate(batch[1:-1], start=1):
        try:
            w.submit(e)
            accepted.append(f"full-{i}")
        except OSError:  # the request answers 503
            refused.append(f"full-{i}")
    assert len(refused) >= 10 and w.stats.refused == len(refused)
    assert w.stats.stalled and not w.healthy  # so /ready is not "ready" meanwhile
    filler.unlink()
    w.submit(batch[-1])
    accepted.append("full-19")
    assert w.stats.append_error is None  # appends work again...
    assert w.stats.stalled  # ...but readiness waits out REFUSAL_HOLD_S (no flapping)
    assert wait_until(lambda: not w.stats.stalled, timeout=5)
    assert w.flush(timeout=15) and w.healthy
    assert stored(conn) == sorted(accepted)  # each accepted once, no refused one


def test_a_record_accepted_while_rotation_fails_goes_on_without_another_request(
        start_writer: StartWriter, conn: psycopg.Connection, model_id: int, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = entries(model_id, 2, "rot")
    w = start_writer(tmp_path / "journal")
    w.submit(first)
    assert w.flush(timeout=15) and w.healthy
    state = segment_opens_fail(monkeypatch, errno.EMFILE)  # e.g. idle sockets took every fd
    w.submit(second)
    assert wait_until(lambda: not w.healthy, timeout=5)
    assert w.alive and "journal rotation" in (w.stats.rotation_error or "")
    state["failing"] = False  # fds free again; no request comes in
    assert wait_until(lambda: len(stored(conn)) == 2, timeout=10)
    assert wait_until(lambda: w.healthy and w.depth == 0, timeout=5)


def test_records_keep_reaching_the_database_while_the_rotation_keeps_failing(
        start_writer: StartWriter, conn: psycopg.Connection, model_id: int, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = start_writer(tmp_path / "journal")
    assert wait_until(lambda: w.healthy, timeout=15)  # the writer (process) is up
    segment_opens_fail(monkeypatch, errno.EMFILE)  # and stays so
    for e in entries(model_id, 3, "stuck"):
        w.submit(e)
    assert wait_until(lambda: len(stored(conn)) == 3, timeout=10)
    assert not w.healthy
    if isinstance(w, ProcessWriteBehind):  # kept until their segment closes and is acked
        assert w.depth == 3


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Callable[[Path, bool], None]]:
    """chattr +i / -i: a file even root cannot delete (skipped where chattr does not work)."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here")
    marked: list[Path] = []

    def mark(path: Path, on: bool) -> None:
        done = subprocess.run(["chattr", "+i" if on else "-i", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr does not work here: {done.stderr.strip()}")
        if on:
            marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_segment_that_cannot_be_deleted_is_retried_and_the_writer_keeps_running(
        start_writer: StartWriter, conn: psycopg.Connection, model_id: int, tmp_path: Path,
        immutable: Callable[[Path, bool], None]) -> None:
    journal = tmp_path / "journal"
    w = start_writer(journal, flush_seconds=1.0)
    a, b = entries(model_id, 2, "del")
    w.submit(a)
    segment = journal / "segment-00000001.jsonl"
    immutable(segment, True)  # before the rotation (up to 1 s away) closes and sends it
    assert w.flush(timeout=15)  # written and acknowledged although it cannot be deleted
    time.sleep(0.3)
    assert segment.exists() and w.alive
    if isinstance(w, ProcessWriteBehind):
        assert w.restarts == 0  # the writer process did not die over it
    w.submit(b)
    assert w.flush(timeout=15)  # and it keeps writing
    assert stored(conn) == ["del-0", "del-1"]
    immutable(segment, False)
    assert wait_until(lambda: not segment.exists(), timeout=10)  # retried later

