"""Run the real service (``python -m backend serve``) as a subprocess on a free port."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BOT_KEY = "test-bot-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"
VIEWER_KEY = "test-viewer-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, key: str | None = BOT_KEY, timeout: float = 30.0) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def _limit_nofile(n: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return limit


def start_service(*, db_url: str, data_dir: Path, env: dict[str, str] | None = None,
                  timeout: float = 180.0, wait_ready: bool = True,
                  nofile: int | None = None, new_session: bool = False) -> Service:
    """``nofile``: the child's RLIMIT_NOFILE, soft and hard (a small fd budget);
    ``new_session``: its own process group, to be signalled as a terminal's Ctrl+C is."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "TML_DATA_DIR": str(data_dir),
        "TML_PORT": str(port),
        "TML_BOT_API_KEYS": BOT_KEY,
        "TML_ADMIN_API_KEYS": ADMIN_KEY,
        "TML_VIEWER_API_KEYS": VIEWER_KEY,
        "TML_BOOTSTRAP_ON_START": "false",
        "TML_WRITER_FLUSH_SECONDS": "0.05",
        "TML_WRITER_RETRY_SECONDS": "0.2",
        "TML_MODEL_POLL_SECONDS": "1",
        "TML_COMPILED_MODEL_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / "tml-test-so"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = data_dir / f"service-{port}.log"
    log_fh = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO,
                            env=full_env, stdout=log_fh, stderr=subprocess.STDOUT,
                            preexec_fn=None if nofile is None else _limit_nofile(nofile),
                            start_new_session=new_session)
    svc = Service(url=f"http://127.0.0.1:{port}", proc=proc, data_dir=data_dir,
                  log_path=log_path, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}:\n{svc.log()}")
        try:
            r = httpx.get(f"{svc.url}/ready" if wait_ready else f"{svc.url}/health", timeout=2)
            if r.status_code == 200:
                return svc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    svc.kill()
    raise TimeoutError(f"service not ready after {timeout}s:\n{svc.log()}")


@contextlib.contextmanager
def service_on_copy(admin_url: str, template: str, data_dir: Path, *, prefix: str,
                    **kwargs: Any) -> Iterator[tuple[Service, str]]:
    """A service on a database of its own copied from ``template``: (service, its URL);
    stopped and the database dropped afterwards. kwargs go to :func:`start_service`."""
    from tests.utils.pg import create_database, drop_database

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = create_database(admin_url, name, template=template)
    try:
        svc = start_service(db_url=url, data_dir=data_dir, **kwargs)
        try:
            yield svc, url
        finally:
            svc.stop()
    finally:
        drop_database(admin_url, name)
