// Dataset dashboard: counts by status, style and flag; the concentration histogram with the low-concentration
// line (and a link to those photos); throughput per day and active time; agreement; pre-fill usefulness per model
// version; queue depth. Every number comes from GET /dataset/overview and GET /stats.

import { h } from "../dom.js";
import { query } from "../api.js";
import { card, fmtDuration, fmtNum, pct } from "./common.js";
import { barChart, lineChart } from "./charts.js";

function tile(label, value, href, testid) {
  const inner = [h("strong", { text: typeof value === "number" ? value.toLocaleString() : String(value ?? "—") }), h("span", { class: "muted small", text: label })];
  return href ? h("a", { class: "tile", href, "data-testid": testid }, inner) : h("div", { class: "tile", "data-testid": testid }, inner);
}

function table(head, rows, testid) {
  return h("table", { class: "c-table compact", "data-testid": testid },
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { text: t })))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c) => h("td", { text: c === null || c === undefined ? "—" : String(c) })))) : h("tr", {}, h("td", { colspan: head.length, class: "muted", text: "Nothing yet." }))));
}

export function histogramLabels(bins) {
  return bins.slice(0, -1).map((edge) => `${Math.round(edge * 100)}%`);
}

/** Saves, images and active hours summed over annotators, one point per day (UTC). */
export function perDay(throughput) {
  const days = new Map();
  for (const row of throughput.per_day || []) {
    const d = days.get(row.date) || { saves: 0, images: 0, active_ms: 0 };
    d.saves += row.saves;
    d.images += row.images;
    d.active_ms += row.active_ms;
    days.set(row.date, d);
  }
  const dates = [...days.keys()].sort();
  return { x: dates.map((d) => Date.parse(d + "T00:00:00Z") / 1000), rows: dates.map((d) => days.get(d)) };
}

export async function render({ main, app }) {
  const { api, taxonomy } = app;
  const charts = [];
  main.append(h("div", { class: "c-head" }, h("h1", { text: "Dataset" })), h("p", { class: "muted", text: "Loading…" }));
  const [ov, stats] = await Promise.all([api.get("/dataset/overview"), api.get("/stats" + query({ days: 30 }))]);
  main.lastChild.remove();

  const q = ov.queue;
  const c = ov.concentration;
  main.append(h("div", { class: "tiles", "data-testid": "tiles" },
    tile("images", ov.images.total, "#/", "tile-images"),
    tile("regions", ov.regions),
    tile("flagged", ov.images.flagged, "#/gallery?order=flag", "tile-flagged"),
    tile(`under ${Math.round(c.threshold * 100)} % tattoo`, c.below_threshold, `#/gallery?below=${c.threshold}`, "tile-low"),
    tile("to annotate", q.to_annotate), tile("to review", q.to_review), tile("to fix", q.to_fix), tile("scored for the queue", q.scored)));

  const statusChart = barChart({ labels: Object.keys(ov.images.by_status).map((s) => s.replace("_", " ")), values: Object.values(ov.images.by_status), yLabel: "images", testid: "status-chart" });
  const hist = barChart({
    labels: histogramLabels(c.bins), values: c.counts, yLabel: "images", xLabel: "tattoo share of the photo",
    markers: [{ x: c.threshold * c.counts.length - 0.5, label: `search demotes under ${Math.round(c.threshold * 100)} %` }], testid: "concentration-chart",
  });
  charts.push(statusChart, hist);
  const styleKeys = [...new Set([...Object.keys(ov.styles.images), ...Object.keys(ov.styles.regions)])];
  main.append(h("div", { class: "c-grid two" },
    card("Tattoo concentration (latest prediction per image)",
      c.with_prediction ? hist.el : h("p", { class: "muted", text: "No predictions yet: pre-fill the pool from the Models page to see it." }),
      h("p", { class: "small" }, `${c.below_threshold.toLocaleString()} of ${c.with_prediction.toLocaleString()} predicted photos are under ${Math.round(c.threshold * 100)} % (portraits, store fronts). `,
        h("a", { href: `#/gallery?below=${c.threshold}`, "data-testid": "low-link", text: "Review them →" }))),
    card("Images by status", statusChart.el)));
  main.append(h("div", { class: "c-grid two" },
    card("Styles", table(["style", "images", "regions"], styleKeys.map((k) => [taxonomy.label(k), ov.styles.images[k] ?? 0, ov.styles.regions[k] ?? 0]), "styles-table")),
    card("Flags", table(["flag", "images"], Object.entries(ov.flags).map(([k, n]) => [taxonomy.flagLabel(k), n]), "flags-table"))));

  const days = perDay(stats.throughput);
  const through = days.x.length ? lineChart({
    x: days.x, time: true, height: 220, leftLabel: "saves / images", rightLabel: "active hours",
    series: [
      { label: "saves", values: days.rows.map((d) => d.saves) },
      { label: "images", values: days.rows.map((d) => d.images) },
      { label: "active hours", axis: "right", dash: [6, 3], values: days.rows.map((d) => Math.round(d.active_ms / 36e3) / 100) },
    ], testid: "throughput-chart",
  }) : null;
  if (through) charts.push(through);
  const weeks = stats.agreement.per_week || [];
  const agreementChart = weeks.length ? lineChart({
    x: weeks.map((w) => Date.parse(w.week + "T00:00:00Z") / 1000), time: true, height: 200, leftLabel: "agreement", testid: "agreement-chart",
    series: [
      { label: "mean mask IoU", values: weeks.map((w) => w.mean_iou) },
      { label: "style agreement", values: weeks.map((w) => w.style_agreement) },
    ],
  }) : null;
  if (agreementChart) charts.push(agreementChart);
  const annotators = stats.throughput.per_annotator || [];
  main.append(h("div", { class: "c-grid two" },
    card(`Annotator throughput (last ${stats.window.days} days)`, through ? through.el : h("p", { class: "muted", text: "No saves in this window." }),
      table(["annotator", "images", "saves", "active", "per image", "images / hour", "accepted", "rejected"], annotators.map((a) => [
        a.username, a.images, a.saves, fmtDuration(a.active_ms), fmtDuration(a.active_ms_per_image), a.images_per_active_hour, a.accepted, a.rejected]), "throughput-table")),
    card("Agreement between annotators (per week)",
      agreementChart ? agreementChart.el : h("p", { class: "muted small", text: "No agreement copies finished yet: the queue hands a share of images to a second annotator." }),
      table(["images", "mean mask IoU", "style agreement", "Cohen's kappa"], [[stats.agreement.overall.images, fmtNum(stats.agreement.overall.mean_iou), pct(stats.agreement.overall.style_agreement), fmtNum(stats.agreement.overall.kappa)]], "agreement-table"),
      table(["pair", "images", "mean IoU", "style agreement"], (stats.agreement.pairs || []).map((p) => [p.annotators.map((a) => a.username).join(" · "), p.images, fmtNum(p.mean_iou), pct(p.style_agreement)]), "pairs-table"))));

  const pre = stats.prefill.per_model_version || [];
  main.append(card(`Pre-fill usefulness (newest ${stats.prefill.sampled_accepted_images} accepted images)`,
    table(["segmenter", "images", "IoU with final (mean)", "regions kept as is", "edited", "deleted", "styles taken", "time per image"], pre.map((m) => [
      m.model_name || (m.model_version_id ? `#${m.model_version_id}` : "no pre-fill"), m.images, fmtNum(m.mask_iou.mean), pct(m.regions.share_unchanged), pct(m.regions.share_edited), pct(m.regions.share_deleted),
      pct(m.styles.share_taken), fmtDuration(m.active_ms_per_image.mean)]), "prefill-table")));
  return () => charts.forEach((ch) => ch.destroy());
}
