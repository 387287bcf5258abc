// Home: the queue ("Next image"), today's counts, and the image grid with filters and paging.
// Filter state lives in the URL hash (#/?status=new&page=2) so back/forward and reloads keep it.

import { h, clear } from "./dom.js";
import { icon } from "./icons.js";
import { query } from "./api.js";
import { heldByOther, clockTime } from "./access.js";
import { uploadControl } from "./upload.js";

export const STATUSES = ["new", "in_progress", "submitted", "accepted", "rejected"];
export const STRATEGIES = [
  ["uncertainty", "Most uncertain first"],
  ["diversity", "Uncertain and varied"],
  ["random", "Random"],
  ["oldest", "Oldest first"],
];
export const STRATEGY_KEY = "inklabel.strategy";
const PER_PAGE = 48;

export function parseHomeParams(hashQuery) {
  const q = new URLSearchParams(hashQuery || "");
  return {
    status: q.get("status") || "",
    style: q.get("style") || "",
    flag: q.get("flag") || "",
    page: Math.max(1, parseInt(q.get("page") || "1", 10) || 1),
  };
}

export async function openHome({ root, app, params }) {
  const { api, taxonomy } = app;
  const strategy = h("select", { "aria-label": "Queue order", title: "How the queue picks your next image" },
    STRATEGIES.map(([v, label]) => h("option", { value: v, text: label })));
  strategy.value = localStorage.getItem(STRATEGY_KEY) || "uncertainty";
  strategy.addEventListener("change", () => localStorage.setItem(STRATEGY_KEY, strategy.value));
  const nextBtn = h("button", { type: "button", class: "btn btn-primary btn-big", "data-testid": "next-image" }, icon("next"), "Next image");
  nextBtn.addEventListener("click", () => app.openNext({}));
  const counts = h("div", { class: "counts", "data-testid": "today-counts" }, h("span", { class: "muted", text: "Loading today’s counts…" }));
  const reviewer = app.user.role === "reviewer" || app.user.role === "admin";
  const reviewBtn = reviewer ? h("button", { type: "button", class: "btn btn-big", "data-testid": "next-review", title: "Open the longest-waiting submitted image" }, "Review next") : null;
  if (reviewBtn) {
    reviewBtn.addEventListener("click", () => app.openNextReview({}));
    api.get("/reviews/queue" + query({ per_page: 1 })).then((q) => {
      reviewBtn.textContent = `Review next (${(q && q.total) || 0} waiting)`;
    }).catch(() => {});
  }

  const sel = (name, label, options) => {
    const s = h("select", { name, "aria-label": label }, h("option", { value: "", text: `All ${label.toLowerCase()}` }), options.map(([v, t]) => h("option", { value: v, text: t })));
    s.value = params[name];
    s.addEventListener("change", () => go({ ...params, [name]: s.value, page: 1 }));
    return h("label", { class: "filter" }, h("span", { class: "small muted", text: label }), s);
  };
  const filters = h("div", { class: "filters" },
    sel("status", "Statuses", STATUSES.map((s) => [s, s.replace("_", " ")])),
    sel("style", "Styles", taxonomy.styles.map((s) => [s.key, s.label])),
    sel("flag", "Flags", taxonomy.flags.map((f) => [f.key, f.label])));
  const grid = h("ul", { class: "image-grid", "data-testid": "image-grid", "aria-label": "Images" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const summary = h("span", { class: "muted" });

  const home = h("div", { class: "home" });
  const upload = uploadControl({ api, dropZone: home, onDone: () => loadGrid() });
  home.append(
    h("header", { class: "topbar" }, h("div", { class: "brand" }, "ink", h("span", { text: "label" })), h("div", { class: "spacer" }), app.userMenu()),
    h("div", { class: "home-body" },
      h("section", { class: "queue-card" },
        h("div", {}, h("h1", { text: `Hello, ${app.user.username}` }), counts),
        h("div", { class: "queue-actions" }, upload.button, upload.input, reviewBtn, strategy, nextBtn)),
      upload.status,
      h("div", { class: "list-head" }, filters, summary),
      grid, pager));
  root.replaceChildren(home);

  function go(p) {
    location.hash = "#/" + query({ status: p.status, style: p.style, flag: p.flag, page: p.page > 1 ? p.page : "" });
  }

  loadCounts(api).then((items) => {
    clear(counts);
    if (!items) counts.append(h("span", { class: "muted", text: "Today’s counts appear here once the stats service is available." }));
    else for (const [label, value, href] of items) {
      const item = h(href ? "a" : "span", { class: ["count-item", href && "to-fix"], href, "data-testid": href ? "to-fix" : undefined }, h("strong", { text: String(value) }), " ", label);
      counts.append(item);
    }
  });

  grid.append(h("li", { class: "muted", text: "Loading images…" }));
  await loadGrid();
  return { leave: async () => true, dispose() {} };

  async function loadGrid() {
    try {
      const data = await api.get("/images" + query({ status: params.status, style: params.style, flag: params.flag, page: params.page, per_page: PER_PAGE }));
      const items = (data && data.items) || [];
      const total = (data && data.total) || 0;
      clear(grid);
      if (!items.length) grid.append(h("li", { class: "empty-state" }, h("p", { text: total ? "Nothing on this page." : "No images match. Upload some (the button above, or drop photos on this page), import a folder with python manage.py import DIR, or clear the filters." })));
      items.forEach((img, i) => grid.append(card(img, taxonomy, app.user, i < 12)));
      const pages = Math.max(1, Math.ceil(total / PER_PAGE));
      summary.textContent = `${total.toLocaleString()} image${total === 1 ? "" : "s"}`;
      clear(pager);
      const prev = h("button", { type: "button", class: "btn", disabled: params.page <= 1, on: { click: () => go({ ...params, page: params.page - 1 }) } }, "← Previous");
      const next = h("button", { type: "button", class: "btn", disabled: params.page >= pages, on: { click: () => go({ ...params, page: params.page + 1 }) } }, "Next →");
      pager.append(prev, h("span", { class: "muted", text: `Page ${params.page} of ${pages}` }), next);
    } catch (err) {
      clear(grid);
      grid.append(h("li", { class: "empty-state" }, h("p", { text: `Could not load images: ${err.message}` })));
    }
  }
}

/** "2 masks · 1 box", "boxes only"-style summary of what an image is labelled with ("" when nothing yet). */
export function labelSummary(img) {
  const boxes = img.box_count || 0, masks = (img.region_count || 0) - boxes;
  const n = (k, word) => `${k} ${word}${k === 1 ? "" : (word === "box" ? "es" : "s")}`;
  return [masks ? n(masks, "mask") : "", boxes ? n(boxes, "box") : ""].filter(Boolean).join(" · ");
}

function card(img, taxonomy, user, eager = false) {
  const held = heldByOther(img, user);
  const presence = held ? h("span", { class: "chip small held", "data-testid": "held-by", title: "Someone is working on this image right now", text: `held by ${held.user} until ${clockTime(held.until)}` }) : null;
  // the first rows load at once (lazy loading left them blank on first paint), the rest as they scroll into view
  const thumb = h("img", { src: `/api/v1/images/${img.id}/file?size=thumb`, alt: "", loading: eager ? "eager" : "lazy", decoding: "async", width: 256, height: 256 });
  const styles = (img.styles || []).slice(0, 3).map((s) => {
    const chip = h("span", { class: "chip small", text: taxonomy.label(s) });
    chip.style.borderColor = taxonomy.color(s);
    return chip;
  });
  const flags = (img.flags || []).map((f) => h("span", { class: "chip small flag", text: taxonomy.flagLabel(f) }));
  return h("li", { class: "image-card" },
    h("a", { href: `#/image/${img.id}`, title: img.original_filename || `Image ${img.id}` },
      h("div", { class: "thumb" }, thumb, h("span", { class: "badge", "data-status": img.status, text: (img.status || "").replace("_", " ") })),
      h("div", { class: "card-meta" },
        h("span", { class: "name", text: img.original_filename || `Image ${img.id}` }),
        h("span", { class: "muted small", text: `${img.width}×${img.height}` })),
      h("div", { class: "muted small labels", "data-testid": "label-summary", text: labelSummary(img) }),
      h("div", { class: "chips" }, presence, styles, flags)));
}

/** Today's numbers for the current user: GET /api/v1/stats/me (in the browser's time zone). */
export async function loadCounts(api) {
  try {
    const stats = await api.get("/stats/me" + query({ tz_offset_minutes: -new Date().getTimezoneOffset() }));
    return countsFromStats(stats);
  } catch {
    return null;
  }
}

export function countsFromStats(stats) {
  if (!stats || typeof stats.today !== "object" || !stats.today) return null;
  const t = stats.today;
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const minutes = Math.round(num(t.active_ms) / 60000);
  const out = [
    [`${plural(num(t.images), "image")} worked on today`, num(t.images)],
    [plural(num(t.saves), "save"), num(t.saves)],
    [`${plural(minutes, "minute")} active`, minutes],
  ];
  if (num(t.accepted) || num(t.rejected)) out.push(["accepted", num(t.accepted)], ["rejected", num(t.rejected)]);
  // rework comes first in the queue (Next image); the link lists the rejected images to fix
  if (num(stats.to_fix)) out.push(["to fix after review →", num(stats.to_fix), "#/?status=rejected"]);
  return out;
}

/** "image" or "images" for a count (the number itself is shown beside it). */
export function plural(n, word) {
  return n === 1 ? word : `${word}s`;
}
