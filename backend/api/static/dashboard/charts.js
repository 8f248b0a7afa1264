// Helpers and the SVG charts of the dashboard (plain SVG drawn here, no library);
// loaded before dashboard.js, which uses them.
"use strict";

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

