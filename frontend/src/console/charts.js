// Plots for the console: uPlot (frontend/vendor/uplot, MIT) for lines and bars; plain canvas for the confusion
// matrix heatmap. Charts size themselves to their container and follow its width.

import uPlot from "../../vendor/uplot/uPlot.esm.js";
import { h } from "../dom.js";

const COLORS = ["#22d3ee", "#f472b6", "#a3e635", "#fbbf24", "#a78bfa", "#fb923c", "#34d399", "#f87171"];
const AXIS = { stroke: "#9aa3b2", grid: { stroke: "#2b313c", width: 1 }, ticks: { stroke: "#2b313c", width: 1 } };

let cssLoaded = false;
function ensureCss() {
  if (cssLoaded) return;
  cssLoaded = true;
  document.head.append(h("link", { rel: "stylesheet", href: "/vendor/uplot/uPlot.min.css" }));
}

export const color = (i) => COLORS[i % COLORS.length];

/** Keep a chart as wide as its host; returns a function that stops. */
function followWidth(host, chart, height) {
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, Math.floor(host.clientWidth));
    if (Math.abs(w - chart.width) > 2) chart.setSize({ width: w, height });
  });
  ro.observe(host);
  return () => ro.disconnect();
}

/**
 * A line chart. x: numbers; series: [{label, values, axis: "left"|"right", dash}]. Returns {el, update(x, series),
 * destroy()}. update keeps the chart and replaces its data (live training curves).
 */
export function lineChart({ x, series, height = 240, xLabel = "", leftLabel = "", rightLabel = "", testid, time = false, rightRange, integerX = false }) {
  ensureCss();
  const host = h("div", { class: "chart", "data-testid": testid || undefined });
  const hasRight = series.some((s) => s.axis === "right");
  const opts = {
    width: 600,
    height,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time }, y: {}, ...(hasRight ? { r: rightRange ? { range: rightRange } : {} } : {}) },
    axes: [
      { ...AXIS, label: xLabel, ...(integerX ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] } : {}) },
      { ...AXIS, label: leftLabel, scale: "y" },
      ...(hasRight ? [{ ...AXIS, label: rightLabel, scale: "r", side: 1, grid: { show: false } }] : []),
    ],
    series: [{ label: xLabel || "x" }, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || color(i), width: 2, scale: s.axis === "right" ? "r" : "y",
      dash: s.dash, points: { show: true, size: 5 }, value: (u, v) => (v === null || v === undefined ? "—" : Number(v.toFixed(4))),
    }))],
  };
  const chart = new uPlot(opts, [x, ...series.map((s) => s.values)], host);
  const stop = followWidth(host, chart, height);
  return {
    el: host,
    chart,
    update(nx, nseries) {
      chart.setData([nx, ...nseries.map((s) => s.values)]);
    },
    destroy() {
      stop();
      chart.destroy();
    },
  };
}

/** Vertical bars over categories (labels) using uPlot's bars path; markers: [{x, label}] vertical lines. */
export function barChart({ labels, values, height = 220, yLabel = "", xLabel = "", markers = [], testid, range }) {
  ensureCss();
  const host = h("div", { class: "chart", "data-testid": testid || undefined });
  const x = labels.map((_, i) => i);
  const bars = uPlot.paths.bars({ size: [0.7, 60] });
  const opts = {
    width: 600,
    height,
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: false, range: [-0.6, labels.length - 0.4] }, y: { range: range || ((u, min, max) => [0, Math.max(1, max) * 1.1]) } },
    axes: [
      { ...AXIS, label: xLabel, splits: () => x, values: (u, splits) => splits.map((i) => (labels.length > 12 && i % 2 ? "" : labels[i] ?? "")), grid: { show: false } },
      { ...AXIS, label: yLabel, ...(range ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 1e5, 2e5, 5e5, 1e6] }) },
    ],
    series: [{}, { label: yLabel, fill: "rgba(34,211,238,.55)", stroke: "#22d3ee", width: 1, paths: bars, points: { show: false } }],
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        for (const m of markers) {
          const px = u.valToPos(m.x, "x", true);
          ctx.save();
          ctx.strokeStyle = "#fbbf24";
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(px, u.bbox.top);
          ctx.lineTo(px, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
          ctx.textAlign = "left";
          ctx.textBaseline = "alphabetic";
          const tw = ctx.measureText(m.label).width;
          const ty = u.bbox.top + 4 * devicePixelRatio;
          ctx.fillStyle = "rgba(15, 17, 21, .88)";
          ctx.fillRect(px + 4 * devicePixelRatio, ty, tw + 8 * devicePixelRatio, 18 * devicePixelRatio);
          ctx.fillStyle = "#fbbf24";
          ctx.fillText(m.label, px + 8 * devicePixelRatio, ty + 13 * devicePixelRatio);
          ctx.restore();
        }
      }],
    },
  };
  const chart = new uPlot(opts, [x, values], host);
  const stop = followWidth(host, chart, height);
  return { el: host, chart, destroy() { stop(); chart.destroy(); } };
}

/** Confusion matrix (rows = truth, columns = prediction) as a canvas heatmap, counts in the cells. */
export function confusionHeatmap({ classes, matrix, label = (c) => c, testid = "confusion" }) {
  const n = classes.length;
  const cell = n > 8 ? 38 : 52;
  const left = 110;
  const top = 96;
  const dpr = window.devicePixelRatio || 1;
  const w = left + n * cell + 90; // room for the last rotated column label
  const hgt = top + n * cell + 8;
  const canvas = h("canvas", { width: Math.round(w * dpr), height: Math.round(hgt * dpr), "data-testid": testid,
    role: "img", "aria-label": "Confusion matrix: rows are the true style, columns the predicted style" });
  canvas.style.width = `${w}px`;
  canvas.style.height = `${hgt}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#9aa3b2";
  ctx.textBaseline = "middle";
  for (let i = 0; i < n; i++) {
    const rowTotal = matrix[i].reduce((a, b) => a + b, 0);
    ctx.fillStyle = "#9aa3b2";
    ctx.textAlign = "right";
    ctx.fillText(label(classes[i]), left - 8, top + i * cell + cell / 2);
    for (let j = 0; j < n; j++) {
      const v = matrix[i][j];
      const share = rowTotal ? v / rowTotal : 0;
      ctx.fillStyle = i === j ? `rgba(52, 211, 153, ${0.12 + 0.88 * share})` : `rgba(248, 113, 113, ${0.08 + 0.92 * share})`;
      ctx.fillRect(left + j * cell + 1, top + i * cell + 1, cell - 2, cell - 2);
      ctx.fillStyle = share > 0.5 ? "#0f1115" : "#e7e9ee";
      ctx.textAlign = "center";
      ctx.fillText(String(v), left + j * cell + cell / 2, top + i * cell + cell / 2);
    }
  }
  ctx.save();
  ctx.fillStyle = "#9aa3b2";
  for (let j = 0; j < n; j++) {
    ctx.save();
    ctx.translate(left + j * cell + cell / 2, top - 8);
    ctx.rotate(-Math.PI / 4);
    ctx.textAlign = "left";
    ctx.fillText(label(classes[j]), 0, 0);
    ctx.restore();
  }
  ctx.restore();
  ctx.fillStyle = "#e7e9ee";
  ctx.textAlign = "left";
  ctx.fillText("true ↓  predicted →", 4, 12);
  return canvas;
}
