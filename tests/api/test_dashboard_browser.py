"""The dashboard and /docs in a real headless Chromium (Debian's, driven by Playwright; no
browser download): every panel shows the database's numbers, no console error, no request
leaves loopback; the empty install shows empty states; a screenshot goes to docs/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.utils.service import REPO, VIEWER_KEY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = REPO / "docs" / "dashboard.png"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PANELS = ("models", "quality", "drift", "exits", "predictions")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine: `make test` installs Debian's "
                             "(apt-get install chromium) when run as root")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: tests run as root; the others keep Chromium's own background
        # traffic (updates, field trials) off the network
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield b
        b.close()


class Watched:
    """A page that records every request URL and every console error."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 1000})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def outside(self) -> list[str]:
        return [u for u in self.requests if urlsplit(u).scheme not in {"data", "blob", "about"}
                and urlsplit(u).hostname not in LOOPBACK]

    def open_dashboard(self, url: str, key: str = VIEWER_KEY) -> None:
        self.page.goto(f"{url}/dashboard")
        self.page.wait_for_selector("#key-input", state="visible")
        self.page.fill("#key-input", key)
        self.page.click("#key-form button[type=submit]")
        self.page.wait_for_selector("body[data-loaded]", timeout=30_000)

    def close(self) -> None:
        self.context.close()


def cells(page: Any, selector: str, attr: str | None = None) -> list[str]:
    if attr:
        return page.eval_on_selector_all(selector, f"els => els.map(e => e.getAttribute('{attr}'))")
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")


def column(page: Any, table: str, n: int, attr: str | None = "data-v") -> list[str]:
    return cells(page, f"{table} tbody tr td:nth-child({n})", attr)


def db(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_dashboard_shows_the_data_offline(browser: Any, dashboard_service: dict) -> None:
    svc, url = dashboard_service["service"], dashboard_service["db_url"]
    w = Watched(browser)
    try:
        w.open_dashboard(svc.url)
        page = w.page
        for panel in PANELS:
            assert page.get_attribute(f"#panel-{panel}", "data-state") == "ready", panel

        # Models: the registry and the activation history
        registry = db(url, "SELECT id, version, status, n_samples, (metrics -> 'holdout' -> "
                           "'model' ->> 'roc_auc')::float8 FROM ml_models "
                           "ORDER BY created_at DESC, id DESC")
        assert cells(page, "table.models tbody tr", "data-model-id") == [
            str(r[0]) for r in registry]
        assert column(page, "table.models", 2, None) == [str(r[1]) for r in registry]
        assert column(page, "table.models", 4, None) == [r[2] for r in registry]
        assert column(page, "table.models", 8, None) == [str(r[3]) for r in registry]
        assert [float(v) for v in column(page, "table.models", 9)] == [r[4] for r in registry]
        activated = db(url, "SELECT version FROM ml_models WHERE activated_at IS NOT NULL "
                            "ORDER BY activated_at DESC")
        assert column(page, "table.activations", 3, None) == [str(r[0]) for r in activated]

        # Live quality: the daily table, its chart with the base rate, the reliability bins
        perf = db(url, "SELECT model_id, n_predictions, n_resolved, accuracy, precision, "
                       "base_rate, brier FROM ml_performance ORDER BY date DESC, model_id DESC")
        assert cells(page, "table.quality tbody tr", "data-model-id") == [str(r[0]) for r in perf]
        assert column(page, "table.quality", 3, None) == [str(r[1]) for r in perf]
        assert column(page, "table.quality", 4, None) == [str(r[2]) for r in perf]
        for n, i in ((6, 3), (7, 4), (8, 5), (9, 6)):
            shown = column(page, "table.quality", n)
            assert [float(v) if v else None for v in shown] == [r[i] for r in perf], n
        assert page.locator("svg.quality path.series.base").count() == 1
        assert page.locator("svg.quality path.series").count() >= 3
        bins = db(url, "SELECT count(*) FROM ml_predictions WHERE outcome IS NOT NULL "
                       "GROUP BY least(floor(probability * 10)::int, 9)")
        assert page.locator("svg.reliability circle.bin").count() == len(bins) > 0

        # Drift: the active model's features, worst first
        (drift,) = db(url, "SELECT drift FROM ml_performance p JOIN ml_models m ON "
                           "m.id = p.model_id WHERE m.status = 'active'")[0]
        worst_first = sorted(drift, key=lambda k: (-drift[k], k))
        assert cells(page, "table.drift tbody tr", "data-feature") == worst_first
        assert [float(v) for v in column(page, "table.drift", 2)] == [
            drift[k] for k in worst_first]
        assert page.locator("svg.drift rect.bar").count() == min(20, len(drift))

        # Exits: per reason, and the cumulative R
        reasons = db(url, "SELECT exit_reason, count(*), (count(*) FILTER (WHERE pnl > 0))"
                          "::float8 / count(*), avg(r_multiple) FROM position_exits GROUP BY 1")
        shown = dict(zip(cells(page, "table.exit-reasons tbody tr", "data-reason"),
                         zip(column(page, "table.exit-reasons", 2, None),
                             column(page, "table.exit-reasons", 4),
                             column(page, "table.exit-reasons", 6), strict=True), strict=True))
        assert {k: (int(t), float(w_), float(r)) for k, (t, w_, r) in shown.items()} == {
            r[0]: (r[1], pytest.approx(r[2]), pytest.approx(r[3])) for r in reasons}
        (total_r,) = db(url, "SELECT sum(r_multiple) FROM position_exits")[0]
        assert float(page.get_attribute(".cumulative-r-total", "data-v")) == pytest.approx(
            total_r)
        assert page.locator("svg.cumulative-r circle").count() == 10

        # Recent predictions: every one, with its probability and outcome
        preds = {r[0]: r[1:] for r in db(url, "SELECT trade_id, probability, outcome "
                                              "FROM ml_predictions")}
        trades = cells(page, "table.predictions tbody tr", "data-trade")
        assert sorted(trades) == sorted(preds)
        probs = [float(v) for v in column(page, "table.predictions", 5)]
        outcomes = column(page, "table.predictions", 8, "data-outcome")
        assert [(p, o) for p, o in zip(probs, outcomes, strict=True)] == [
            (preds[t][0], "" if preds[t][1] is None else str(preds[t][1])) for t in trades]

        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # a filter narrows the panels; the key stays in the tab's session, off every URL
        before = page.get_attribute("body", "data-loaded")
        page.select_option("#f-symbol", "GBPUSD")
        page.click("#filters button[type=submit]")
        page.wait_for_function("(b) => document.body.dataset.loaded !== b", arg=before)
        (n_gbp,) = db(url, "SELECT count(*) FROM ml_trade_features WHERE symbol = 'GBPUSD'")[0]
        assert page.locator("table.predictions tbody tr").count() == n_gbp > 0
        page.reload()
        page.wait_for_selector("body[data-loaded]", timeout=30_000)
        assert page.is_hidden("#key-prompt")  # asked once per browser session
        assert page.evaluate("Object.keys(localStorage).length") == 0

        assert w.errors == []
        assert w.outside() == []
        assert len(w.requests) > 10 and not any(VIEWER_KEY in u for u in w.requests)
    finally:
        w.close()
    assert SCREENSHOT.stat().st_size > 20_000


def test_fresh_install_shows_empty_states(browser: Any, empty_service: dict) -> None:
    w = Watched(browser)
    try:
        w.open_dashboard(empty_service["service"].url)
        for panel in PANELS:
            assert w.page.get_attribute(f"#panel-{panel}", "data-state") == "empty", panel
            assert w.page.locator(f"#panel-{panel} .empty").count() >= 1
        assert w.page.locator(".error").filter(has_text="Could not").count() == 0
        assert w.errors == []
        assert w.outside() == []
        # a wrong key is asked for again, and not kept
        w.page.click("#forget-key")
        w.page.fill("#key-input", "not-a-key")
        w.page.click("#key-form button[type=submit]")
        w.page.wait_for_selector("#key-error", state="visible")
        assert w.page.evaluate("sessionStorage.length") == 0
    finally:
        w.close()


def test_docs_and_redoc_render_offline(browser: Any, dashboard_service: dict) -> None:
    w = Watched(browser)
    try:
        w.page.goto(f"{dashboard_service['service'].url}/docs")
        w.page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert w.page.locator(".swagger-ui .opblock").count() > 10
        w.page.goto(f"{dashboard_service['service'].url}/redoc")
        # ReDoc renders the title and an entry per operation into the page
        w.page.locator("h1", has_text="Trading-ML backend").first.wait_for(timeout=30_000)
        assert w.page.get_by_text("Probability that the signal's trade pays").count() >= 1
        assert w.outside() == []
        assert w.errors == []
        assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in w.requests)
    finally:
        w.close()


def test_screenshot_is_in_docs() -> None:
    """docs/dashboard.md shows the picture the browser test takes."""
    assert "dashboard.png" in (REPO / "docs" / "dashboard.md").read_text()
    assert Path(SCREENSHOT).exists()
