"""What /openapi.json (and so /docs) tells a new user: auth answers on every protected
route, the candle rules, /metrics as text, and examples that run against a live service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from backend.api.deps import require_admin, require_bot, require_viewer
from backend.app import create_app
from backend.config import Settings
from backend.ml.market_features import MIN_CANDLES
from tests.utils.service import ADMIN_KEY, Service, service_on_copy

SCOPE_DEPS = {require_bot: "bot", require_admin: "admin", require_viewer: "viewer"}
READS = {"GET", "HEAD"}


@pytest.fixture(scope="module")
def app_and_schema(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")))
    return app, app.openapi()


def _scope_of(dependant: Any) -> str | None:
    for dep in dependant.dependencies:
        if dep.call in SCOPE_DEPS:
            return SCOPE_DEPS[dep.call]
        if (found := _scope_of(dep)) is not None:
            return found
    return None


def test_every_protected_operation_documents_401_and_403(app_and_schema) -> None:
    app, schema = app_and_schema
    checked = 0
    for context in iter_route_contexts(app.routes):  # routers included, with their prefix
        route = context.route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        scope = _scope_of(route.dependant)
        for method in route.methods:
            op = schema["paths"][route.path_format][method.lower()]
            if scope is None:
                assert "401" not in op["responses"], (method, route.path)
                continue
            checked += 1
            assert "401" in op["responses"], (method, route.path)
            # 403: a key whose scope may not call it (auth.permits): admin routes, and bot
            # routes for anything but a read; viewer routes take every key.
            wrong_scope_possible = scope == "admin" or (scope == "bot" and method not in READS)
            assert ("403" in op["responses"]) == wrong_scope_possible, (method, route.path)
            assert op.get("security"), (method, route.path)  # the key header is named
    assert checked >= 15


def _candle_schemas(schema: dict[str, Any], model: str) -> tuple[dict, dict]:
    props = schema["components"]["schemas"][model]["properties"]
    rows, columns = props["candles"]["oneOf"]
    return rows, columns


@pytest.mark.parametrize("model, minimum", [("PredictRequest", MIN_CANDLES),
                                            ("ExitEvaluateRequest", 1)])
def test_candle_minimum_and_epoch_range_are_in_the_schema(app_and_schema, model: str,
                                                          minimum: int) -> None:
    _, schema = app_and_schema
    rows, columns = _candle_schemas(schema, model)
    assert rows["minItems"] == minimum
    for name in ("time", "open", "high", "low", "close", "volume"):
        assert columns["properties"][name]["minItems"] == minimum
    for time_schema in (rows["items"]["properties"]["time"],
                        columns["properties"]["time"]["items"]):
        epoch = next(s for s in time_schema["oneOf"] if s["type"] == "number")
        assert epoch["minimum"] == -2_208_988_800  # 1900-01-01
        assert epoch["exclusiveMaximum"] == 1e11  # larger: milliseconds, refused
        assert "epoch seconds" in time_schema["description"]
    if minimum > 1:
        assert f"at least {minimum} candles" in schema["components"]["schemas"][model][
            "properties"]["candles"]["description"]


def test_metrics_is_documented_as_text(app_and_schema) -> None:
    _, schema = app_and_schema
    content = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in content and "application/json" not in content


# ---- every example runs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def examples_service(pg_admin_url: str, bootstrap_run: dict[str, str],
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_copy(pg_admin_url, bootstrap_run["template"],
                         tmp_path_factory.mktemp("examples"), prefix="examples") as (svc, _):
        yield svc


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _body_examples(schema: dict[str, Any], op: dict[str, Any]) -> list[Any]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return []
    found = [e["value"] for e in content.get("examples", {}).values()]
    found += [content["example"]] if "example" in content else []
    return found + list(_resolve(schema, content.get("schema", {})).get("examples", []))


def _param_examples(param: dict[str, Any]) -> list[Any]:
    found = [e["value"] for e in param.get("examples", {}).values()]
    found += [param["example"]] if "example" in param else []
    return found + list(param.get("schema", {}).get("examples", []))


def _calls(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(method, path with its example path parameters, query, body) for every example."""
    calls = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            path_args = {p["name"]: _param_examples(p)[0] for p in params if p["in"] == "path"
                         and _param_examples(p)}
            if any(p["in"] == "path" and p["name"] not in path_args for p in params):
                continue  # a path without an example value cannot be called
            url = path.format(**path_args)
            for p in params:
                if p["in"] == "query":
                    calls += [(method, url, {p["name"]: v}, None) for v in _param_examples(p)]
            calls += [(method, url, {}, body) for body in _body_examples(schema, op)]
            if path_args and not any(c[1] == url for c in calls):
                calls.append((method, url, {}, None))
    return calls


def test_every_openapi_example_runs(examples_service: Service) -> None:
    """Each request-body, path and query example of /openapi.json, sent as is, gets one
    of its operation's documented 2xx answers (the /docs "Try it out" of a new user)."""
    with examples_service.client(ADMIN_KEY) as client:
        schema = client.get("/openapi.json").json()
        calls = _calls(schema)
        kinds = {(m, p) for m, p, _q, b in calls if b is not None}
        # the bodies a bot sends all carry an example
        assert {("post", "/api/v1/predict"), ("post", "/api/v1/predict/batch"),
                ("post", "/api/v1/exits/evaluate"), ("post", "/api/v1/exits")} <= kinds
        assert any(q for _m, _p, q, _b in calls) and any("{" not in p for _m, p, _q, _b
                                                           in calls)
        # /predict before /exits: the exit example then closes the predicted trade
        calls.sort(key=lambda c: c[1].startswith("/api/v1/exits"))
        for method, url, query, body in calls:
            if url == "/api/v1/models/train":
                continue  # multipart upload that starts a training job: test_training_job
            response = client.request(method, url, params=query,
                                      json=body if body is not None else None)
            op = schema["paths"][_template(schema, url)][method]
            documented = {int(c) for c in op["responses"] if c.startswith("2")}
            assert response.status_code in documented, (method, url, query, body,
                                                         response.text[:500])


def _template(schema: dict[str, Any], url: str) -> str:
    if url in schema["paths"]:
        return url
    parts = url.split("/")
    for path in schema["paths"]:
        tpl = path.split("/")
        if len(tpl) == len(parts) and all(t == u or t.startswith("{")
                                          for t, u in zip(tpl, parts, strict=True)):
            return path
    raise KeyError(url)


def test_the_predict_example_is_scored_by_the_model(examples_service: Service) -> None:
    with examples_service.client(ADMIN_KEY) as client:
        schema = client.get("/openapi.json").json()
        example = schema["components"]["schemas"]["PredictRequest"]["examples"][0]
        answer = client.post("/api/v1/predict", json={**example, "trade_id": "doc-example"})
    assert answer.status_code == 200, answer.text
    assert len(example["candles"]["close"]) >= MIN_CANDLES
    assert 0.0 <= answer.json()["probability"] <= 1.0
    assert httpx.codes.is_success(answer.status_code)
