// Models: segmenters and classifiers with their metrics and which is current; the training form with live
// per-epoch curves; a model's curves, confusion matrix, per-style F1, validation overlays and a side-by-side with
// the current model; promote and roll back; pre-fill the pool with the current models.

import { dialog, h, toast } from "../dom.js";
import { query } from "../api.js";
import { card, emptyRow, field, fmtDate, fmtNum, numberInput, pager, poll, progressBar, select, statusBadge } from "./common.js";
import { barChart, confusionHeatmap } from "./charts.js";
import { trainingCurve } from "./curves.js";
import { overlayGallery } from "./overlays.js";

const PER_PAGE = 25;
const SEG_METRICS = [["iou", "IoU"], ["dice", "Dice"], ["mean_image_iou", "mean image IoU"], ["pixel_accuracy", "pixel accuracy"]];
const CLS_METRICS = [["accuracy", "accuracy"], ["macro_f1", "macro F1"], ["samples", "samples"]];

function trainForm(app, exports, onStarted) {
  const kind = select("kind", [["segmenter", "Segmenter"], ["classifier", "Style classifier"]], "segmenter");
  const exportSel = select("export_id", exports.length ? exports.map((e) => [e.id, `${fmtDate(e.created_at)} · ${e.id.slice(0, 8)}`]) : [["", "No finished export yet"]]);
  // ImageNet weights come in an installed package for EfficientNet-Lite0 (offline); others are downloaded if the
  // machine can, else training starts from random weights with a warning. The defaults: backend/ml/defaults.py.
  const DEFAULT_NET = { segmenter: "tu-tf_efficientnet_lite0", classifier: "resnet18" };
  const SUGGESTED = { segmenter: ["tu-tf_efficientnet_lite0", "resnet18"], classifier: ["resnet18", "tf_efficientnet_lite0"] };
  const suggestions = h("datalist", { id: "encoder-suggestions" });
  const suggest = (k) => suggestions.replaceChildren(...SUGGESTED[k].map((v) => h("option", { value: v })));
  suggest("segmenter");
  const encoder = h("input", { name: "encoder", value: DEFAULT_NET.segmenter, maxlength: 64, list: "encoder-suggestions" });
  const encoderLabel = h("span", { text: "Encoder" });
  const weights = select("encoder_weights", [["auto", "Default"], ["imagenet", "ImageNet weights"], ["none", "Random weights"]], "auto");
  const size = numberInput("input_size", 512, { min: 32, max: 2048, step: 32 });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", disabled: !exports.length, "data-testid": "start-training" }, "Train");
  kind.addEventListener("change", () => {
    const seg = kind.value === "segmenter";
    encoderLabel.textContent = seg ? "Encoder" : "Backbone (timm)";
    if (SUGGESTED[seg ? "classifier" : "segmenter"].includes(encoder.value.trim())) encoder.value = DEFAULT_NET[kind.value];
    suggest(kind.value);
    size.value = seg ? 512 : 128;
    size.step = seg ? 32 : 1;
  });
  const form = h("form", { class: "c-form", "aria-label": "Train a model" },
    h("div", { class: "c-row" }, field("Kind", kind), field("Export", exportSel)),
    h("div", { class: "c-row" },
      field("Epochs", numberInput("epochs", 10, { min: 1, max: 1000 })),
      h("label", { class: "field" }, encoderLabel, encoder, suggestions),
      field("Input size", size),
      field("Batch size", numberInput("batch_size", 8, { min: 1, max: 1024 }))),
    h("div", { class: "c-row" },
      field("Start from", weights, "default: ImageNet if installed (EfficientNet-Lite0)"),
      field("Device", select("device", [["auto", "auto (GPU if present)"], ["cpu", "CPU"], ["cuda", "CUDA GPU"]], "auto")),
      field("Promote", select("promote", [["if_better", "If better"], ["never", "Never (by hand)"], ["always", "Always"]], "if_better"))),
    error, h("div", { class: "row" }, submit));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const f = form.elements;
    const seg = kind.value === "segmenter";
    const body = {
      kind: kind.value, export_id: exportSel.value, epochs: Number(f.epochs.value), input_size: Number(size.value),
      batch_size: Number(f.batch_size.value), device: f.device.value, promote: f.promote.value,
      [seg ? "encoder" : "backbone"]: encoder.value.trim() || DEFAULT_NET[kind.value],
    };
    if (weights.value !== "auto") body.encoder_weights = weights.value;
    submit.disabled = true;
    try {
      onStarted(await app.api.post("/models/train", body), body);
    } catch (err) {
      const first = err.details && err.details.errors && err.details.errors[0];
      error.textContent = first ? `${first.loc.join(".")}: ${first.message}` : err.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function metricTable(model, current) {
  const val = (m) => (m && m.metrics && m.metrics.val) || {};
  const rows = model.kind === "segmenter" ? SEG_METRICS : CLS_METRICS;
  const showCurrent = current && current.id !== model.id;
  const cell = (v, other) => {
    const td = h("td", { text: fmtNum(v) });
    if (typeof v === "number" && typeof other === "number" && v !== other) td.classList.add(v > other ? "better" : "worse");
    return td;
  };
  const extra = [["train seconds", (m) => m.metrics.train_seconds], ["epochs", (m) => m.metrics.epochs_run], ["best epoch", (m) => m.metrics.best_epoch], ["device", (m) => m.metrics.device]];
  return h("table", { class: "c-table compact side-by-side", "data-testid": "side-by-side" },
    h("thead", {}, h("tr", {}, h("th", { text: "validation" }), h("th", { text: `#${model.id} (this)` }), showCurrent ? h("th", { text: `#${current.id} (current)` }) : null)),
    h("tbody", {},
      rows.map(([k, label]) => h("tr", {}, h("th", { text: label }), cell(val(model)[k], showCurrent ? val(current)[k] : undefined), showCurrent ? cell(val(current)[k]) : null)),
      extra.map(([label, get]) => h("tr", { class: "muted" }, h("th", { text: label }), h("td", { text: String(get(model) ?? "—") }), showCurrent ? h("td", { text: String(get(current) ?? "—") }) : null))));
}

function perStyleF1(model, taxonomy) {
  const val = model.metrics.val || {};
  const per = val.per_style || {};
  const keys = val.confusion ? val.confusion.classes.filter((k) => per[k]) : Object.keys(per); // the heatmap's order
  if (!keys.length) return null;
  return barChart({ labels: keys.map((k) => taxonomy.label(k)), values: keys.map((k) => per[k].f1), yLabel: "F1", range: [0, 1], testid: "f1-bars" });
}

async function modelDetail({ app, model, current, onChanged, charts }) {
  const { api, taxonomy } = app;
  const isCurrent = model.is_current;
  const older = current && !isCurrent && model.id < current.id;
  const promote = isCurrent ? null : h("button", { type: "button", class: older ? "btn" : "btn btn-primary", "data-testid": "promote-model" },
    older ? "Roll back to this version" : "Promote to current");
  if (promote) promote.addEventListener("click", async () => {
    const ok = await dialog({ title: older ? "Roll back?" : "Promote this model?", body: [h("p", { text: `Model #${model.id} becomes the current ${model.kind}. New and in-progress images are pre-filled with it in the background.` })],
      buttons: [{ label: "Cancel", value: false }, { label: older ? "Roll back" : "Promote", value: true, kind: "primary" }], cancelValue: false });
    if (!ok) return;
    try {
      await api.post(`/models/${model.id}/promote`, {});
      toast(`Model #${model.id} is now the current ${model.kind}.`, "ok");
      onChanged(model.id);
    } catch (err) {
      toast(`Could not promote: ${err.message}`, "error");
    }
  });
  const curveHost = h("div", { class: "curve" });
  const curve = trainingCurve(curveHost);
  charts.push(curve);
  const history = model.metrics.history || [];
  const val = model.metrics.val || {};
  const parts = [
    h("div", { class: "row tight" },
      h("div", {}, h("strong", { text: model.name }), " ", isCurrent ? h("span", { class: "badge current", text: "current" }) : null,
        h("div", { class: "muted small", text: `${model.kind} · ${[model.architecture.arch || model.architecture.backbone, model.architecture.encoder].filter(Boolean).join(" ")}${model.metrics && model.metrics.pretrained ? " (from ImageNet weights)" : ""} · input ${model.architecture.input_size || "?"} px · export ${model.export_id ? model.export_id.slice(0, 8) : "—"} · ${fmtDate(model.created_at)}` })),
      promote),
    h("div", { class: "c-grid two" },
      h("div", {}, h("h3", { text: "Loss and validation per epoch" }), history.length ? curveHost : h("p", { class: "muted", text: "No per-epoch history was stored with this model." })),
      h("div", {}, h("h3", { text: current && current.id !== model.id ? "Side by side with the current model" : "Validation metrics" }), metricTable(model, current))),
  ];
  if (model.kind === "classifier" && val.confusion) {
    const f1 = perStyleF1(model, taxonomy);
    if (f1) charts.push(f1);
    parts.push(h("div", { class: "c-grid two" },
      h("div", {}, h("h3", { text: "Confusion matrix (validation crops)" }), h("div", { class: "heatmap" }, confusionHeatmap({ ...val.confusion, label: (k) => taxonomy.label(k) }))),
      h("div", {}, h("h3", { text: "F1 per style" }), f1 ? f1.el : h("p", { class: "muted", text: "—" }))));
  }
  if (model.kind === "segmenter") parts.push(prefillFit(model.metrics.prefill_fit));
  if (model.kind === "segmenter") parts.push(h("div", {}, h("h3", { text: "Validation images: predicted (cyan) vs true (yellow) masks" }), overlayGallery(api, model)));
  const el = card(`Model #${model.id}`, parts);
  el.dataset.testid = "model-detail";
  el.setAttribute("data-testid", "model-detail");
  if (history.length) requestAnimationFrame(() => curve.update(history));
  return el;
}

// How training fitted the pre-fill's cut and grouping to the export's boxes (backend/ml/prefill_calibration.py).
function prefillFit(fit) {
  const pct = (v) => `${Math.round(v * 1000) / 10} %`;
  const body = fit
    ? [h("p", { class: "small", text: `Fitted to ${fit.images} box-labelled photos (${fit.boxes} boxes): ink where the model is at least ${pct(fit.threshold)} sure; parts closer than ${pct(2 * fit.group_gap)} of the photo's short side are one tattoo.` }),
      fit.min_score ? h("p", { class: "small", text: `Doubtful regions (small or faint: score under ${fit.min_score}) are not suggested. On those photos none of them matched a box; they were ${fit.regions - fit.regions_kept} of the ${fit.regions} suggestions.` }) : null,
      h("p", { class: "small muted", text: `Pre-filled regions match those boxes at box AP50 ${fit.ap50.toFixed(3)} (recall ${fit.recall50.toFixed(3)}); with the unfitted settings ${fit.base_ap50.toFixed(3)}.` })]
    : [h("p", { class: "small muted", text: "Not fitted: the pre-fill uses the default grouping and this model's own probability cut. Training fits both when its export holds at least 8 box-labelled photos: box the tattoos on a few photos (the Box tool, N, in the editor) and retrain, and the pre-fill learns how your team draws one tattoo." })];
  const el = h("div", {}, h("h3", { text: "Pre-fill fitted to your boxes" }), ...body);
  el.setAttribute("data-testid", "prefill-fit");
  return el;
}

function prefillCard(api, stops) {
  const status = h("div", { "data-testid": "prefill-status" });
  const start = h("button", { type: "button", class: "btn", "data-testid": "prefill-pool", title: "Pre-fill new images with the current models" }, "Pre-fill new images");
  const refresh = h("label", { class: "check" }, h("input", { type: "checkbox", name: "refresh", "data-testid": "prefill-refresh" }), h("span", { text: "recompute images already pre-filled" }));
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      const r = await api.post("/models/prefill", { statuses: ["new"], refresh: refresh.querySelector("input").checked });
      if (!r.job_ids.length) {
        status.replaceChildren(h("p", { class: "muted small", text: "No new images to pre-fill." }));
        start.disabled = false;
        return;
      }
      stops.push(poll(async () => {
        const jobs = await Promise.all(r.job_ids.map((id) => api.get(`/jobs/${id}`)));
        const done = jobs.reduce((a, j) => a + (j.progress || 0), 0);
        const total = jobs.reduce((a, j) => a + (j.total || 0), 0) || r.images;
        const finished = jobs.every((j) => !["queued", "running"].includes(j.status));
        const count = (key) => jobs.reduce((a, j) => a + ((j.result && j.result[key]) || 0), 0);
        const summary = finished
          ? `${count("done")} pre-filled, ${count("skipped")} already pre-filled by these models, ${count("failed")} failed · ${[...new Set(jobs.map((j) => j.status))].join(", ")}`
          : `${done} / ${total} images · ${jobs.map((j) => j.status).join(", ")}`;
        status.replaceChildren(progressBar(finished ? total : done, total, "Pre-fill progress"), h("p", { class: "small muted", text: summary }));
        if (finished) start.disabled = false;
        return !finished;
      }, 1500));
    } catch (err) {
      toast(err.message, "error");
      start.disabled = false;
    }
  });
  return card("Pre-fill the pool", h("p", { class: "small muted", text: "Suggested regions, styles and concentration for new images, from the current models." }), h("div", { class: "row" }, start, refresh), status);
}

export async function render({ main, app, params, go }) {
  const { api } = app;
  const page = Math.max(1, parseInt(params.page || "1", 10) || 1);
  const kind = params.kind || "";
  const stops = [];
  const charts = [];
  const listBody = h("div", {}, h("p", { class: "muted", text: "Loading models…" }));
  const detailHost = h("div", {});
  const liveHost = h("div", { "data-testid": "training-live" });
  const exportsData = await api.get("/exports" + query({ status: "succeeded", per_page: 50 }));
  const currents = {};

  const openModel = async (id) => {
    const model = await api.get(`/models/${id}`);
    const current = currents[model.kind] || null;
    charts.splice(0).forEach((c) => c.destroy());
    detailHost.replaceChildren(await modelDetail({ app, model, current, charts, onChanged: async (mid) => { await loadList(); openModel(mid); } }));
    detailHost.scrollIntoView({ block: "start" });
  };

  const loadList = async () => {
    const [data, cur] = await Promise.all([api.get("/models" + query({ kind, page, per_page: PER_PAGE })), api.get("/models" + query({ current: true }))]);
    for (const k of Object.keys(currents)) delete currents[k];
    for (const m of cur.items) currents[m.kind] = m;
    const rows = data.items.map((m) => h("tr", { "data-model-id": m.id, class: m.is_current ? "is-current" : "" },
      h("td", {}, h("button", { type: "button", class: "link", on: { click: () => openModel(m.id) } }, `#${m.id} ${m.name}`)),
      h("td", { text: m.kind }),
      h("td", {}, m.is_current ? h("span", { class: "badge current", text: "current" }) : null),
      h("td", { text: `${m.headline.metric.replace("val_", "val ")} ${fmtNum(m.headline.value)}` }),
      h("td", { text: String((m.metrics.epochs_run ?? (m.metrics.history || []).length) || "—") }),
      h("td", { class: "mono small", text: m.export_id ? m.export_id.slice(0, 8) : "—" }),
      h("td", { class: "small", text: fmtDate(m.created_at) })));
    listBody.replaceChildren(
      h("table", { class: "c-table", "data-testid": "models-table" },
        h("thead", {}, h("tr", {}, ["Model", "Kind", "", "Headline", "Epochs", "Export", "Created"].map((t) => h("th", { text: t })))),
        h("tbody", {}, rows.length ? rows : emptyRow(7, "No models yet. Train one on an export with the form."))),
      pager({ page, perPage: PER_PAGE, total: data.total, onPage: (p) => go({ kind, page: p }) }));
  };

  const followTraining = (started, body) => {
    const barHost = h("div", {}, progressBar(0, null, "Training progress"));
    const label = h("p", { class: "small muted", text: "Queued…" });
    const curveHost = h("div", { class: "curve", "data-testid": "live-curve-host" }, h("p", { class: "muted small", text: "The curves appear after the first epoch." }));
    const curve = trainingCurve(curveHost, { testid: "live-curve" });
    const cancel = h("button", { type: "button", class: "btn btn-small btn-danger-quiet" }, "Cancel");
    cancel.addEventListener("click", () => api.post(`/jobs/${started.job_id}/cancel`, {}).catch((err) => toast(err.message, "error")));
    liveHost.replaceChildren(card(`Training a ${body.kind} (${body.epochs} epochs)`, h("div", { class: "live-head" }, barHost, cancel), label, curveHost));
    stops.push(() => curve.destroy());
    stops.push(poll(async () => {
      const job = await api.get(`/jobs/${started.job_id}`);
      barHost.replaceChildren(progressBar(job.progress, job.total, "Training progress"));
      label.replaceChildren(statusBadge(job.status), ` ${job.message || ""}`);
      const history = (job.result && job.result.history) || [];
      if (history.length) curve.update(history);
      if (job.status === "succeeded") {
        cancel.remove();
        const r = job.result;
        label.replaceChildren(statusBadge(job.status), ` model #${r.model_version_id}: ${r.headline !== null ? fmtNum(r.headline) : ""} ${r.promoted ? "· promoted to current" : "· not promoted"}`);
        await loadList();
        await openModel(r.model_version_id);
        return false;
      }
      if (job.status === "failed" || job.status === "cancelled") {
        cancel.remove();
        label.replaceChildren(statusBadge(job.status), ` ${job.error || ""}`);
        return false;
      }
      return true;
    }, 1000));
  };

  const kindSel = select("kind", [["", "All kinds"], ["segmenter", "Segmenters"], ["classifier", "Classifiers"]], kind);
  kindSel.setAttribute("aria-label", "Kind");
  kindSel.addEventListener("change", () => go({ kind: kindSel.value }));
  main.append(h("div", { class: "c-head" }, h("h1", { text: "Models" }), kindSel),
    h("div", { class: "c-grid side" },
      h("div", {}, card("Models", listBody), liveHost, detailHost),
      h("div", {}, card("Train a model", trainForm(app, exportsData.items, followTraining)), prefillCard(api, stops))));
  await loadList();
  if (params.model) openModel(Number(params.model));
  return () => {
    stops.forEach((s) => s());
    charts.forEach((c) => c.destroy());
  };
}
