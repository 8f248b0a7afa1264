"""Issue 12 item 13: connections are timed out and capped (a real service over sockets).

The service runs with a small file-descriptor limit (512, soft and hard) so that a flood
of idle sockets would exhaust it without the connection cap, and with short timeouts so
that each test takes seconds."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.utils.service import BOT_KEY, Service, service_on_copy

pytestmark = pytest.mark.server

HEADER_S, BODY_S, MAX_IN_FLIGHT, NOFILE = 2.0, 2.0, 4, 512
SLACK_S = 1.5


@pytest.fixture(scope="module")
def svc(pg_admin_url: str, migrated_template: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_copy(pg_admin_url, migrated_template, tmp_path_factory.mktemp("conn"),
                         prefix="conn", wait_ready=False, nofile=NOFILE,
                         env={"TML_HEADER_TIMEOUT_S": str(HEADER_S),
                              "TML_BODY_TIMEOUT_S": str(BODY_S),
                              "TML_MAX_CONCURRENCY": str(MAX_IN_FLIGHT)}) as (service, _):
        yield service


def _connect(svc: Service) -> socket.socket:
    host, port = svc.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_after(sock: socket.socket, dribble: bytes = b"", every: float = 0.5,
                  limit: float = 15.0) -> tuple[float, bytes]:
    """Send ``dribble`` one byte per ``every`` seconds until the server closes; return
    (seconds until closed, what the server sent)."""
    start, got, i = time.monotonic(), b"", 0
    while time.monotonic() - start < limit:
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return time.monotonic() - start, got
            got += chunk
            continue
        if i < len(dribble):
            try:
                sock.sendall(dribble[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start, got
            i += 1
    raise AssertionError(f"connection still open after {limit} s (received {got!r})")


def test_a_socket_that_sends_nothing_is_closed_within_the_header_timeout(svc: Service):
    with _connect(svc) as sock:
        elapsed, got = _closed_after(sock)
    assert HEADER_S - 0.3 <= elapsed <= HEADER_S + SLACK_S
    assert got == b""  # nothing was asked: nothing is answered


def test_headers_sent_one_byte_at_a_time_are_cut_off(svc: Service):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris\r\n\r\n"
    with _connect(svc) as sock:
        elapsed, got = _closed_after(sock, request, every=0.5)
    assert elapsed <= HEADER_S + SLACK_S
    assert got.startswith(b"HTTP/1.1 408 "), got  # never the /health answer


def test_a_body_sent_one_byte_at_a_time_is_cut_off(svc: Service):
    head = (b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-API-Key: " + BOT_KEY.encode() + b"\r\nContent-Length: 400\r\n\r\n")
    with _connect(svc) as sock:
        sock.sendall(head)
        elapsed, _ = _closed_after(sock, b"{" + b" " * 399, every=0.5)
    assert elapsed <= BODY_S + SLACK_S


def test_more_idle_sockets_than_file_descriptors_leave_new_requests_answered(svc: Service):
    idle = [_connect(svc) for _ in range(NOFILE + 100)]
    try:
        time.sleep(0.3)  # let the server accept them
        start = time.monotonic()
        r = httpx.get(f"{svc.url}/health", timeout=5)
        assert r.status_code == 200 and time.monotonic() - start < 2.0
    finally:
        for s in idle:
            s.close()


def test_requests_beyond_the_concurrency_limit_get_a_fast_503(svc: Service):
    head = (b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-API-Key: " + BOT_KEY.encode() + b"\r\nContent-Length: 400\r\n\r\n")
    busy = [_connect(svc) for _ in range(MAX_IN_FLIGHT)]
    try:
        for s in busy:  # each request is in flight, waiting for its body
            s.sendall(head)
        time.sleep(0.3)
        start = time.monotonic()
        r = httpx.get(f"{svc.url}/health", timeout=5)
        assert r.status_code == 503 and time.monotonic() - start < 1.0
    finally:
        for s in busy:
            s.close()
    time.sleep(0.3)  # the slots free as those connections close
    assert httpx.get(f"{svc.url}/health", timeout=5).status_code == 200


def test_the_fd_budget_is_logged_at_start(svc: Service):
    log = svc.log()
    assert "file descriptors: limit 512;" in log
    assert "up to 376 client connections, 4 requests in flight" in log  # 512 - 128 - 8
