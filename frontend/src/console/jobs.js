// Jobs: every background job (kind, status, progress, duration, who started it, its error), filters, paging,
// cancel; the page refreshes itself every 2 s while it is open.

import { h, toast } from "../dom.js";
import { query } from "../api.js";
import { card, emptyRow, fmtDate, fmtDuration, jobDuration, pager, poll, progressBar, select, statusBadge } from "./common.js";

const PER_PAGE = 50;
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["export", "import", "train", "prefill", "scores"];

export function jobRow(job, { onCancel } = {}) {
  const active = job.status === "queued" || job.status === "running";
  const progress = job.total ? `${job.progress.toLocaleString()} / ${job.total.toLocaleString()}` : job.progress ? job.progress.toLocaleString() : "";
  const cancel = active && onCancel
    ? h("button", { type: "button", class: "btn btn-small btn-danger-quiet", "data-testid": "cancel-job", on: { click: () => onCancel(job) } }, "Cancel")
    : null;
  const error = job.error
    ? h("details", { class: "job-error", dataset: { key: "error" } }, h("summary", { text: job.error.split("\n")[0].slice(0, 80) }), h("pre", { class: "mono", text: job.error }))
    : h("span", { class: "muted", text: "—" });
  const shown = { params: job.params, result: job.result && job.result.live ? { ...job.result, history: `[${job.result.history.length} epochs so far]` } : job.result };
  return h("tr", { "data-job-id": job.id, "data-status": job.status },
    h("td", {}, h("strong", { text: job.kind }),
      h("details", { class: "job-more", dataset: { key: "more" } }, h("summary", { class: "muted small mono", text: job.id.slice(0, 8), title: `${job.id}: parameters and result` }),
        h("pre", { class: "mono json", text: JSON.stringify(shown, null, 2) }))),
    h("td", {}, statusBadge(job.status)),
    h("td", { class: "c-progress" }, active || job.total ? progressBar(job.progress, job.total, `${job.kind} progress`) : null,
      h("div", { class: "muted small", text: [progress, job.message].filter(Boolean).join(" · ") })),
    h("td", { text: fmtDuration(jobDuration(job)) }),
    h("td", { text: job.created_by_name || "system" }),
    h("td", { class: "small", text: fmtDate(job.created_at) }),
    h("td", { class: "c-error" }, error),
    h("td", {}, cancel));
}

export function jobTable(rows) {
  return h("table", { class: "c-table", "data-testid": "jobs-table" },
    h("thead", {}, h("tr", {}, ["Kind", "Status", "Progress", "Duration", "Started by", "Created", "Error", ""].map((t) => h("th", { text: t })))),
    h("tbody", {}, rows));
}

export async function cancelJob(api, job) {
  try {
    await api.post(`/jobs/${job.id}/cancel`, {});
    toast(`Asked the ${job.kind} job to stop.`, "ok");
  } catch (err) {
    toast(`Could not cancel: ${err.message}`, "error");
  }
}

export async function render({ main, app, params, go }) {
  const { api } = app;
  const page = Math.max(1, parseInt(params.page || "1", 10) || 1);
  const status = select("status", [["", "All statuses"], ...STATUSES.map((s) => [s, s])], params.status || "");
  const kind = select("kind", [["", "All kinds"], ...KINDS.map((k) => [k, k])], params.kind || "");
  status.setAttribute("aria-label", "Status");
  kind.setAttribute("aria-label", "Kind");
  const onFilter = () => go({ status: status.value, kind: kind.value });
  status.addEventListener("change", onFilter);
  kind.addEventListener("change", onFilter);
  const body = h("div", {}, h("p", { class: "muted", text: "Loading jobs…" }));
  const live = h("span", { class: "muted small live-dot", text: "live" });
  main.append(h("div", { class: "c-head" }, h("h1", { text: "Jobs" }), h("div", { class: "inline" }, status, kind, live)),
    card(null, body));

  const refresh = async () => {
    const data = await api.get("/jobs" + query({ page, per_page: PER_PAGE, status: params.status, kind: params.kind }));
    const openKey = (d) => `${d.closest("tr").dataset.jobId}:${d.dataset.key}`;
    const open = new Set([...body.querySelectorAll("details[open]")].map(openKey));
    const rows = data.items.map((job) => jobRow(job, { onCancel: async (j) => { await cancelJob(api, j); await refresh(); } }));
    body.replaceChildren(jobTable(rows.length ? rows : [emptyRow(8, params.status || params.kind
      ? "No jobs match these filters."
      : "No jobs yet. Exports, training and pre-fills started from the console show up here.")]),
    pager({ page, perPage: PER_PAGE, total: data.total, onPage: (p) => go({ ...params, page: p }) }));
    for (const d of body.querySelectorAll("tr[data-job-id] details")) if (open.has(openKey(d))) d.open = true;
    live.title = `Updated ${new Date().toLocaleTimeString()}`;
  };
  const stop = poll(refresh, 2000);
  return stop;
}
