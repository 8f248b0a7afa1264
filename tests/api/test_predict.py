"""POST /predict over HTTP against the real service and a real PostgreSQL.

Every test runs twice: on the fast path (``TML_FAST_PATH=true``, the default) and on the
FastAPI route it falls back to; every 200 body of /predict and /predict/batch is validated
against its response schema.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from backend.api.schemas.predict import PredictBatchResponse, PredictResponse
from tests.utils.market_slices import predict_body
from tests.utils.pg import count_rows, wait_for_rows
from tests.utils.service import ADMIN_KEY, BOT_KEY, Service
from tests.utils.service import start_service as _start_service

RESPONSE_SCHEMAS = {"/api/v1/predict": PredictResponse,
                    "/api/v1/predict/batch": PredictBatchResponse}


def _check_body(response: httpx.Response) -> None:
    """A 200 of /predict(/batch) is its schema, field for field (nothing missing, no extra,
    no other type)."""
    schema = RESPONSE_SCHEMAS.get(response.request.url.path)
    if schema is None or response.status_code != 200:
        return
    body = orjson.loads(response.read())
    parsed = schema.model_validate(body, strict=True)
    assert parsed.model_dump(mode="json") == body, body


class CheckedService(Service):
    def client(self, key: str | None = BOT_KEY, timeout: float = 30.0) -> httpx.Client:
        http = super().client(key, timeout)
        http.event_hooks["response"].append(_check_body)
        return http


@pytest.fixture(params=["true", "false"], ids=["fast_path", "fastapi_route"])
def fast_path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def start(fast_path: str):
    """start_service on this test's path, with every 200 body checked."""
    def run(*, db_url: str, data_dir: Path, env: dict[str, str] | None = None) -> Service:
        svc = _start_service(db_url=db_url, data_dir=data_dir,
                             env={"TML_FAST_PATH": fast_path, **(env or {})})
        return CheckedService(**{f.name: getattr(svc, f.name)
                                 for f in dataclasses.fields(svc)})
    return run


@pytest.fixture
def service(api_db_url: str, tmp_path: Path, start) -> Iterator[Service]:
    svc = start(db_url=api_db_url, data_dir=tmp_path / "svc")
    yield svc
    svc.stop()


def test_prediction_lands_as_feature_row_and_prediction(service: Service, api_db_url: str):
    with service.client() as http:
        r = http.post("/api/v1/predict", json=predict_body("t-1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0.0 <= body["probability"] <= 1.0
    assert body["decision"] == ("take" if body["probability"] >= body["threshold"] else "skip")
    assert body["contributions"] is None  # only with explain: true
    assert wait_for_rows(api_db_url, "ml_predictions", 1) == 1
    assert count_rows(api_db_url, "ml_trade_features", "trade_id = %s", ("t-1",)) == 1
    assert count_rows(api_db_url, "ml_predictions", "trade_id = %s AND model_id = %s "
                      "AND id = %s::uuid", ("t-1", body["model"]["id"],
                                            body["prediction_id"])) == 1
    # the rule that decided and the expected R are stored with the prediction
    assert body["rule"] == "expected_value"
    assert count_rows(api_db_url, "ml_predictions", "trade_id = 't-1' AND decision_rule = %s "
                      "AND abs(expected_r - %s) < 1e-12 AND abs(threshold - %s) < 1e-12",
                      (body["rule"], body["expected_r"], body["threshold"])) == 1


def test_expected_value_decision_follows_the_signals_stop_and_target(service: Service):
    """No TML_DECISION_THRESHOLD: take when p x reward - (1 - p) x risk > 0, reward/risk from
    the signal's own stop and target, else the model's training barrier (2 ATR : 1 ATR)."""
    body = predict_body("ev-barrier")
    close = body["candles"]["close"][-1]
    with service.client() as http:
        barrier = http.post("/api/v1/predict", json=body).json()
        wide = http.post("/api/v1/predict", json={
            **predict_body("ev-wide"), "stop_price": close * 0.99,
            "target_price": close * 1.09}).json()  # 9 R to win against 1 R to lose
        wrong = http.post("/api/v1/predict", json={
            **predict_body("ev-wrong"), "stop_price": close * 1.01})
    p = barrier["probability"]
    assert barrier["threshold"] == pytest.approx(1 / 3)  # break-even of 2 R : 1 R
    assert barrier["expected_r"] == pytest.approx(p * 2 - (1 - p))
    assert barrier["decision"] == ("take" if barrier["expected_r"] > 0 else "skip")
    assert wide["threshold"] == pytest.approx(0.1)
    assert wide["expected_r"] == pytest.approx(wide["probability"] * 9 - (1 - wide["probability"]))
    assert wide["decision"] == ("take" if wide["expected_r"] > 0 else "skip")
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"][-1] == "stop_price"


def test_same_trade_id_returns_stored_prediction_without_duplicate(service: Service,
                                                                   api_db_url: str):
    with service.client() as http:
        first = http.post("/api/v1/predict", json=predict_body("dup-1")).json()
        again = http.post("/api/v1/predict", json=predict_body("dup-1")).json()
        # a different candle window: not the stored answer (an old model's, maybe), a 409
        other = http.post("/api/v1/predict", json=predict_body("dup-1", end=3500))
    assert other.status_code == 409
    assert other.json()["prediction_id"] == first["prediction_id"]
    assert again["duplicate"] is True
    assert again["prediction_id"] == first["prediction_id"]
    assert again["probability"] == first["probability"]
    wait_for_rows(api_db_url, "ml_predictions", 1)
    time.sleep(0.3)  # give a wrongly queued duplicate time to land
    assert count_rows(api_db_url, "ml_predictions", "trade_id = 'dup-1'") == 1
    assert count_rows(api_db_url, "ml_trade_features", "trade_id = 'dup-1'") == 1


def test_explain_and_both_candle_forms(service: Service):
    with service.client() as http:
        cols = http.post("/api/v1/predict", json=predict_body("f-1", explain=True)).json()
        rows = http.post("/api/v1/predict",
                         json=predict_body("f-2", rows=True, explain=True)).json()
    assert rows["probability"] == pytest.approx(cols["probability"], abs=1e-12)
    # at most TML_TOP_CONTRIBUTIONS, largest first, none that contributed nothing
    assert isinstance(cols["contributions"], dict) and len(cols["contributions"]) <= 5
    assert all(v != 0.0 for v in cols["contributions"].values())
    magnitudes = [abs(v) for v in cols["contributions"].values()]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert set(cols["contributions"]) <= set(_feature_names(service))


def _feature_names(service: Service) -> list[str]:
    with service.client() as http:
        model_id = http.get("/api/v1/models", params={"status": "active"}).json()["data"][0]["id"]
        return http.get(f"/api/v1/models/{model_id}").json()["feature_names"]


def test_batch_answers_in_order(service: Service, api_db_url: str):
    bodies = [predict_body(f"b-{i}", end=2000 + 37 * i, side="long" if i % 2 else "short")
              for i in range(6)]
    with service.client() as http:
        batch = http.post("/api/v1/predict/batch", json={"signals": bodies})
        singles = [http.post("/api/v1/predict", json={**b, "trade_id": "s" + b["trade_id"]})
                   .json() for b in bodies]
    assert batch.status_code == 200, batch.text
    data = batch.json()["data"]
    assert [d["trade_id"] for d in data] == [b["trade_id"] for b in bodies]
    for d, s in zip(data, singles, strict=True):
        assert d["probability"] == pytest.approx(s["probability"], abs=1e-6)
    assert wait_for_rows(api_db_url, "ml_predictions", 12) == 12


def _nan_body() -> bytes:
    body = predict_body("bad-nan")
    body["candles"]["close"][5] = 987654.25  # a sentinel no real price equals
    # JSON has no NaN literal; bots written in Python send one anyway
    return orjson.dumps(body).replace(b"987654.25", b"NaN", 1)


def _mutate(key: str):
    def apply(body: dict) -> dict:
        c = body["candles"]
        if key == "unsorted":
            c["time"][10], c["time"][11] = c["time"][11], c["time"][10]
        elif key == "duplicate":
            c["time"][11] = c["time"][10]
        elif key == "high_low":
            c["high"][7] = c["low"][7] * 0.99
        elif key == "few":
            for k in c:
                c[k] = c[k][:10]
        elif key == "side":
            body["side"] = "up"
        elif key == "missing":
            del body["symbol"]
        elif key == "negative":
            c["low"][3] = -1.0
        return body
    return apply


@pytest.mark.parametrize(("case", "field", "reason"), [
    ("missing", "symbol", "Field required"),
    ("few", "candles", "at least"),
    ("unsorted", "time", "sorted"),
    ("duplicate", "time", "duplicate"),
    ("high_low", "high", "high < low"),
    ("side", "side", "long"),
    ("negative", "low", "> 0"),
])
def test_bad_input_is_422_naming_field_and_reason_and_stores_nothing(
        service: Service, api_db_url: str, case: str, field: str, reason: str):
    body = _mutate(case)(predict_body(f"bad-{case}"))
    with service.client() as http:
        r = http.post("/api/v1/predict", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert field in [str(x) for x in detail["loc"]] or field in ".".join(map(str, detail["loc"]))
    assert reason.lower() in detail["msg"].lower()
    _assert_nothing_stored(service, api_db_url)


def test_nan_candle_is_422(service: Service, api_db_url: str):
    with service.client() as http:
        r = http.post("/api/v1/predict", content=_nan_body(),
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "candles", "5", "close"]
    assert "finite" in detail["msg"]
    _assert_nothing_stored(service, api_db_url)


def test_body_over_the_limit_is_413(api_db_url: str, tmp_path, start):
    svc = start(db_url=api_db_url, data_dir=tmp_path / "s", env={"TML_MAX_BODY_BYTES": "20000"})
    try:
        with svc.client() as http:
            r = http.post("/api/v1/predict", json=predict_body("big", n=1500))
            assert r.status_code == 413
            assert "exceeds" in r.json()["detail"][0]["msg"]
            # no Content-Length (chunked): counted while streaming, on both kinds of route
            for path in ("/api/v1/predict", "/api/v1/exits"):
                chunked = http.post(path, content=_chunks(50_000),
                                    headers={"Content-Type": "application/json"})
                assert chunked.status_code == 413, (path, chunked.text[:200])
    finally:
        svc.stop()
    assert count_rows(api_db_url, "ml_predictions") == 0


def _chunks(n_bytes: int):
    yield b'{"trade_id": "big", "policy_params": {"x": "'
    for _ in range(n_bytes // 4096):
        yield b"a" * 4096
    yield b'"}}'


def _assert_nothing_stored(service: Service, api_db_url: str) -> None:
    with service.client() as http:  # the queue is empty: nothing was accepted
        ready = http.get("/ready").json()
    assert ready["writer"]["queue_depth"] == 0
    assert count_rows(api_db_url, "ml_predictions") == 0
    assert count_rows(api_db_url, "ml_trade_features") == 0


def test_auth_missing_unknown_and_wrong_scope(service: Service):
    body = predict_body("auth-1")
    with service.client(key=None) as anon:
        assert anon.post("/api/v1/predict", json=body).status_code == 401
    with service.client(key="not-a-key") as wrong:
        assert wrong.post("/api/v1/predict", json=body).status_code == 401
    with service.client(key=BOT_KEY) as bot:
        assert bot.post("/api/v1/predict", json=body).status_code == 200
        assert bot.post("/api/v1/performance/refresh").status_code == 403
        assert bot.post("/api/v1/models/1/activate").status_code == 403
        assert bot.post("/api/v1/models/train", data={"sample": "GOOG"}).status_code == 403
    with service.client(key=ADMIN_KEY) as admin:  # admin may do what bot may
        assert admin.post("/api/v1/predict", json=predict_body("auth-2")).status_code == 200
        assert admin.post("/api/v1/performance/refresh").status_code == 200


def test_keys_never_appear_in_the_log(service: Service):
    with service.client() as http:
        http.post("/api/v1/predict", json=predict_body("log-1"))
    with service.client(key="wrong-key-123") as http:
        http.post("/api/v1/predict", json=predict_body("log-2"))
    log = service.log()
    assert BOT_KEY not in log and ADMIN_KEY not in log and "wrong-key-123" not in log


def test_metrics_and_ready(service: Service):
    with service.client() as http:
        http.post("/api/v1/predict", json=predict_body("m-1"))
        ready = http.get("/ready")
        text = http.get("/metrics").text
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["migration"] == "applied"
    assert 'tml_predictions_total{decision=' in text
    assert "tml_writer_queue_depth" in text and "tml_writer_journal_bytes" in text
    assert "tml_active_model_version{" in text
    assert 'tml_http_requests_total{method="POST",route="/api/v1/predict",status="200"}' in text


def test_same_trade_id_after_a_restart_returns_the_stored_prediction(api_db_url: str,
                                                                      tmp_path, start):
    data_dir = tmp_path / "svc"
    first_svc = start(db_url=api_db_url, data_dir=data_dir)
    with first_svc.client() as http:
        first = http.post("/api/v1/predict", json=predict_body("restart-1")).json()
    first_svc.stop()
    second_svc = start(db_url=api_db_url, data_dir=data_dir)
    try:
        with second_svc.client() as http:
            again = http.post("/api/v1/predict", json=predict_body("restart-1")).json()
    finally:
        second_svc.stop()
    assert again["duplicate"] is True
    assert again["prediction_id"] == first["prediction_id"]
    assert again["probability"] == first["probability"]
    assert count_rows(api_db_url, "ml_predictions", "trade_id = 'restart-1'") == 1


def _odd_candles():
    """Inputs that once reached numpy or datetime unguarded (found by review)."""
    ragged = predict_body("odd-ragged")
    ragged["candles"]["open"][5] = [1.0, 2.0]
    huge = predict_body("odd-bigint")
    huge["candles"]["time"][0] = 10 ** 30
    ancient = predict_body("odd-ancient")
    ancient["candles"]["time"] = [-90_000_000_000 + 3600 * i for i in range(120)]
    far = predict_body("odd-far")
    far["candles"]["time"] = [f"9999-12-{d:02d}T{h:02d}:00:00-01:00"
                              for d in range(26, 32) for h in range(24)][-120:]
    return [("ragged", ragged, "open"), ("bigint", huge, "time"),
            ("ancient", ancient, "time"), ("far", far, "time")]


def test_odd_candle_values_are_422_on_both_paths(api_db_url: str, tmp_path, start):
    svc = start(db_url=api_db_url, data_dir=tmp_path / "svc")
    try:
        with svc.client() as http:
            for name, body, field in _odd_candles():
                r = http.post("/api/v1/predict", json=body)
                assert r.status_code == 422, (name, r.status_code, r.text[:200])
                assert field in ".".join(map(str, r.json()["detail"][0]["loc"])), name
    finally:
        svc.stop()


def test_a_signal_time_in_the_future_is_422(service: Service, api_db_url: str):
    body = predict_body("future-1", signal_time="2999-01-01T00:00:00")
    with service.client() as http:
        r = http.post("/api/v1/predict", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "signal_time"
    assert "future" in r.json()["detail"][0]["msg"]


def test_the_body_check_refuses_what_is_not_the_schema():
    good = {"prediction_id": "p", "trade_id": "t", "probability": 0.25, "decision": "skip",
            "threshold": 0.5, "rule": "expected_value", "expected_r": -0.25,
            "model": {"id": 1, "name": "default", "version": 2},
            "feature_set_version": "fs", "contributions": None, "duplicate": False}
    request = httpx.Request("POST", "http://x/api/v1/predict")
    _check_body(httpx.Response(200, content=orjson.dumps(good), request=request))
    for bad in ({**good, "extra": 1}, {k: v for k, v in good.items() if k != "threshold"},
                {**good, "probability": "0.25"}, {**good, "decision": "maybe"},
                {**good, "rule": "coin_flip"}):
        with pytest.raises((AssertionError, ValueError)):
            _check_body(httpx.Response(200, content=orjson.dumps(bad), request=request))
