"""The file-descriptor budget of ``serve`` (backend/server.py); the guards themselves are
tested against a running service in tests/api/test_connection_limits.py."""

from __future__ import annotations

import resource
import subprocess
import sys

from backend.config import Settings
from backend.server import FD_RESERVE, MIN_CONNECTIONS, fd_budget


def test_connections_get_what_the_reserve_leaves():
    b = fd_budget(Settings(db_pool_max_size=8), limit=1024)
    assert b.reserve == FD_RESERVE + 8
    assert b.max_connections == 1024 - FD_RESERVE - 8  # 1,100 idle sockets cannot fit


def test_a_configured_cap_above_the_budget_is_lowered():
    assert fd_budget(Settings(max_connections=5000), limit=1024).max_connections == 888
    assert fd_budget(Settings(max_connections=100), limit=1024).max_connections == 100
    assert fd_budget(Settings(), limit=64).max_connections == MIN_CONNECTIONS


def test_the_soft_limit_is_raised_to_the_hard_limit():
    code = ("import resource; from backend.server import raise_fd_limit; "
            "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))")

    def low_soft() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    out = subprocess.run([sys.executable, "-c", code], preexec_fn=low_soft, text=True,
                         capture_output=True, check=True).stdout
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert out.strip() == f"({hard}, 256) ({hard}, {hard})"
