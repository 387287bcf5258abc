// What happened to the image (issue 19): who annotated it, how many saves and how much active time, the submit
// checks they kept on purpose (with their reasons), comments pinned to regions (click one to go there; pin a new
// one to the selected region), and a diff overlay on the canvas — the document at the last rejection or the
// model's pre-fill against what is there now. Shown to reviewers and annotators alike.

import { h, clear, formatTime } from "../dom.js";
import { diffDocuments, describeDiff } from "../merge.js";

const CHECK_TITLES = {
  flag_with_regions: "Flagged, yet regions are drawn",
  unstyled_regions: "Regions without a style",
  unanswered_suggestions: "Suggestions not answered",
};

export function formatDuration(ms) {
  const min = Math.round((ms || 0) / 60000);
  if (min < 1) return "under a minute";
  if (min < 60) return `${min} minute${min === 1 ? "" : "s"}`;
  const hours = Math.floor(min / 60), rest = min % 60;
  return `${hours} h ${rest} min`;
}

export function reviewInfoPanel({ api, imageId, editor, store, taxonomy, onInfo = () => {} }) {
  const who = h("p", { class: "small", "data-testid": "review-who", text: "Loading the history…" });
  const notes = h("div", { "data-testid": "review-overrides" });
  const compare = h("select", { "aria-label": "Compare with", "data-testid": "compare-with" },
    h("option", { value: "", text: "Compare with: nothing" }));
  const diffText = h("p", { class: "muted small", "data-testid": "compare-summary" });
  const pins = h("ul", { class: "pins", "data-testid": "region-comments" });
  const pinText = h("textarea", { rows: 2, maxlength: 2000, placeholder: "Comment on the selected region…", "aria-label": "Comment on the selected region", "data-testid": "pin-text" });
  const pinBtn = h("button", { type: "button", class: "btn btn-small", "data-testid": "pin-comment", title: "Pin this comment to the selected region" }, "Pin to the selected region");
  const pinForm = h("div", { class: "pin-form" }, pinText, pinBtn);
  const panel = h("section", { class: "panel", "aria-labelledby": "history-title", "data-testid": "review-info" },
    h("h2", { id: "history-title", text: "History" }), who, notes, pins, pinForm, compare, diffText);
  let info = null;

  function renderPins() {
    clear(pins);
    const comments = (info && info.comments) || [];
    editor.setPins(comments);
    comments.forEach((c) => {
      const index = store.indexOf(c.region_id);
      const li = h("li", { class: ["pin", index < 0 && "gone"], "data-region": c.region_id },
        h("button", { type: "button", class: "linkish", title: index < 0 ? "That region is no longer in the document" : "Show the region",
          disabled: index < 0, on: { click: () => editor.select(c.region_id, { reveal: true }) } }, index < 0 ? "(removed region)" : `Region ${index + 1}`),
        h("span", { text: `: ${c.text}` }), h("span", { class: "muted small", text: ` — ${c.author || "someone"}` }));
      pins.append(li);
    });
  }
  const refreshPinForm = () => { pinBtn.disabled = !editor.selectedId || store.get(editor.selectedId)?.suggested || !pinText.value.trim(); };
  editor.on("select", refreshPinForm);
  pinText.addEventListener("input", refreshPinForm);
  pinBtn.addEventListener("click", async () => {
    const id = editor.selectedId;
    try {
      const c = await api.post(`/images/${imageId}/region-comments`, { region_id: id, text: pinText.value.trim() });
      info.comments = [...(info.comments || []), c];
      pinText.value = "";
      renderPins();
      refreshPinForm();
    } catch (err) {
      editor.notify(err.code === "unknown_region" ? "Save the region first (it is not on the server yet), then pin the comment." : err.message, "warn");
    }
  });
  refreshPinForm();

  function refreshCompare() {
    const which = compare.value;
    const then = which && info && info[which];
    if (!then) {
      editor.showCompare(null);
      diffText.textContent = "";
      return;
    }
    const now = { regions: store.all().filter((r) => !r.suggested), tags: store.tags };
    const d = diffDocuments({ regions: then.regions, tags: now.tags }, now);
    editor.showCompare({ then: then.regions, now: now.regions, diff: d });
    diffText.textContent = `${which === "previous" ? "Since the rejection" : "Against the pre-fill"}: ${describeDiff(d, { style: (s) => taxonomy.label(s) })}. Dashed: then; solid: now.`;
  }

  compare.addEventListener("change", refreshCompare);
  store.subscribe(() => { if (compare.value) refreshCompare(); });

  api.get(`/images/${imageId}/review-info`).then((data) => {
    info = data;
    onInfo(data);
    const names = data.annotators.length ? data.annotators.join(", ") : "nobody yet";
    const bits = [`Annotated by ${names}`, `${data.saves} save${data.saves === 1 ? "" : "s"}`, `${formatDuration(data.time_spent_ms)} active`];
    if (data.last_saved_at) bits.push(`last saved ${formatTime(new Date(data.last_saved_at))}`);
    if (data.status === "submitted" && data.status_since) bits.push(`submitted ${formatTime(new Date(data.status_since))}`);
    who.textContent = bits.join(" · ");
    clear(notes);
    if (data.note && data.note.overrides.length) {
      notes.append(h("div", { class: "note warn" },
        h("strong", { text: `Kept on purpose by ${data.note.author || "the annotator"}:` }),
        h("ul", { class: "overrides" }, data.note.overrides.map((o) => h("li", {},
          h("span", { text: `${CHECK_TITLES[o.check] || o.check}${o.count ? ` (${o.count})` : ""}: ` }),
          h("em", { text: o.reason }))))));
    }
    renderPins();
    if (data.previous) compare.append(h("option", { value: "previous", text: `Compare with: before the rejection (v${data.previous.version})` }));
    if (data.prefill) compare.append(h("option", { value: "prefill", text: "Compare with: the model's pre-fill" }));
    compare.hidden = !data.previous && !data.prefill;
  }).catch(() => {
    who.textContent = "The history is not available on this server.";
    compare.hidden = true;
  });
  return panel;
}
