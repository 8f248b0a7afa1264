"""The dashboard's JSON against the database, the viewer scope over the whole route table,
the page served without a key, and /docs and /redoc referencing only the service itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from backend.app import create_app
from backend.config import Settings
from tests.utils.service import ADMIN_KEY, BOT_KEY, VIEWER_KEY

PANELS = ("options", "models", "quality", "drift", "exits", "predictions")
READ_METHODS = {"GET", "HEAD"}


def route_table() -> list[tuple[str, set[str]]]:
    """(path, methods) of every HTTP route the app serves, read from its route table
    (included routers flattened), so a route added later is covered without editing here."""
    app = create_app(Settings(bot_api_keys="x", admin_api_keys="y"))
    table: list[tuple[str, set[str]]] = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # an included router (FastAPI >= 0.16x builds them lazily)
            table.extend((c.path, set(c.methods)) for c in contexts())
        elif getattr(route, "methods", None):
            table.append((route.path, set(route.methods)))
    return table


def rows(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def get(svc: Any, path: str, key: str | None = VIEWER_KEY, **params: Any) -> Any:
    with svc.client(key) as http:
        r = http.get(f"/api/v1/dashboard/{path}", params=params)
    assert r.status_code == 200, (path, r.text)
    return r.json()


def test_panels_show_what_the_database_holds(dashboard_service: dict) -> None:
    svc, db = dashboard_service["service"], dashboard_service["db_url"]
    models = get(svc, "models")
    registry = rows(db, "SELECT id, version, status, n_samples, metrics -> 'holdout' -> 'model'"
                        " ->> 'roc_auc' FROM ml_models ORDER BY created_at DESC, id DESC")
    assert [(m["id"], m["version"], m["status"], m["n_samples"]) for m in models["models"]] == [
        r[:4] for r in registry]
    assert [m["holdout_model"]["roc_auc"] for m in models["models"]] == [
        pytest.approx(float(r[4])) for r in registry]
    assert all(m["cv_always_take"] and m["cv_logistic"] for m in models["models"])
    # two activations: the bootstrap model (retired, until the second one's) and the second
    history = models["activations"]
    assert [a["model_id"] for a in history] == [dashboard_service["second_model_id"],
                                                registry[-1][0]]
    assert history[0]["until"] is None and history[1]["until"] == history[0]["activated_at"]

    quality = get(svc, "quality")
    perf = rows(db, "SELECT model_id, n_predictions, n_resolved, accuracy, precision, base_rate,"
                    " brier FROM ml_performance ORDER BY date, model_id")
    assert [(d["model_id"], d["n_predictions"], d["n_resolved"]) for d in quality["days"]] == [
        r[:3] for r in perf]
    assert [d["accuracy"] for d in quality["days"]] == [r[3] for r in perf]
    assert sum(d["n_resolved"] for d in quality["days"]) == 10
    bins = rows(db, "SELECT least(floor(probability * 10)::int, 9), count(*) FROM ml_predictions"
                    " WHERE outcome IS NOT NULL GROUP BY 1 ORDER BY 1")
    assert [(b["bin"], b["n"]) for b in quality["reliability"]] == bins

    drift = get(svc, "drift")["features"]
    (stored,) = rows(db, "SELECT drift FROM ml_performance WHERE model_id = %s",
                     (dashboard_service["second_model_id"],))
    assert drift and {f["feature"]: f["psi"] for f in drift} == stored[0]
    assert [f["psi"] for f in drift] == sorted(stored[0].values(), reverse=True)

    exits = get(svc, "exits")
    by_reason = rows(db, "SELECT exit_reason, count(*), count(*) FILTER (WHERE pnl > 0) "
                         "FROM position_exits GROUP BY 1")
    assert {(r["exit_reason"], r["trades"], r["wins"]) for r in exits["by_reason"]} == set(
        by_reason)
    (total_r,) = rows(db, "SELECT sum(r_multiple) FROM position_exits")[0]
    assert exits["cumulative_r"][-1]["cumulative_r"] == pytest.approx(total_r)
    assert sum(d["trades"] for d in exits["daily"]) == 10

    preds = get(svc, "predictions")
    stored_preds = dict(rows(db, "SELECT trade_id, probability FROM ml_predictions"))
    assert preds["count"] == len(stored_preds) == 15
    assert {p["trade_id"]: p["probability"] for p in preds["data"]} == stored_preds
    assert sum(p["outcome"] is not None for p in preds["data"]) == 10
    # (empty for a model without a split, as the bootstrap model often is: README)
    assert {p["trade_id"]: p["contributions"] for p in preds["data"]} == dict(
        rows(db, "SELECT trade_id, contributions FROM ml_predictions"))


def test_filters_narrow_every_panel(dashboard_service: dict) -> None:
    svc, db = dashboard_service["service"], dashboard_service["db_url"]
    gbp = get(svc, "predictions", symbol="GBPUSD")
    (n_gbp,) = rows(db, "SELECT count(*) FROM ml_trade_features WHERE symbol = 'GBPUSD'")[0]
    assert 0 < gbp["count"] == n_gbp < 15 and {p["symbol"] for p in gbp["data"]} == {"GBPUSD"}
    gbp_exits = get(svc, "exits", symbol="GBPUSD")["by_reason"]
    (n_gbp_exits,) = rows(db, "SELECT count(*) FROM position_exits WHERE symbol = 'GBPUSD'")[0]
    assert sum(r["trades"] for r in gbp_exits) == n_gbp_exits > 0
    second = dashboard_service["second_model_id"]
    mine = get(svc, "predictions", model=second)
    assert {p["trade_id"] for p in mine["data"]} == set(dashboard_service["second"])
    assert {d["model_id"] for d in get(svc, "quality", model=second)["days"]} == {second}
    # a range before anything happened: every panel empty, none an error
    old = {"date_from": "2001-01-01", "date_to": "2001-01-31"}
    assert get(svc, "predictions", **old)["data"] == []
    assert get(svc, "quality", **old) | {"filters": None} == {
        "filters": None, "days": [], "reliability": []}
    assert get(svc, "exits", **old)["by_reason"] == get(svc, "exits", **old)["cumulative_r"] == []
    assert get(svc, "drift", **old)["features"] == []
    options = get(svc, "options")
    assert set(options["symbols"]) == {"EURUSD", "GBPUSD"}
    assert len(options["models"]) == 2
    # the exit times go back ten days; a range of the last three keeps only those trades
    since = (datetime.now(UTC) - timedelta(days=2)).date()
    recent = get(svc, "exits", date_from=since.isoformat())["by_reason"]
    (n_recent,) = rows(db, "SELECT count(*) FROM position_exits WHERE exit_time >= %s",
                       (datetime(since.year, since.month, since.day, tzinfo=UTC),))[0]
    assert 0 < sum(r["trades"] for r in recent) == n_recent < 10


def test_empty_install_gives_empty_panels_not_errors(empty_service: dict) -> None:
    svc = empty_service["service"]
    for panel in PANELS:
        body = get(svc, panel)
        lists = {k: v for k, v in body.items() if isinstance(v, list)}
        assert lists and all(v == [] for v in lists.values()), (panel, body)


def test_viewer_reads_every_get_route_and_is_refused_every_other(dashboard_service: dict
                                                                 ) -> None:
    svc, db = dashboard_service["service"], dashboard_service["db_url"]
    with svc.client(ADMIN_KEY) as admin:  # a job to read: fails at once, nothing to learn
        r = admin.post("/api/v1/models/train", data={"use_database": "true",
                                                     "symbol": "NONE", "promote": "false"})
        assert r.status_code == 202, r.text
    values = {"model_id": dashboard_service["second_model_id"], "job_id": r.json()["job_id"]}
    names = {"/docs/assets/{name}": "swagger-ui.css", "/dashboard/assets/{name}": "dashboard.js"}
    table = route_table()
    reads = sorted({p for p, m in table if m & READ_METHODS})
    writes = sorted({(p, m) for p, methods in table for m in methods - READ_METHODS})
    assert {"/api/v1/models", "/api/v1/dashboard/models", "/dashboard", "/docs"} <= set(reads)
    assert {("/api/v1/predict", "POST"), ("/api/v1/exits", "POST"),
            ("/api/v1/models/train", "POST"), ("/api/v1/performance/refresh", "POST"),
            ("/api/v1/models/{model_id}/activate", "POST")} <= set(writes)
    with svc.client(VIEWER_KEY) as viewer:
        for path in reads:
            url = path.format(name=names.get(path), **values)
            got = viewer.get(url)
            assert got.status_code == 200, (path, got.status_code, got.text[:200])
        for path, method in writes:
            url = path.format(**values)
            got = viewer.request(method, url, json={})
            assert got.status_code == 403, (method, path, got.status_code, got.text[:200])
            assert "viewer" in got.json()["detail"] or "admin" in got.json()["detail"]
    # nothing a viewer was refused happened
    assert rows(db, "SELECT count(*) FROM ml_predictions")[0][0] == 15
    assert rows(db, "SELECT count(*) FROM position_exits")[0][0] == 10


def test_page_needs_no_key_its_data_does(dashboard_service: dict) -> None:
    svc = dashboard_service["service"]
    with svc.client(None) as anon:
        page = anon.get("/dashboard")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("dashboard.js", "charts.js", "dashboard.css", "favicon.svg"):
            assert anon.get(f"/dashboard/assets/{asset}").status_code == 200
        assert anon.get("/dashboard/assets/..%2Fdashboard.py").status_code == 404
        for panel in PANELS:
            assert anon.get(f"/api/v1/dashboard/{panel}").status_code == 401
        js = anon.get("/dashboard/assets/dashboard.js").text
        charts = anon.get("/dashboard/assets/charts.js").text
    # everything the page loads is on this service: no absolute URL (the SVG namespace
    # is a name, never fetched)
    for text in (page.text, js, charts):
        assert re.findall(r"https?://[^\s\"']+", text.replace("http://www.w3.org/2000/svg",
                                                              "")) == []
    assert "sessionStorage" in js and "localStorage" not in js + charts
    assert "console." not in js + charts
    for key in (BOT_KEY, ADMIN_KEY):  # any valid key reads the dashboard
        assert get(svc, "models", key=key)["models"]


def test_docs_and_redoc_use_only_local_assets(dashboard_service: dict) -> None:
    svc = dashboard_service["service"]
    with svc.client(None) as anon:
        for path in ("/docs", "/redoc"):
            html = anon.get(path)
            assert html.status_code == 200
            urls = re.findall(r"""(?:src|href|Url|url)\s*[:=]\s*['"]([^'"]+)""", html.text)
            assert urls and all(u.startswith("/") for u in urls), (path, urls)
            assert "http" not in html.text.replace("http-equiv", ""), path
            for url in urls:
                if url.startswith("/docs/assets/"):
                    assert anon.get(url).status_code == 200, url
        assert anon.get("/openapi.json").status_code == 200
        # the one image ReDoc loads from a CDN is pointed at our own icon
        assert b"cdn.redoc.ly" not in anon.get("/docs/assets/redoc.standalone.js").content
