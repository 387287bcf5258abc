// Model help: pre-fill from the current segmenter/classifier (shown as suggestions to accept, edit or
// reject; "accept all"), pre-fill when an image opens (on unless turned off: the cached pre-fill, fetched with
// the document, is drawn at once; without one the model is asked), and what the server said (concentration,
// uncertainty, or why there is no model yet).

import { h, clear, toast } from "../dom.js";
import { roundGeometry } from "../geometry.js";
import { newRegionId } from "../store.js";

export const AUTO_PREFILL_KEY = "inklabel.autoPrefill";

/** Why model help did not work, in words an annotator can act on. */
export function noModelText(err, what = "Pre-fill") {
  if (err.code === "no_model" || err.status === 404 || err.status === 405 || err.status === 409 || err.status === 501) {
    if (err.code && !["no_model", "not_found", "method_not_allowed", "http_404", "http_405"].includes(err.code)) return err.message;
    return `No model is trained yet, so ${what.toLowerCase()} has nothing to offer. Once an admin trains one from accepted annotations (python manage.py train), ${what.toLowerCase()} works here.`;
  }
  return err.message;
}

export function modelPanel({ api, imageId, store }) {
  const info = h("p", { class: "muted small", "data-testid": "model-info", text: "Pre-fill asks the current model for tattoo regions and styles. Suggestions are not saved until you accept them." });
  const prefillBtn = h("button", { type: "button", class: "btn", "data-testid": "prefill", title: "Ask the model for regions and styles" }, "Pre-fill");
  const acceptAll = h("button", { type: "button", class: "btn", title: "Accept every suggestion (Shift+A)", disabled: true }, "Accept all");
  const rejectAll = h("button", { type: "button", class: "btn", title: "Reject every suggestion", disabled: true }, "Reject all");
  const auto = h("input", { type: "checkbox", id: "auto-prefill" });
  auto.checked = localStorage.getItem(AUTO_PREFILL_KEY) !== "0";
  auto.addEventListener("change", () => localStorage.setItem(AUTO_PREFILL_KEY, auto.checked ? "1" : "0"));
  let busy = false;

  /** Draw a pre-fill answer (fresh or cached) as suggestions. */
  function show(resp, { quiet = false } = {}) {
    const regions = (resp && resp.regions) || [];
    // Suggestions keep the server's region ids and model version: the pre-fill usefulness statistics match
    // the final regions to the prediction by them. One undo step removes them all again.
    store.transact(() => {
      for (const r of store.all()) if (r.suggested) store.remove(r.id);
      for (const r of regions) {
        if (!r.geometry) continue;
        let id = typeof r.id === "string" && r.id ? r.id : newRegionId();
        if (store.has(id)) {
          if (!store.get(id).suggested) continue; // accepted earlier: keep the annotator's version
          id = newRegionId();
        }
        store.create({
          id, geometry: roundGeometry(r.geometry), style: r.style || null, motifs: r.motifs || [], source: "model",
          model_version: r.model_version ?? undefined,
          confidence: typeof r.confidence === "number" ? r.confidence : undefined, suggested: true,
        });
      }
    });
    clear(info);
    const bits = [`${regions.length} suggestion${regions.length === 1 ? "" : "s"}`];
    if (typeof resp.concentration === "number") bits.push(`tattoo covers ${Math.round(resp.concentration * 100)}% of the photo`);
    if (resp.low_concentration) bits.push("low concentration: probably not a tattoo close-up");
    const unc = resp.uncertainty && typeof resp.uncertainty === "object" ? (resp.uncertainty.score ?? resp.uncertainty.combined) : resp.uncertainty;
    if (typeof unc === "number") bits.push(`uncertainty ${unc.toFixed(2)}`);
    if (Array.isArray(resp.suggested_flags) && resp.suggested_flags.includes("not_tattoo")) bits.push("the model sees no tattoo: consider the “Not a tattoo” flag");
    info.textContent = bits.join(" · ") + ".";
    info.classList.toggle("warn", Boolean(resp.low_concentration));
    if (!quiet) toast(regions.length ? `Pre-filled ${regions.length} suggestion${regions.length === 1 ? "" : "s"}: accept, edit or reject them.` : "The model found no tattoo here.", "ok");
    if (globalThis.performance && performance.mark) performance.mark("inklabel:suggestions");
  }

  async function prefill({ quiet = false } = {}) {
    if (busy) return;
    busy = true;
    for (const b of buttons) { b.disabled = true; b.textContent = "Pre-filling…"; }
    try {
      show(await api.post(`/images/${imageId}/prefill`, {}), { quiet });
    } catch (err) {
      info.textContent = noModelText(err);
      info.classList.add("warn");
      if (!quiet) toast(noModelText(err), "warn", 7000);
    } finally {
      busy = false;
      for (const b of buttons) { b.disabled = false; b.textContent = "Pre-fill"; }
    }
  }

  function acceptAllSuggestions() {
    const sug = store.all().filter((r) => r.suggested);
    if (!sug.length) return;
    store.transact(() => { for (const r of sug) store.update(r.id, { suggested: false }); });
    toast(`Accepted ${sug.length} suggestion${sug.length === 1 ? "" : "s"}.`, "ok");
  }

  function rejectAllSuggestions() {
    const sug = store.all().filter((r) => r.suggested);
    store.transact(() => { for (const r of sug) store.remove(r.id); });
  }

  function refresh() {
    const n = store.all().filter((r) => r.suggested).length;
    acceptAll.disabled = rejectAll.disabled = n === 0;
    acceptAll.textContent = n ? `Accept all (${n})` : "Accept all";
  }

  // a second Pre-fill button for the top bar, where it stays visible on small screens
  const topButton = h("button", { type: "button", class: "btn btn-small", "data-testid": "prefill-top", title: "Ask the model for regions and styles (suggestions to accept or reject)" }, "Pre-fill");
  const buttons = [prefillBtn, topButton];
  for (const b of buttons) b.addEventListener("click", () => prefill());
  acceptAll.addEventListener("click", acceptAllSuggestions);
  rejectAll.addEventListener("click", rejectAllSuggestions);
  store.subscribe(refresh);
  refresh();

  const panel = h("section", { class: "panel", "aria-labelledby": "model-title" },
    h("h2", { id: "model-title", text: "Model help" }),
    h("div", { class: "row" }, prefillBtn, acceptAll, rejectAll),
    h("label", { class: "inline small", for: "auto-prefill" }, auto, " Pre-fill when an image opens"),
    info);
  return { panel, topButton, prefill, show, acceptAll: acceptAllSuggestions, autoPrefill: () => auto.checked };
}
