"""tml_client against the real service: typed answers, idempotent retries on connection
errors, errors that name the field, TCP_NODELAY, and no dependency beyond httpx."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from tml_client import (
    ExitAdvice,
    ExitRecord,
    Prediction,
    ServiceError,
    ServiceUnavailable,
    TMLClient,
    ValidationFailed,
)

from tests.api.test_exits import exit_body, wait_until
from tests.utils.market_slices import predict_body
from tests.utils.service import BOT_KEY, REPO, Service, free_port


def _predictions(db_url: str, trade_id: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM ml_predictions WHERE trade_id = %s",
                            (trade_id,)).fetchone()[0]


def _signal(trade_id: str, **extra) -> dict:
    body = predict_body(trade_id, **extra)
    body.pop("strategy")
    return {**body, "strategy": "ma_cross"}


def test_importable_with_httpx_only() -> None:
    blocker = (
        "import sys\n"
        "BLOCKED = {'backend', 'numpy', 'pandas', 'pydantic', 'fastapi', 'psycopg', 'orjson'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path = [p for p in sys.path if p not in ('', {str(REPO)!r})]\n"
        f"sys.path.insert(0, {str(REPO / 'client')!r})\n"
        "import tml_client\n"
        "c = tml_client.TMLClient('http://127.0.0.1:1', 'k')\n"
        "c.close()\n"
        "print(sorted(m for m in BLOCKED if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True,
                         cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_predict_batch_and_exits_typed(service: Service, client_db_url: str) -> None:
    with TMLClient(service.url, BOT_KEY) as tml:
        first = tml.predict(**_signal("c-1"))
        again = tml.predict(**_signal("c-1"))
        batch = tml.predict_batch([_signal("c-2"), _signal("c-3", side="short")])
        body = exit_body("c-1")
        candles = predict_body("c-1")["candles"]
        advice = tml.evaluate_exit(  # entered at the open of the 101st candle of the 120
            trade_id="c-1", symbol="EURUSD", side="long", entry_time=candles["time"][100],
            entry_price=1.07, quantity=1000, initial_stop=1.065, candles=candles)
        recorded = tml.record_exit(**body)
        recorded_again = tml.record_exit(**body)
    assert isinstance(first, Prediction) and first.decision in ("take", "skip")
    assert first.take == (first.decision == "take") and 0 <= first.probability <= 1
    assert first.model.id > 0 and not first.duplicate
    assert again.duplicate and again.prediction_id == first.prediction_id
    assert [p.trade_id for p in batch] == ["c-2", "c-3"]
    assert isinstance(advice, ExitAdvice) and advice.action in (
        "hold", "exit", "update_stop", "take_partial")
    assert advice.mfe >= 0 and advice.mae >= 0 and advice.last_candle_time.tzinfo
    assert isinstance(recorded, ExitRecord) and recorded.created
    assert recorded_again.created is False and recorded_again.id == recorded.id
    assert abs(recorded.r_multiple - 2.0) < 1e-9
    assert wait_until(lambda: [_predictions(client_db_url, t) for t in ("c-1", "c-2", "c-3")]
                      == [1, 1, 1])


def test_extra_response_fields_are_kept_not_fatal(service: Service) -> None:
    with service.client() as http:
        raw = http.post("/api/v1/predict", json=predict_body("c-4")).json()
    answer = Prediction.from_json({**raw, "rule": "expected_value", "expected_r": 0.12})
    assert answer.decision == raw["decision"]
    assert answer.extra == {"rule": "expected_value", "expected_r": 0.12}


def test_errors_name_the_field_and_the_reason(service: Service) -> None:
    bad = _signal("c-5")
    bad["candles"]["high"][7] = bad["candles"]["low"][7] / 2
    with TMLClient(service.url, BOT_KEY) as tml, pytest.raises(ValidationFailed) as err:
        tml.predict(**bad)
    assert err.value.status == 422
    assert err.value.field.startswith("candles") and "7" in err.value.field
    assert err.value.reason and err.value.errors[0].reason == err.value.reason
    with TMLClient(service.url, "not-a-key") as tml, pytest.raises(ServiceError) as err:
        tml.predict(**_signal("c-6"))
    assert err.value.status == 401 and not isinstance(err.value, ValidationFailed)


def test_no_service_is_unavailable_after_the_retries() -> None:
    port = free_port()  # nothing listens there
    with TMLClient(f"http://127.0.0.1:{port}", BOT_KEY, retries=2, backoff=0.01) as tml, \
            pytest.raises(ServiceUnavailable, match="3 attempt"):
        tml.predict(**_signal("c-7"))


@pytest.fixture
def flaky_proxy(service: Service) -> Iterator[tuple[str, list[str]]]:
    """A loopback proxy to the service that drops its first connection unanswered."""
    listener = socket.create_server(("127.0.0.1", 0))
    target = ("127.0.0.1", int(service.url.rsplit(":", 1)[1]))
    seen: list[str] = []

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if not seen:
                seen.append("dropped")
                conn.recv(65536)  # read the request, then hang up without an answer
                conn.close()
                continue
            seen.append("forwarded")
            upstream = socket.create_connection(target)
            threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    listener.close()


def test_connection_error_is_retried_with_the_same_trade_id(flaky_proxy, client_db_url) -> None:
    url, seen = flaky_proxy
    with TMLClient(url, BOT_KEY, retries=2, backoff=0.01) as tml:
        answer = tml.predict(**_signal("c-8"))
    assert seen[:2] == ["dropped", "forwarded"]
    assert answer.trade_id == "c-8" and not answer.duplicate  # scored once
    assert wait_until(lambda: _predictions(client_db_url, "c-8") == 1)


def test_connections_are_kept_alive_with_tcp_nodelay(service: Service) -> None:
    with TMLClient(service.url, BOT_KEY) as tml:
        tml.predict(**_signal("c-9"))
        tml.predict(**_signal("c-10"))
        pool = tml._http._transport._pool  # httpx -> httpcore: the live connections
        streams = [c._connection._network_stream for c in pool.connections]
        assert len(streams) == 1  # both calls on one kept-alive connection
        sock = streams[0].get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
