"""The embedded PostgreSQL (pgserver) in ``TML_DATA_DIR/pg``, and ``python -m backend db``.

pgserver's semantics: every process that opens a data directory adds its pid to
``pg/.handle_pids.json`` and, at exit, removes it; the last one out stops the server. Two
gaps are closed here: a process that died without its exit handlers (``kill -9``, or
uvicorn re-raising SIGTERM) left its pid listed forever, so nobody ever stopped the
server again (dead pids are now dropped first); and a server found running with no live
user (``db start``, or a leftover) is left running as found: a process stops only a
server it started or shares with live processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HANDLES = ".handle_pids.json"  # pgserver's list of the processes using a data directory
_lock = threading.Lock()
_servers: dict[Path, Any] = {}


@dataclass(frozen=True, slots=True)
class Status:
    data_dir: Path
    pid: int | None  # the postmaster's, when running
    uri: str | None
    users: list[int]  # live processes holding a pgserver handle

    @property
    def running(self) -> bool:
        return self.pid is not None


def live_users(path: Path) -> list[int]:
    """The live pids in pgserver's handle list; dead ones are removed from the file."""
    import psutil  # with pgserver: not loaded when DATABASE_URL is set
    from pgserver.postgres_server import PostgresServer

    handles = path / HANDLES
    with PostgresServer._lock:  # pgserver's own inter-process lock over that file
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return []
        alive = [p for p in pids if psutil.pid_exists(p)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
    return alive


def status(pg_data_dir: Path) -> Status:
    from pgserver.utils import PostmasterInfo

    path = pg_data_dir.resolve()
    info = PostmasterInfo.read_from_pgdata(path) if path.is_dir() else None
    users = [p for p in live_users(path) if p != os.getpid()] if path.is_dir() else []
    if info is None or not info.is_running():
        return Status(path, None, None, users)
    return Status(path, info.pid, info.get_uri(), users)


def embedded_url(pg_data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL in ``pg_data_dir`` and return its URL."""
    import pgserver

    path = pg_data_dir.resolve()
    with _lock:
        server = _servers.get(path)
        if server is None:
            path.mkdir(parents=True, exist_ok=True)
            found = status(path)
            # running with no live user: started by `db start` or left over; leave it so
            mode = None if found.running and not found.users else "stop"
            log.info("%s embedded PostgreSQL in %s", "using the running" if found.running
                     else "starting", path)
            server = pgserver.get_server(path, cleanup_mode=mode)
            _servers[path] = server
        return server.get_uri()


def release_embedded() -> None:
    """Give up this process's handles now (pgserver would at exit): a server it started
    and no live process shares stops here."""
    with _lock:
        for server in _servers.values():
            server.cleanup()  # honours cleanup_mode; idempotent with pgserver's atexit
        _servers.clear()


def stop(pg_data_dir: Path, *, force: bool = False) -> str:
    import pgserver

    found = status(pg_data_dir)
    if not found.running:
        return f"stopped: {found.data_dir} (nothing to do)"
    if found.users and not force:
        raise RuntimeError(f"in use by pid {', '.join(map(str, found.users))} "
                           "(stop those first, or --force)")
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=found.data_dir,
                    user="pgserver" if os.geteuid() == 0 else None)  # pgserver's user as root
    (found.data_dir / HANDLES).write_text("[]")  # nobody holds a stopped server
    return f"stopped: {found.data_dir} (was pid {found.pid})"


def _describe(st: Status) -> str:
    if not st.running:
        return f"stopped: {st.data_dir}"
    users = f"; used by pid {', '.join(map(str, st.users))}" if st.users else ""
    return f"running: {st.data_dir} (pid {st.pid}, {st.uri}){users}"


def main(argv: Sequence[str]) -> int:
    """``python -m backend db start|stop|status``; status exits 3 when stopped (pg_ctl's)."""
    from backend.config import get_settings

    p = argparse.ArgumentParser(prog="python -m backend db",
                                description="The embedded PostgreSQL in TML_DATA_DIR/pg "
                                            "(used when DATABASE_URL is unset).")
    p.add_argument("action", choices=["start", "stop", "status"],
                   help="start: run it detached (left running until `db stop`); "
                        "stop: fast shutdown; status: running or stopped (exit 3)")
    p.add_argument("--force", action="store_true",
                   help="stop even while a service or other command uses it")
    args = p.parse_args(list(argv))
    s = get_settings()
    if s.database_url is not None and s.database_url.get_secret_value():
        print("note: DATABASE_URL is set; the service does not use this embedded database",
              file=sys.stderr)
    try:
        if args.action == "start":
            import pgserver

            s.pg_data_dir.mkdir(parents=True, exist_ok=True)
            pgserver.get_server(s.pg_data_dir.resolve(), cleanup_mode=None)
            print(_describe(status(s.pg_data_dir)))
        elif args.action == "stop":
            print(stop(s.pg_data_dir, force=args.force))
        else:
            st = status(s.pg_data_dir)
            print(_describe(st))
            return 0 if st.running else 3
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
