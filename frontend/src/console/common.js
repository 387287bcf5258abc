// Shared pieces of the ML console's pages: formatting, a pager, polling that stops with the page, section cards.

import { h } from "../dom.js";

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v < 10 && i ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString([], { year: sameYear ? undefined : "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** How long a job ran (or has been running). */
export function jobDuration(job, now = Date.now()) {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : now;
  return end - Date.parse(job.started_at);
}

export function fmtNum(v, digits = 3) {
  return typeof v === "number" && Number.isFinite(v) ? String(Number(v.toFixed(digits))) : "—";
}

export function pct(v) {
  return typeof v === "number" && Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : "—";
}

/** A section of a console page: a titled card. */
export function card(title, ...children) {
  return h("section", { class: "c-card" }, title ? h("h2", { text: title }) : null, children);
}

export function statusBadge(status) {
  return h("span", { class: "badge job-status", "data-status": status, text: (status || "").replace("_", " ") });
}

export function progressBar(done, total, label) {
  const share = total ? Math.max(0, Math.min(1, done / total)) : null;
  const bar = h("div", { class: ["progress", share === null ? "indeterminate" : ""], role: "progressbar",
    "aria-valuemin": 0, "aria-valuemax": total || undefined, "aria-valuenow": total ? done : undefined,
    "aria-label": label || "Progress" }, h("span", { class: "progress-fill" }));
  if (share !== null) bar.firstChild.style.width = `${(share * 100).toFixed(1)}%`;
  return bar;
}

/** Previous / Page x of y / Next. onPage(n) is called with the page to show. */
export function pager({ page, perPage, total, onPage, label = "Pages" }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  return h("nav", { class: "pager", "aria-label": label },
    h("button", { type: "button", class: "btn btn-small", disabled: page <= 1, on: { click: () => onPage(page - 1) } }, "← Previous"),
    h("span", { class: "muted small", text: `Page ${page} of ${pages} · ${total.toLocaleString()} in all` }),
    h("button", { type: "button", class: "btn btn-small", disabled: page >= pages, on: { click: () => onPage(page + 1) } }, "Next →"));
}

/**
 * Call fn now and then every `ms` while the page is open; waits while the tab is hidden. fn may return false to
 * stop. Returns stop().
 */
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (document.hidden) {
      timer = setTimeout(tick, ms);
      return;
    }
    let again = true;
    try {
      again = (await fn()) !== false;
    } catch (err) {
      console.warn("poll", err);
    }
    if (!stopped && again) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

/** A labelled form field. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { text: label }), control, hint ? h("small", { class: "muted", text: hint }) : null);
}

export function select(name, options, value) {
  const s = h("select", { name }, options.map(([v, t]) => h("option", { value: v, text: t })));
  if (value !== undefined) s.value = value;
  return s;
}

export function numberInput(name, value, { min, max, step } = {}) {
  return h("input", { name, type: "number", value, min, max, step, class: "num" });
}

export function emptyRow(cols, text) {
  return h("tr", {}, h("td", { colspan: cols, class: "empty-state", text }));
}
