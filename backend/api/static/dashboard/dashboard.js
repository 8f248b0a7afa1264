// The dashboard: asks for an API key once (kept in sessionStorage, sent as X-API-Key,
// never put in a URL or logged), reads /api/v1/dashboard/* and draws plain SVG.
"use strict";

const KEY_STORE = "tml-dashboard-api-key";
const API = "/api/v1/dashboard/";

// ---- the key -------------------------------------------------------------------------
function askForKey(message) {
  sessionStorage.removeItem(KEY_STORE);
  $("#main").hidden = true;
  $("#forget-key").hidden = true;
  $("#key-state").textContent = "";
  $("#key-prompt").hidden = false;
  const err = $("#key-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#key-input").value = "";
  $("#key-input").focus();
}

class KeyRejected extends Error {}

async function getJSON(path, params) {
  const query = new URLSearchParams(params || {}).toString();
  const response = await fetch(API + path + (query ? "?" + query : ""), {
    headers: { "X-API-Key": sessionStorage.getItem(KEY_STORE) || "" },
    cache: "no-store", credentials: "omit",
  });
  if (response.status === 401) throw new KeyRejected("the key was not accepted");
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify((await response.json()).detail); } catch (_) { /* text */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

// ---- panels ------------------------------------------------------------------------------
function metricCells(m, key) { return num(m ? m[key] : null); }

function renderModels(body, data) {
  if (!data.models.length) {
    body.append(empty("No model registered yet. `make run` trains a bootstrap model at first " +
                      "start; POST /api/v1/models/train trains one on your own data."));
    return;
  }
  const rows = data.models.map((m) => el("tr", {
      class: m.status === "active" ? "active" : null, "data-model-id": m.id },
    el("td", {}, m.name), num(m.version, String(m.version)), el("td", {}, m.algorithm),
    el("td", { class: `status-${m.status}` }, m.status),
    el("td", {}, stamp(m.created_at)), el("td", {}, stamp(m.activated_at)),
    el("td", {}, `${day(m.train_start)} → ${day(m.train_end)}`),
    num(m.n_samples, String(m.n_samples)),
    metricCells(m.holdout_model, "roc_auc"), metricCells(m.holdout_always_take, "roc_auc"),
    metricCells(m.holdout_model, "log_loss"), metricCells(m.holdout_always_take, "log_loss"),
    metricCells(m.holdout_model, "precision"), metricCells(m.holdout_always_take, "precision"),
    metricCells(m.cv_model, "roc_auc"), metricCells(m.cv_logistic, "roc_auc"),
    metricCells(m.cv_model, "log_loss"), metricCells(m.cv_always_take, "log_loss"),
    metricCells(m.cv_logistic, "log_loss")));
  body.append(table("models", [["name"], ["version", 1], ["algorithm"], ["status"],
    ["trained"], ["activated"], ["training window"], ["samples", 1],
    ["held-out AUC", 1], ["always-take AUC", 1], ["held-out log loss", 1],
    ["always-take log loss", 1], ["held-out precision", 1], ["always-take precision", 1],
    ["CV AUC", 1], ["logistic AUC", 1], ["CV log loss", 1], ["always-take log loss", 1],
    ["logistic log loss", 1]], rows));
  body.append(el("h3", {}, "Activation history"));
  if (!data.activations.length) { body.append(empty("No model was ever activated.")); return; }
  body.append(table("activations", [["activated"], ["model"], ["version", 1], ["by"],
    ["until"], ["status"]], data.activations.map((a) => el("tr", {},
      el("td", {}, stamp(a.activated_at)), el("td", {}, a.name),
      num(a.version, String(a.version)), el("td", {}, a.activated_by || "–"),
      el("td", {}, a.until ? stamp(a.until) : a.status === "active" ? "now" : "–"),
      el("td", { class: `status-${a.status}` }, a.status)))));
}

function renderQuality(body, data) {
  const charts = el("div", { class: "charts" });
  if (data.days.length) {
    // the chart follows one model: the chosen one, else the one with the most days that
    // have outcomes (then the most days)
    const counts = {};
    for (const d of data.days) {
      counts[d.model_id] = (counts[d.model_id] || 0) + 1 + (d.n_resolved > 0 ? 10000 : 0);
    }
    const modelId = Number(Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0]);
    const days = data.days.filter((d) => d.model_id === modelId);
    const at = (k) => days.map((d) => [Date.parse(d.date), d[k]]);
    const series = [
      { name: "precision (taken)", cls: "s0", points: at("precision") },
      { name: "accuracy", cls: "s1", points: at("accuracy") },
      { name: "mean probability", cls: "s2", points: at("mean_probability") },
      { name: "base rate", cls: "base", points: at("base_rate") },
    ];
    const m = days[0];
    charts.append(figure(lineChart("quality", "Live quality over time", series, {
      xLabel: "UTC day", yLabel: "rate", xText: (t) => new Date(t).toISOString().slice(5, 10),
      yRange: [0, 1] }), `${m.model_name} v${m.model_version}: daily figures`,
      legendOf(series)));
  }
  if (data.reliability.length) {
    charts.append(figure(reliabilityChart(data.reliability),
      "Reliability of resolved predictions (ten probability bins; the diagonal is perfect " +
      "calibration; dot size: predictions in the bin)"));
  }
  if (charts.children.length) body.append(charts);
  if (!data.days.length) {
    body.append(empty("No daily figures in this range yet. They appear once predictions " +
                      "are resolved by reported exits and the tracker has run (every " +
                      "TML_TRACKER_INTERVAL_SECONDS, or POST /api/v1/performance/refresh)."));
    return;
  }
  body.append(table("quality", [["day"], ["model"], ["predictions", 1], ["resolved", 1],
    ["taken", 1], ["accuracy", 1], ["precision (taken)", 1], ["base rate", 1], ["Brier", 1],
    ["mean probability", 1]], data.days.slice().reverse().map((d) => el("tr", {
      "data-model-id": d.model_id, "data-date": d.date },
    el("td", {}, d.date), el("td", {}, `${d.model_name} v${d.model_version}`),
    num(d.n_predictions, String(d.n_predictions)), num(d.n_resolved, String(d.n_resolved)),
    num(d.n_taken, String(d.n_taken)), num(d.accuracy), num(d.precision), num(d.base_rate),
    num(d.brier), num(d.mean_probability)))));
}

function renderDrift(body, data) {
  if (!data.features.length) {
    body.append(empty("No drift figures yet: the tracker computes them from the active " +
                      "model's live predictions of each day."));
    return;
  }
  const f0 = data.features[0];
  body.append(el("p", { class: "note drift-source" },
    `${f0.model_name} v${f0.model_version}, ${f0.date}: ${data.features.length} features`));
  body.append(figure(driftChart(data.features), "PSI, worst first (top 20)"));
  body.append(el("details", {}, el("summary", {}, `All ${data.features.length} features`),
    table("drift", [["feature"], ["PSI", 1]], data.features.map((f) =>
      el("tr", { "data-feature": f.feature }, el("td", {}, f.feature), num(f.psi))))));
}

function renderExits(body, data) {
  if (!data.by_reason.length) {
    body.append(empty("No exits reported in this range. The bot reports each closed trade " +
                      "with POST /api/v1/exits."));
    return;
  }
  body.append(el("h3", {}, "By exit reason"));
  body.append(table("exit-reasons", [["exit reason"], ["trades", 1], ["wins", 1],
    ["win rate", 1], ["average loss", 1], ["average R", 1], ["total P&L", 1]],
    data.by_reason.map((r) => el("tr", { "data-reason": r.exit_reason },
      el("td", {}, r.exit_reason), num(r.trades, String(r.trades)),
      num(r.wins, String(r.wins)), num(r.win_rate, pct(r.win_rate)), num(r.avg_loss, fmt(r.avg_loss, 2)),
      num(r.avg_r, fmt(r.avg_r, 2)), num(r.total_pnl, fmt(r.total_pnl, 2))))));
  if (data.cumulative_r.length) {
    const pts = data.cumulative_r.map((p) => [Date.parse(p.exit_time), p.cumulative_r]);
    const last = data.cumulative_r[data.cumulative_r.length - 1];
    const series = [{ name: "cumulative R", cls: "s0", points: pts }];
    body.append(figure(lineChart("cumulative-r", "Cumulative R", series, {
      xLabel: "exit time (UTC)", yLabel: "R",
      xText: (t) => new Date(t).toISOString().slice(5, 10) }),
      el("span", {}, `Cumulative R of ${data.cumulative_r.length} reported trades: `,
         el("b", { class: "cumulative-r-total", "data-v": String(last.cumulative_r) },
            fmt(last.cumulative_r, 2)))));
  } else {
    body.append(empty("No reported trade carries an R multiple (send initial_stop)."));
  }
  body.append(el("h3", {}, "Per day (daily_exit_performance, all symbols)"));
  body.append(table("exit-days", [["day"], ["exit reason"], ["trades", 1], ["win rate", 1],
    ["average loss", 1], ["average R", 1], ["total P&L", 1]], data.daily.map((d) =>
      el("tr", {}, el("td", {}, d.exit_date), el("td", {}, d.exit_reason),
         num(d.trades, String(d.trades)), num(d.win_rate, pct(d.win_rate)),
         num(d.avg_loss, fmt(d.avg_loss, 2)), num(d.avg_r, fmt(d.avg_r, 2)),
         num(d.total_pnl, fmt(d.total_pnl, 2))))));
}

function topContributions(c, n = 3) {
  if (!c) return "–";
  return Object.entries(c).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, n)
    .map(([k, v]) => `${k} ${v >= 0 ? "+" : ""}${fmt(v)}`).join(", ") || "–";
}

function renderPredictions(body, data) {
  if (!data.data.length) {
    body.append(empty("No predictions in this range. The bot asks with POST /api/v1/predict."));
    return;
  }
  body.append(el("p", { class: "note" }, `The latest ${data.count} in range, newest first.`));
  body.append(table("predictions", [["time"], ["trade"], ["symbol"], ["side"],
    ["probability", 1], ["decision"], ["model"], ["outcome"], ["return", 1],
    ["top contributions"]], data.data.map((p) => el("tr", { "data-trade": p.trade_id },
      el("td", {}, stamp(p.created_at)), el("td", {}, p.trade_id), el("td", {}, p.symbol || "–"),
      el("td", {}, p.side || "–"), num(p.probability),
      el("td", { class: p.decision }, p.decision),
      el("td", {}, `${p.model_name} v${p.model_version}`),
      el("td", { class: p.outcome === 1 ? "win" : p.outcome === 0 ? "loss" : "",
                 "data-outcome": p.outcome === null ? "" : String(p.outcome) },
         p.outcome === 1 ? "win" : p.outcome === 0 ? "loss" : "open"),
      num(p.realized_return, pct(p.realized_return)),
      el("td", {}, topContributions(p.contributions))))));
}

const PANELS = [
  ["#panel-models", "models", renderModels, false],
  ["#panel-quality", "quality", renderQuality, true],
  ["#panel-drift", "drift", renderDrift, true],
  ["#panel-exits", "exits", renderExits, true],
  ["#panel-predictions", "predictions", renderPredictions, true],
];

function currentFilters() {
  const f = {};
  if ($("#f-model").value) f.model = $("#f-model").value;
  if ($("#f-symbol").value) f.symbol = $("#f-symbol").value;
  if ($("#f-from").value) f.date_from = $("#f-from").value;
  if ($("#f-to").value) f.date_to = $("#f-to").value;
  return f;
}

async function loadPanel([sel, path, render, filtered]) {
  const panel = $(sel), body = panel.querySelector(".body");
  panel.dataset.state = "loading";
  body.replaceChildren(el("p", { class: "loading" }, "loading…"));
  try {
    const data = await getJSON(path, filtered ? currentFilters() : null);
    body.replaceChildren();
    render(body, data);
    panel.dataset.state = body.querySelector(".empty") && !body.querySelector("table")
      ? "empty" : "ready";
  } catch (err) {
    if (err instanceof KeyRejected) throw err;
    body.replaceChildren(el("p", { class: "error" }, `Could not load this panel: ${err.message}`));
    panel.dataset.state = "error";
  }
}

async function loadAll() {
  try {
    await Promise.all(PANELS.map(loadPanel));
    document.body.dataset.loaded = String(Date.now());
  } catch (err) {
    if (err instanceof KeyRejected) askForKey("That key was not accepted.");
    else throw err;
  }
}

async function start() {
  let opts;
  try {
    opts = await getJSON("options");
  } catch (err) {
    askForKey(err instanceof KeyRejected ? "That key was not accepted." : err.message);
    return;
  }
  $("#key-prompt").hidden = true;
  $("#main").hidden = false;
  $("#forget-key").hidden = false;
  $("#key-state").textContent = "key kept for this tab";
  const model = $("#f-model"), symbol = $("#f-symbol");
  model.replaceChildren(el("option", { value: "" }, "all models"), ...opts.models.map((m) =>
    el("option", { value: m.id }, `${m.name} v${m.version} (${m.status})`)));
  symbol.replaceChildren(el("option", { value: "" }, "all symbols"),
                         ...opts.symbols.map((s) => el("option", { value: s }, s)));
  if (!$("#f-to").value) {
    const to = new Date(opts.today + "T00:00:00Z");
    $("#f-to").value = opts.today;
    $("#f-from").value = new Date(to - (opts.default_days - 1) * 86400000)
      .toISOString().slice(0, 10);
  }
  $("#served-model").textContent = `serving: ${opts.model_name}; decision threshold ` +
    `${opts.threshold}`;
  await loadAll();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    $("#key-input").value = "";
    start();
  });
  $("#forget-key").addEventListener("click", () => askForKey());
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); loadAll(); });
  if (sessionStorage.getItem(KEY_STORE)) start(); else askForKey();
});
