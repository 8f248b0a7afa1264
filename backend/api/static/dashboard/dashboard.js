// The dashboard: asks for an API key once (kept in sessionStorage, sent as X-API-Key,
// never put in a URL or logged), reads /api/v1/dashboard/* and draws plain SVG.
"use strict";

const KEY_STORE = "tml-dashboard-api-key";
const API = "/api/v1/dashboard/";
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (sel) => document.querySelector(sel);

// ---- small DOM helpers ---------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}
function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const isNum = (x) => typeof x === "number" && Number.isFinite(x);
const fmt = (x, d = 3) => (isNum(x) ? x.toFixed(d) : "–");
const pct = (x) => (isNum(x) ? (100 * x).toFixed(1) + "%" : "–");
const day = (iso) => (iso ? String(iso).slice(0, 10) : "–");
const stamp = (iso) => (iso ? String(iso).replace("T", " ").slice(0, 16) : "–");

// A numeric cell keeps the exact value in data-v (tests and copy/paste read it).
function num(x, text) {
  return el("td", { class: "num", "data-v": isNum(x) ? String(x) : "" },
            text !== undefined ? text : fmt(x));
}
function table(cls, headers, rows) {
  const head = el("tr", {}, ...headers.map(([label, numeric]) =>
    el("th", numeric ? { class: "num" } : {}, label)));
  return el("table", { class: cls }, el("thead", {}, head), el("tbody", {}, ...rows));
}
function empty(text) { return el("p", { class: "empty" }, text); }

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

// ---- charts (plain SVG) ----------------------------------------------------------------
const W = 600, H = 260, M = { l: 46, r: 14, t: 22, b: 34 };

function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}
function ticks(lo, hi, n = 5) {
  if (lo === hi) return [lo];
  const step = (hi - lo) / n;
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}
function frame(svg, xs, ys, xLabel, yLabel, xText) {
  const grid = svgEl("g", { class: "grid" });
  const axis = svgEl("g", { class: "axis" });
  for (const t of ys.ticks) {
    const y = ys.f(t);
    grid.append(svgEl("line", { x1: M.l, x2: W - M.r, y1: y, y2: y }));
    axis.append(svgEl("text", { x: M.l - 6, y: y + 4, "text-anchor": "end" }, fmt(t, 2)));
  }
  for (const t of xs.ticks) {
    axis.append(svgEl("text", { x: xs.f(t), y: H - M.b + 16, "text-anchor": "middle" },
                      xText(t)));
  }
  axis.append(svgEl("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
  axis.append(svgEl("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
  axis.append(svgEl("text", { x: W - M.r, y: H - 4, "text-anchor": "end" }, xLabel));
  axis.append(svgEl("text", { x: 4, y: 11, "text-anchor": "start" }, yLabel));
  svg.append(grid, axis);
}
function plot(cls, label) {
  return svgEl("svg", { class: "plot " + cls, viewBox: `0 0 ${W} ${H}`, role: "img",
                        "aria-label": label });
}
function figure(svg, caption, legend) {
  const fig = el("figure", { class: "chart" }, svg);
  if (legend) fig.append(legend);
  fig.append(el("figcaption", {}, caption));
  return fig;
}
function legendOf(series) {
  return el("div", { class: "legend" }, ...series.map((s) =>
    el("span", {}, el("i", { class: s.cls }), s.name)));
}

// series: [{name, cls, points: [[x, y], ...]}]; x numbers (ms for dates)
function lineChart(cls, label, series, { xLabel, yLabel, xText, yRange }) {
  const svg = plot(cls, label);
  const pts = series.flatMap((s) => s.points).filter(([, y]) => isNum(y));
  const xsAll = pts.map(([x]) => x), ysAll = pts.map(([, y]) => y);
  let [x0, x1] = [Math.min(...xsAll), Math.max(...xsAll)];
  if (x0 === x1) { x0 -= 43200000; x1 += 43200000; }  // one day: half a day either side
  let [y0, y1] = yRange || [Math.min(0, ...ysAll), Math.max(0, ...ysAll)];
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const xs = { f: scale(x0, x1, M.l, W - M.r), ticks: ticks(x0, x1, 4) };
  const ys = { f: scale(y0, y1, H - M.b, M.t), ticks: ticks(y0, y1, 4) };
  frame(svg, xs, ys, xLabel, yLabel, xText);
  for (const s of series) {
    const p = s.points.filter(([, y]) => isNum(y));
    if (!p.length) continue;
    const d = p.map(([x, y], i) => `${i ? "L" : "M"}${xs.f(x).toFixed(1)},${ys.f(y).toFixed(1)}`);
    svg.append(svgEl("path", { class: `series ${s.cls}`, d: d.join(""), "data-series": s.name }));
    for (const [x, y] of p) {
      svg.append(svgEl("circle", { class: s.cls, cx: xs.f(x), cy: ys.f(y), r: 2.6 }));
    }
  }
  return svg;
}

function reliabilityChart(bins) {
  const svg = plot("reliability", "Reliability diagram");
  const xs = { f: scale(0, 1, M.l, W - M.r), ticks: ticks(0, 1, 5) };
  const ys = { f: scale(0, 1, H - M.b, M.t), ticks: ticks(0, 1, 5) };
  frame(svg, xs, ys, "mean predicted probability", "observed win rate", (t) => fmt(t, 1));
  svg.append(svgEl("line", { class: "diag", x1: xs.f(0), y1: ys.f(0), x2: xs.f(1), y2: ys.f(1) }));
  const d = bins.map((b, i) => `${i ? "L" : "M"}${xs.f(b.mean_probability).toFixed(1)},` +
                               `${ys.f(b.observed).toFixed(1)}`);
  svg.append(svgEl("path", { class: "series s0", d: d.join("") }));
  const most = Math.max(...bins.map((b) => b.n));
  for (const b of bins) {
    const c = svgEl("circle", { class: "s0 bin", cx: xs.f(b.mean_probability),
                                cy: ys.f(b.observed), r: 3 + 6 * Math.sqrt(b.n / most) });
    c.append(svgEl("title", {}, `${b.n} predictions: mean ${fmt(b.mean_probability)}, ` +
                               `observed ${fmt(b.observed)}`));
    svg.append(c);
  }
  return svg;
}

function driftChart(features) {
  const shown = features.slice(0, 20);
  const rowH = 16, h = M.t + M.b + rowH * shown.length;
  const svg = svgEl("svg", { class: "plot drift", viewBox: `0 0 ${W} ${h}`, role: "img",
                             "aria-label": "PSI per feature" });
  const left = 150, top = Math.max(0.3, ...shown.map((f) => f.psi));
  const x = scale(0, top, left, W - M.r);
  shown.forEach((f, i) => {
    const y = M.t + i * rowH;
    const level = f.psi > 0.25 ? "shifted" : f.psi > 0.1 ? "watch" : "";
    svg.append(svgEl("text", { x: left - 6, y: y + 11, "text-anchor": "end" }, f.feature));
    svg.append(svgEl("rect", { class: `bar ${level}`, x: left, y: y + 2,
                               width: Math.max(1, x(f.psi) - left), height: rowH - 4 }));
    svg.append(svgEl("text", { x: x(f.psi) + 4, y: y + 11 }, fmt(f.psi)));
  });
  for (const ref of [0.1, 0.25]) {
    svg.append(svgEl("line", { class: "ref", x1: x(ref), x2: x(ref), y1: M.t,
                               y2: h - M.b + 4 }));
    svg.append(svgEl("text", { x: x(ref), y: h - M.b + 18, "text-anchor": "middle" }, ref));
  }
  return svg;
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
