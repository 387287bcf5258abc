// Exports: the form (formats, statuses, styles, flags, split ratios, seed), a progress bar while the export job
// runs, the list (counts, size, checksum, who, when) with download links, the manifest, and the diff of two.

import { dialog, h, toast } from "../dom.js";
import { query } from "../api.js";
import { card, emptyRow, field, fmtBytes, fmtDate, numberInput, pager, poll, progressBar, select, statusBadge } from "./common.js";

const PER_PAGE = 20;
const FORMATS = [["coco", "COCO"], ["masks", "Masks (PNG)"], ["crops", "Style crops"], ["yolo", "YOLO-seg"], ["labelme", "LabelMe"],
  ["cvat", "CVAT 1.1 XML"], ["labelstudio", "Label Studio JSON"]];
const DEFAULT_FORMATS = ["coco", "masks", "crops", "yolo", "labelme"];  // CVAT and Label Studio when moving a project out
const CATEGORIES = [["tattoo", "One class, tattoo (style as an attribute)"], ["styles", "One class per trainable style"]];
const STATUSES = ["new", "in_progress", "submitted", "accepted", "rejected"];
// Exports ticked for comparison (id -> export), kept while the console is open so two can be picked on different pages.
const selected = new Map();

function checks(name, options, checked) {
  return h("div", { class: "checks", role: "group", "aria-label": name }, options.map(([value, label]) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name, value, checked: checked.includes(value) }), h("span", { text: label }))));
}

const checkedValues = (form, name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
const sum = (obj) => Object.values(obj || {}).reduce((a, b) => a + (Number(b) || 0), 0);

/** The export request body from the form, or an error message. */
export function exportBody(form) {
  const formats = checkedValues(form, "formats");
  const status = checkedValues(form, "status");
  if (!formats.length) return { error: "Pick at least one format." };
  if (!status.length) return { error: "Pick at least one image status." };
  const val = Number(form.elements.val.value) / 100;
  const test = Number(form.elements.test.value) / 100;
  if (!(val >= 0 && test >= 0 && val + test < 1)) return { error: "Validation and test shares must be 0–99 % and leave room for training." };
  return {
    body: {
      formats,
      categories: form.elements.categories.value,
      split: { val, test, seed: Math.max(0, parseInt(form.elements.seed.value || "0", 10) || 0) },
      filter: { status, styles: checkedValues(form, "styles"), flags: checkedValues(form, "flags") },
      include_excluded: form.elements.include_excluded.checked,
    },
  };
}

function exportForm(app, onStarted) {
  const { taxonomy } = app;
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "start-export" }, "Start export");
  const form = h("form", { class: "c-form", "aria-label": "New export" },
    field("Formats", checks("formats", FORMATS, DEFAULT_FORMATS)),
    field("Classes (COCO categories, YOLO names, class-index masks)", select("categories", CATEGORIES, "tattoo")),
    field("Image statuses", checks("status", STATUSES.map((s) => [s, s.replace("_", " ")]), ["accepted"])),
    field("Styles (none ticked: all)", checks("styles", taxonomy.styles.map((s) => [s.key, s.label]), [])),
    field("Only images with these flags (none ticked: all)", checks("flags", taxonomy.flags.map((f) => [f.key, f.label]), [])),
    h("div", { class: "c-row" },
      field("Validation %", numberInput("val", 10, { min: 0, max: 90, step: 1 })),
      field("Test %", numberInput("test", 10, { min: 0, max: 90, step: 1 })),
      field("Split seed", numberInput("seed", 0, { min: 0, step: 1 }))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "include_excluded" }),
      h("span", { text: "Also write images flagged out of training to an 'excluded' split" })),
    error, h("div", { class: "row" }, submit));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const { body, error: message } = exportBody(form);
    if (message) {
      error.textContent = message;
      return;
    }
    submit.disabled = true;
    try {
      onStarted(await app.api.post("/exports", body));
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function manifestView(exp, full) {
  const counts = exp.counts || {};
  const splits = Object.keys(counts.images || {});
  const table = h("table", { class: "c-table compact" },
    h("thead", {}, h("tr", {}, h("th", { text: "" }), splits.map((s) => h("th", { text: s })))),
    h("tbody", {}, ["images", "regions", "crops"].filter((k) => counts[k] && Object.keys(counts[k]).length).map((k) =>
      h("tr", {}, h("th", { text: k }), splits.map((s) => h("td", { text: String((counts[k] || {})[s] ?? "—") }))))));
  const files = full && full.files ? Object.keys(full.files).length : null;
  return h("div", { class: "manifest", "data-testid": "manifest" },
    table,
    h("p", { class: "small" }, `Excluded images: ${counts.excluded_images ?? 0} · skipped: ${counts.skipped_images ?? 0}`,
      files !== null ? ` · ${files} files with sha256` : ""),
    h("p", { class: "small mono", text: `zip sha256: ${exp.archive_sha256 || "—"}` }),
    h("details", {}, h("summary", { text: "manifest.json" }),
      h("pre", { class: "mono json", text: JSON.stringify(full ? { ...full, images: `[${(full.images || []).length} images]`, files: `{${files} files}` } : exp.manifest, null, 2) })));
}

function diffView(diff) {
  const list = (title, items, fmt) => h("details", { open: items.length > 0 && items.length <= 20 },
    h("summary", { text: `${title}: ${items.length}${diff.truncated ? "+" : ""}` }),
    items.length ? h("ul", { class: "diff-list mono small" }, items.map((it) => h("li", { text: fmt(it) }))) : h("p", { class: "muted small", text: "none" }));
  const c = diff.counts;
  return h("div", { class: "export-diff", "data-testid": "export-diff" },
    h("p", {}, h("strong", { text: `+${c.added} added` }), `  ·  −${c.removed} removed  ·  ${c.relabelled} relabelled  ·  ${c.moved} moved to another split  ·  ${c.unchanged} unchanged`),
    list("Added", diff.added, (i) => `image ${i.id} (${i.split}, v${i.version})`),
    list("Removed", diff.removed, (i) => `image ${i.id} (was ${i.split}, v${i.version})`),
    list("Relabelled", diff.relabelled, (i) => `image ${i.id}: v${i.old_version} → v${i.version} (${i.old_split} → ${i.split})`),
    list("Moved", diff.moved, (i) => `image ${i.id}: ${i.old_split} → ${i.split}`));
}

export async function render({ main, app, params, go }) {
  const { api } = app;
  const page = Math.max(1, parseInt(params.page || "1", 10) || 1);
  const running = h("div", { class: "running", "data-testid": "export-running" });
  const listBody = h("div", {}, h("p", { class: "muted", text: "Loading exports…" }));
  const compareBtn = h("button", { type: "button", class: "btn", disabled: selected.size !== 2, "data-testid": "compare-exports", title: "Tick two finished exports" }, "Compare two");
  const detail = h("div", { "data-testid": "export-detail" });
  const stops = [];

  const showDetail = async (exp) => {
    detail.replaceChildren(card(`Export ${exp.id.slice(0, 8)}`, h("p", { class: "muted", text: "Loading the manifest…" })));
    try {
      const full = await api.get(`/exports/${exp.id}/manifest`);
      detail.replaceChildren(card(`Export ${exp.id.slice(0, 8)} · ${fmtDate(exp.created_at)}`, manifestView(exp, full)));
    } catch (err) {
      detail.replaceChildren(card(`Export ${exp.id.slice(0, 8)}`, h("p", { class: "form-error", text: err.message })));
    }
    detail.scrollIntoView({ behavior: "smooth", block: "start" });
  };

  compareBtn.addEventListener("click", async () => {
    const [a, b] = [...selected.values()].sort((x, y) => Date.parse(x.created_at) - Date.parse(y.created_at));
    try {
      const diff = await api.get(`/exports/${b.id}/diff` + query({ against: a.id }));
      detail.replaceChildren(card(`What changed from ${a.id.slice(0, 8)} (${fmtDate(a.created_at)}) to ${b.id.slice(0, 8)} (${fmtDate(b.created_at)})`, diffView(diff)));
      detail.scrollIntoView({ behavior: "smooth", block: "start" });
    } catch (err) {
      toast(`Could not compare: ${err.message}`, "error");
    }
  });

  let items = [];
  const row = (exp) => {
    const done = exp.status === "succeeded";
    const box = h("input", { type: "checkbox", "aria-label": "Select for comparison", disabled: !done, checked: selected.has(exp.id) });
    box.addEventListener("change", () => {
      if (box.checked) selected.set(exp.id, exp);
      else selected.delete(exp.id);
      while (selected.size > 2) selected.delete(selected.keys().next().value);
      compareBtn.disabled = selected.size !== 2;
      for (const other of listBody.querySelectorAll("tr[data-export-id] input[type=checkbox]")) other.checked = selected.has(other.closest("tr").dataset.exportId);
    });
    const c = exp.counts || {};
    const del = h("button", { type: "button", class: "btn btn-small btn-danger-quiet", title: "Delete this export and its zip", disabled: !done && exp.status !== "failed" && exp.status !== "cancelled" }, "Delete");
    del.addEventListener("click", async () => {
      const ok = await dialog({ title: "Delete this export?", body: [h("p", { text: "The zip is removed from the server. Models trained on it keep working." })], buttons: [{ label: "Cancel", value: false }, { label: "Delete", value: true, kind: "primary" }], cancelValue: false });
      if (!ok) return;
      try {
        await api.del(`/exports/${exp.id}`);
        selected.delete(exp.id);
        compareBtn.disabled = selected.size !== 2;
        refresh();
      } catch (err) {
        toast(err.message, "error");
      }
    });
    return h("tr", { "data-export-id": exp.id, "data-status": exp.status },
      h("td", {}, box),
      h("td", { class: "date" }, h("button", { type: "button", class: "link", "data-testid": "show-manifest", disabled: !done, on: { click: () => showDetail(exp) } }, fmtDate(exp.created_at)),
        h("div", { class: "muted small mono", text: exp.id.slice(0, 8), title: exp.id })),
      h("td", { text: exp.created_by_name || "—" }),
      h("td", {}, statusBadge(exp.status)),
      h("td", { text: c.images ? sum(c.images).toLocaleString() : "—" }),
      h("td", { text: c.regions ? sum(c.regions).toLocaleString() : "—" }),
      h("td", { class: "small", text: (exp.options.formats || []).join(", ") }),
      h("td", { text: fmtBytes(exp.size_bytes) }),
      h("td", { class: "mono small", title: exp.archive_sha256 || "", text: exp.archive_sha256 ? exp.archive_sha256.slice(0, 10) + "…" : "—" }),
      h("td", { class: "actions" }, done ? h("a", { class: "btn btn-small", href: exp.download_url, download: "", "data-testid": "download-export" }, "Download") : null, del));
  };

  const refresh = async () => {
    const data = await api.get("/exports" + query({ page, per_page: PER_PAGE }));
    items = data.items;
    listBody.replaceChildren(
      h("table", { class: "c-table", "data-testid": "exports-table" },
        h("thead", {}, h("tr", {}, ["", "Created", "By", "Status", "Images", "Regions", "Formats", "Size", "sha256", ""].map((t) => h("th", { text: t })))),
        h("tbody", {}, items.length ? items.map(row) : emptyRow(10, "No exports yet. Fill in the form to make the first one."))),
      pager({ page, perPage: PER_PAGE, total: data.total, onPage: (p) => go({ page: p }) }));
    return items;
  };

  const follow = (started) => {
    const label = h("p", { class: "small muted", text: "Queued…" });
    const barHost = h("div", {}, progressBar(0, null, "Export progress"));
    running.replaceChildren(card("Export in progress", barHost, label));
    stops.push(poll(async () => {
      const job = await api.get(`/jobs/${started.job_id}`);
      barHost.replaceChildren(progressBar(job.progress, job.total, "Export progress"));
      label.textContent = `${job.status} · ${job.progress}${job.total ? ` / ${job.total}` : ""} images ${job.message ? "· " + job.message : ""}`;
      if (["succeeded", "failed", "cancelled"].includes(job.status)) {
        running.replaceChildren();
        if (job.status === "succeeded") toast("The export is ready to download.", "ok");
        else toast(`The export ${job.status}: ${job.error || ""}`, "error", 8000);
        await refresh();
        return false;
      }
      return true;
    }, 1000));
  };

  main.append(h("div", { class: "c-head" }, h("h1", { text: "Exports" })),
    h("div", { class: "c-grid side" },
      h("div", {}, running, card("Exports", h("div", { class: "row tight" }, h("span", { class: "muted small", text: "Tick two finished exports to see what changed between them." }), compareBtn), listBody), detail),
      card("New export", exportForm(app, (started) => {
        toast("Export started.", "ok");
        follow(started);
        refresh();
      }))));

  stops.push(poll(async () => {
    const list = await refresh();
    return list.some((e) => e.status === "queued" || e.status === "running");
  }, 3000));
  return () => stops.forEach((s) => s());
}
