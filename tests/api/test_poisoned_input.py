"""Input that used to poison stored data or break a batch (issue 12, items 6-10), over HTTP
against the real service: a signal_strength outside 0..1, values beyond float32, lone
surrogates in JSON strings, a reused trade_id with another payload, an entry after every
candle, and candle errors named alike in both candle forms.

The /predict tests run on the fast path and on the FastAPI route (``fast_path`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.api.test_exits import exit_body
from tests.api.test_predict import fast_path, start  # noqa: F401 - fixtures
from tests.utils.market_slices import candles_columns, predict_body, sample
from tests.utils.pg import count_rows, wait_for_rows
from tests.utils.service import Service

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def service(api_db_url: str, tmp_path: Path, start) -> Iterator[Service]:  # noqa: F811
    svc = start(db_url=api_db_url, data_dir=tmp_path / "svc")
    yield svc
    svc.stop()


def _loc(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    return [str(x) for x in r.json()["detail"][0]["loc"]]


# -- item 6: signal_strength is in [0, 1] ---------------------------------------------------

def test_signal_strength_outside_0_to_1_is_422_on_both_paths(service: Service,
                                                              api_db_url: str):
    with service.client() as http:
        for i, value in enumerate((1.5, -0.1, -1e300, 1e300)):
            r = http.post("/api/v1/predict",
                          json=predict_body(f"ss-bad-{i}", signal_strength=value))
            assert _loc(r) == ["body", "signal_strength"], value
        for i, value in enumerate((0, 0.0, 0.5, 1)):
            r = http.post("/api/v1/predict",
                          json=predict_body(f"ss-ok-{i}", signal_strength=value))
            assert r.status_code == 200, (value, r.text[:300])
    assert wait_for_rows(api_db_url, "ml_predictions", 4) == 4
    assert count_rows(api_db_url, "ml_trade_features", "left(trade_id, 7) = 'ss-bad-'") == 0


# -- item 7: nothing the model cannot represent -----------------------------------------------

def _extreme_bodies() -> list[tuple[dict, list[str]]]:
    short = predict_body("x-stop", side="short", stop_price=1e308)  # losing side, inf ATRs
    target = predict_body("x-target", target_price=1e308)
    candle = predict_body("x-candle")
    candle["candles"]["high"][40] = candle["candles"]["close"][40] = 1e39  # > float32 max
    flat = predict_body("x-flat", stop_price=1.0)  # a halted market: ATR 0, stops at inf ATR
    for column in ("open", "high", "low", "close"):
        flat["candles"][column] = [1.1] * len(flat["candles"][column])
    return [(short, ["body", "stop_price"]), (target, ["body", "target_price"]),
            (candle, ["body", "candles", "40", "high"]), (flat, ["body", "stop_price"])]


def test_values_beyond_float32_are_422_naming_the_field_even_with_explain(
        service: Service, api_db_url: str):
    with service.client() as http:
        for body, loc in _extreme_bodies():
            for explain in (False, True):
                r = http.post("/api/v1/predict", json={**body, "explain": explain})
                assert r.status_code != 500, r.text[:300]
                assert _loc(r) == loc, body["trade_id"]
    assert count_rows(api_db_url, "ml_trade_features") == 0


def test_one_extreme_row_in_61_costs_no_row_its_contributions(service: Service,
                                                              api_db_url: str):
    bodies = [predict_body(f"b61-{i}", end=2000 + 11 * i, side="long" if i % 2 else "short")
              for i in range(61)]
    bad = {**bodies[37], "signal_strength": -1e300}
    with service.client() as http:
        r = http.post("/api/v1/predict/batch",
                      json={"signals": [*bodies[:37], bad, *bodies[38:]]})
        assert _loc(r) == ["body", "signals", "37", "signal_strength"]
        r = http.post("/api/v1/predict/batch", json={"signals": [
            *bodies[:37], {**bodies[37], "stop_price": 1e308}, *bodies[38:]]})
        assert _loc(r) == ["body", "signals", "37", "stop_price"]
        # nothing of the refused batch was accepted: the same ids now score
        ok = http.post("/api/v1/predict/batch", json={"signals": bodies})
    assert ok.status_code == 200, ok.text[:300]
    assert all(d["duplicate"] is False for d in ok.json()["data"])
    assert wait_for_rows(api_db_url, "ml_predictions", 61) == 61
    assert count_rows(api_db_url, "ml_predictions", "contributions IS NULL") == 0


# -- item 8: lone surrogates and unexpected errors answer JSON --------------------------------

def _with_surrogate(body: dict, path: tuple[str, ...]) -> bytes:
    """``body`` as JSON with a key ``k\\udc00`` (escaped, as a JSON encoder writes a lone
    surrogate) put into the object at ``path``, or the string at ``path`` suffixed with it."""
    target = body
    for key in path[:-1]:
        target = target[key]
    if isinstance(target.get(path[-1]), str):
        target[path[-1]] += "SURROGATE"
    else:
        target[path[-1]] = {"SURROGATE": 1}
    return orjson.dumps(body).replace(b"SURROGATE", b"k\\udc00")


def test_lone_surrogates_are_422_json_and_the_connection_survives(service: Service,
                                                                  api_db_url: str):
    c = sample("EURUSD").head(1700).tail(130)
    evaluate = {"trade_id": "sur-e", "symbol": "EURUSD", "side": "long",
                "entry_time": int(c.time[100]), "entry_price": float(c.close[99]),
                "quantity": 1000, "initial_stop": float(c.close[99]) * 0.995,
                "candles": candles_columns(c)}
    cases = [
        ("/api/v1/exits", _with_surrogate(exit_body("sur-1"), ("policy_params",))),
        ("/api/v1/exits", _with_surrogate(exit_body("sur-2"), ("symbol",))),
        ("/api/v1/predict", _with_surrogate(predict_body("sur-3"), ("strategy",))),
        ("/api/v1/predict/batch",
         _with_surrogate({"signals": [predict_body("sur-4")]}, ("signals",))),
        ("/api/v1/exits/evaluate", _with_surrogate(evaluate, ("params",))),
        ("/api/v1/models/retrain", _with_surrogate({"force": False}, ("force",))),
    ]
    assert b'"k\\udc00"' in cases[0][1]
    with service.client(key="test-admin-key-0123456789") as http:
        for path, raw in cases:
            r = http.post(path, content=raw, headers=JSON)
            assert r.status_code == 422, (path, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/json"), path
            assert "surrogate" in r.json()["detail"][0]["msg"], path
            assert http.get("/health").status_code == 200  # same connection, still open
    assert count_rows(api_db_url, "position_exits") == 0


def test_integers_beyond_64_bits_in_free_form_params_are_422_not_500(service: Service,
                                                                     api_db_url: str):
    """JSON numbers have any number of digits: the jsonb encoder and float() refuse them."""
    c = sample("EURUSD").head(1700).tail(130)
    entry = float(c.close[99])
    evaluate = {"trade_id": "big-e", "symbol": "EURUSD", "side": "long",
                "entry_time": int(c.time[100]), "entry_price": entry, "quantity": 1000,
                "initial_stop": entry * 0.995, "candles": candles_columns(c)}
    cases = [("/api/v1/exits", {**exit_body("big-1"), "policy_params": {"a": 10 ** 400}},
              ["body", "policy_params"]),
             ("/api/v1/exits/evaluate", {**evaluate, "params": {"trail_atr": 10 ** 400}},
              ["body", "params"]),
             ("/api/v1/exits/evaluate", {**evaluate, "params": {"max_bars": 10 ** 400}},
              ["body", "params"])]
    with service.client() as http:
        for path, body, loc in cases:
            r = http.post(path, content=json.dumps(body), headers=JSON)
            assert _loc(r) == loc, (path, r.text[:300])
    assert count_rows(api_db_url, "position_exits") == 0


# -- item 9: a trade_id is an idempotency key -------------------------------------------------

def test_a_reused_trade_id_with_another_payload_is_409_naming_the_stored_prediction(
        service: Service, api_db_url: str):
    body = predict_body("idem-1", stop_price=1.0, target_price=2.0)
    rows_form = predict_body("idem-1", rows=True, stop_price=1.0, target_price=2.0)
    with service.client() as http:
        first = http.post("/api/v1/predict", json=body).json()
        same = http.post("/api/v1/predict", json=body).json()
        same_rows = http.post("/api/v1/predict", json={**rows_form, "explain": True}).json()
        others = [http.post("/api/v1/predict", json=b) for b in (
            {**body, "side": "short", "stop_price": 2.0, "target_price": 1.0},
            predict_body("idem-1", end=3500, stop_price=1.0, target_price=2.0),
            {**body, "stop_price": 1.01}, {**body, "strategy": "breakout"},
            {**body, "signal_strength": 0.3})]
        batch = http.post("/api/v1/predict/batch", json={"signals": [
            predict_body("idem-2"), {**body, "target_price": 2.5}]})
    assert same["duplicate"] is True and same["prediction_id"] == first["prediction_id"]
    assert same_rows["prediction_id"] == first["prediction_id"]  # the same candles
    for r in [*others, batch]:
        assert r.status_code == 409, r.text[:300]
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["prediction_id"] == first["prediction_id"]
        assert first["prediction_id"] in r.json()["detail"]
    assert wait_for_rows(api_db_url, "ml_predictions", 1) == 1
    assert count_rows(api_db_url, "ml_trade_features", "trade_id = 'idem-2'") == 0


def test_the_payload_check_survives_a_restart(api_db_url: str, tmp_path: Path,
                                              start):  # noqa: F811
    data_dir = tmp_path / "svc"
    svc = start(db_url=api_db_url, data_dir=data_dir)
    try:
        with svc.client() as http:
            first = http.post("/api/v1/predict", json=predict_body("idem-r")).json()
    finally:
        svc.stop()
    assert count_rows(api_db_url, "ml_predictions",
                      "trade_id = 'idem-r' AND request_sha256 IS NOT NULL") == 1
    svc = start(db_url=api_db_url, data_dir=data_dir)
    try:
        with svc.client() as http:
            same = http.post("/api/v1/predict", json=predict_body("idem-r")).json()
            other = http.post("/api/v1/predict", json=predict_body("idem-r", side="short"))
    finally:
        svc.stop()
    assert same["duplicate"] is True and same["prediction_id"] == first["prediction_id"]
    assert other.status_code == 409 and other.json()["prediction_id"] == first["prediction_id"]


def test_a_conflicting_duplicate_exit_is_409_and_an_identical_one_200(service: Service,
                                                                      api_db_url: str):
    with service.client() as http:
        first = http.post("/api/v1/exits", json=exit_body("idem-x"))
        same = http.post("/api/v1/exits", json=exit_body("idem-x"))
        others = [http.post("/api/v1/exits", json=exit_body("idem-x", **change))
                  for change in ({"exit_price": 1.0600}, {"pnl": 5.0},
                                 {"exit_reason": "manual"},
                                 {"exit_time": "2024-01-01T16:00:00Z"})]
    assert first.status_code == 201
    assert same.status_code == 200 and same.json()["created"] is False
    assert same.json()["id"] == first.json()["id"]
    for r in others:
        assert r.status_code == 409, r.text[:300]
        assert r.json()["exit_id"] == first.json()["id"]
    stored = count_rows(api_db_url, "position_exits", "trade_id = 'idem-x' AND "
                        "exit_price = 1.08 AND exit_reason = 'take_profit'")
    assert stored == 1 and count_rows(api_db_url, "position_exits") == 1


# -- item 10: exits/evaluate entry time, candle locations ----------------------------------------

def _evaluate_body(c, entry_time: int, rows: bool = False) -> dict:
    cols = candles_columns(c)
    candles = [{k: cols[k][i] for k in cols} for i in range(len(c))] if rows else cols
    entry = float(c.close[99])
    return {"trade_id": "ev-1", "symbol": "EURUSD", "side": "long", "entry_time": entry_time,
            "entry_price": entry, "quantity": 1000, "initial_stop": entry * 0.995,
            "candles": candles}


def test_an_entry_after_every_candle_is_422(service: Service):
    c = sample("EURUSD").head(1700).tail(130)
    with service.client() as http:
        after = http.post("/api/v1/exits/evaluate",
                          json=_evaluate_body(c, int(c.time[-1]) + 1))
        at_last = http.post("/api/v1/exits/evaluate", json=_evaluate_body(c, int(c.time[-1])))
    assert _loc(after) == ["body", "entry_time"]
    assert "after" in after.json()["detail"][0]["msg"]
    assert at_last.status_code == 200 and at_last.json()["bars_held"] == 1


def _defects() -> dict[str, tuple[str, int, object]]:
    return {"text": ("close", 7, "x"), "null": ("open", 9, None), "list": ("open", 5, [1, 2]),
            "bigint": ("volume", 8, 10 ** 400), "negative": ("low", 6, -1.0),
            "time": ("time", 4, "not a time")}


def test_candle_errors_name_the_same_loc_in_both_forms(service: Service):
    """One loc order, ``candles.<index>.<column>``, whatever the defect and the form."""
    c = sample("EURUSD").head(1700).tail(130)
    with service.client() as http:
        for defect, (column, i, value) in _defects().items():
            locs = []
            for rows in (False, True):
                for path in ("/api/v1/exits/evaluate", "/api/v1/predict"):
                    body = (_evaluate_body(c, int(c.time[100]), rows=rows)
                            if path.endswith("evaluate") else predict_body("loc-1", rows=rows))
                    if rows:
                        body["candles"][i][column] = value
                    else:
                        body["candles"][column][i] = value
                    # the stdlib encoder: orjson refuses integers beyond 64 bits, a bot's may not
                    raw = json.dumps(body)
                    locs.append(_loc(http.post(path, content=raw, headers=JSON)))
            assert locs == [["body", "candles", str(i), column]] * 4, (defect, locs)
