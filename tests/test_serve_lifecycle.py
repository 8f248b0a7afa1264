"""Issue 12 item 17: ``serve`` on the embedded database exits 0 on SIGINT/SIGTERM, stops
the PostgreSQL it started, leaves one it found running, and ``db status|start|stop``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.utils.service import REPO, Service, start_service

pytestmark = pytest.mark.server


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # not under pytest's basetemp: postgres runs as user 'pgserver' when we are root
    path = Path(tempfile.mkdtemp(prefix="tml-life-"))
    path.chmod(0o755)
    yield path
    if not _postgres(path):  # a server still running keeps its files for a post-mortem
        shutil.rmtree(path, ignore_errors=True)


def _postgres(data_dir: Path) -> list[psutil.Process]:
    """The postmaster of ``data_dir/pg`` (pgserver passes the data directory on its
    command line)."""
    pg = str((data_dir / "pg").resolve())
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and pg in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _gone(data_dir: Path, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _postgres(data_dir):
            return True
        time.sleep(0.2)
    return False


def _db(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TML_DATA_DIR": str(data_dir), "DATABASE_URL": ""}
    return subprocess.run([sys.executable, "-m", "backend", "db", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _serve(data_dir: Path) -> Service:
    return start_service(db_url="", data_dir=data_dir, wait_ready=False)  # "" = embedded


def _stop(svc: Service, sig: signal.Signals) -> int:
    svc.proc.send_signal(sig)
    return svc.proc.wait(60)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_the_embedded_postgres_it_started_and_exits_0(sig: signal.Signals,
                                                                    data_dir: Path):
    svc = _serve(data_dir)
    try:
        assert len(_postgres(data_dir)) == 1
    finally:
        code = _stop(svc, sig)
    assert code == 0, svc.log()
    assert "Traceback" not in svc.log()
    assert _gone(data_dir), "the embedded postgres outlived the service"
    st = _db(data_dir, "status")
    assert st.returncode == 3 and st.stdout.startswith("stopped: "), st


def test_ctrl_c_to_the_process_group_right_after_start_is_clean(data_dir: Path):
    """A terminal's Ctrl+C signals every process of the group: the writer process too,
    which was still importing this early (a KeyboardInterrupt traceback, a restart)."""
    svc = start_service(db_url="", data_dir=data_dir, wait_ready=False, new_session=True)
    os.killpg(svc.proc.pid, signal.SIGINT)
    assert svc.proc.wait(60) == 0, svc.log()
    log = svc.log()
    assert "Traceback" not in log and "writer process exited" not in log, log
    assert _gone(data_dir)


def test_a_database_started_by_db_start_outlives_serve_until_db_stop(data_dir: Path):
    started = _db(data_dir, "start")
    assert started.returncode == 0 and started.stdout.startswith("running: "), started
    try:
        st = _db(data_dir, "status")
        assert st.returncode == 0 and st.stdout.startswith("running: "), st
        svc = _serve(data_dir)
        busy = _db(data_dir, "stop")  # the service uses it: refused without --force
        assert busy.returncode == 2 and "in use by pid" in busy.stderr, busy
        assert _stop(svc, signal.SIGTERM) == 0, svc.log()
        assert len(_postgres(data_dir)) == 1  # found running: left running
        assert _db(data_dir, "status").returncode == 0
    finally:
        stopped = _db(data_dir, "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped: "), stopped
    assert _gone(data_dir)
    assert _db(data_dir, "status").returncode == 3


def test_a_killed_service_leaves_no_handle_that_keeps_postgres_alive(tmp_path: Path):
    from backend.db.embedded import HANDLES, live_users

    pg = tmp_path / "pg"
    pg.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (pg / HANDLES).write_text(f"[{dead.stdout.strip()}, {os.getpid()}]")
    assert live_users(pg) == [os.getpid()]
    assert (pg / HANDLES).read_text() == f"[{os.getpid()}]"
