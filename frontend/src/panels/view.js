// The view panel (issue 19 item 10): the photo's brightness, contrast and gamma (fine line on dark skin), region
// labels on the canvas (L), hide/show by style, and copying regions — Ctrl+C / Ctrl+V, and "regions from the
// previous image". Everything here but the copies lives in the view state, not in the document.

import { h, clear } from "../dom.js";
import { newRegionId } from "../store.js";

const PHOTO = [
  ["brightness", "Brightness", 0.3, 3, 0.05],
  ["contrast", "Contrast", 0.3, 3, 0.05],
  ["gamma", "Gamma", 0.3, 3, 0.05],
];

// copies outlive an image (the editor page is rebuilt per image): the clipboard and the last image's regions
const memory = { clipboard: [], previous: null };

/** Regions as new ones of this image: fresh ids, drawn by hand from here on, not suggestions. */
export function copiesOf(regions) {
  return regions.map((r) => ({ id: newRegionId(), kind: r.kind, geometry: r.geometry, style: r.style, motifs: [...(r.motifs || [])], source: "human" }));
}

export function viewPanel({ view, store, editor, taxonomy, imageId, notify }) {
  const sliders = PHOTO.map(([name, label, min, max, step]) => {
    const input = h("input", { type: "range", min, max, step, value: view.options[name], "aria-label": label, "data-testid": `photo-${name}` });
    const text = h("span", { class: "small mono", text: Number(view.options[name]).toFixed(2) });
    input.addEventListener("input", () => view.setOption(name, Number(input.value)));
    view.subscribe((what) => {
      if (what.option !== name) return;
      input.value = String(view.options[name]);
      text.textContent = Number(view.options[name]).toFixed(2);
    });
    return h("label", { class: "slider-row" }, h("span", { text: label }), input, text);
  });
  const reset = h("button", { type: "button", class: "btn btn-small", title: "Back to the photo as it is" }, "Reset");
  reset.addEventListener("click", () => { for (const [name] of PHOTO) view.setOption(name, 1); });

  const labels = h("input", { type: "checkbox", id: "show-labels", "data-testid": "show-labels" });
  labels.checked = view.options.labels;
  labels.addEventListener("change", () => view.setOption("labels", labels.checked));
  view.subscribe((what) => { if (what.option === "labels") labels.checked = view.options.labels; });

  const styleChips = h("div", { class: "chips", "data-testid": "style-visibility" });
  function renderStyles() {
    clear(styleChips);
    const present = new Set(store.all().map((r) => r.style || ""));
    for (const key of [...present].sort()) {
      const hidden = view.hiddenStyles.has(key);
      const chip = h("button", { type: "button", class: ["chip", "small", hidden && "off"], "aria-pressed": String(!hidden),
        "data-style": key || "none", title: hidden ? "Show this style's regions" : "Hide this style's regions" },
      h("span", { class: "swatch" }), key ? taxonomy.label(key) : "No style");
      chip.firstChild.style.background = taxonomy.color(key || null);
      chip.addEventListener("click", () => view.setStyleHidden(key, !hidden));
      styleChips.append(chip);
    }
  }
  store.subscribe(renderStyles);
  view.subscribe((what) => { if (what.hiddenStyles !== undefined) renderStyles(); });
  renderStyles();

  const fromPrevious = h("button", { type: "button", class: "btn btn-small", "data-testid": "from-previous" });
  function refreshPrevious() {
    const prev = memory.previous && memory.previous.imageId !== imageId ? memory.previous : null;
    fromPrevious.disabled = !prev || !prev.regions.length;
    fromPrevious.textContent = prev && prev.regions.length ? `Regions from the previous image (${prev.regions.length})` : "Regions from the previous image";
  }
  fromPrevious.addEventListener("click", () => paste(memory.previous.regions, "from the previous image"));
  refreshPrevious();

  function paste(regions, where) {
    if (!regions.length) { notify("Nothing to paste: select a region and press Ctrl+C first.", "info"); return; }
    if (store.readOnly) { store.onRefused(); return; }
    const copies = copiesOf(regions);
    store.transact(() => { for (const r of copies) store.create(r); });
    editor.select(copies[copies.length - 1].id);
    notify(`Pasted ${copies.length} region${copies.length === 1 ? "" : "s"} ${where} (Ctrl+Z removes them).`, "ok");
  }

  const panel = h("section", { class: "panel", "aria-labelledby": "view-title" },
    h("h2", { id: "view-title", text: "View" }),
    h("div", { class: "photo-adjust" }, sliders, reset),
    h("label", { class: "inline small", for: "show-labels" }, labels, " Region labels on the canvas (L)"),
    h("p", { class: "muted small", text: "Show or hide by style:" }), styleChips,
    h("div", { class: "row" }, fromPrevious));
  return {
    panel,
    copy() {
      const r = editor.selected;
      if (!r) { notify("Select a region to copy.", "info"); return; }
      memory.clipboard = [r];
      notify("Region copied: Ctrl+V pastes it here or on another image.", "info");
    },
    paste: () => paste(memory.clipboard, "from the clipboard"),
    /** On leaving the image: its regions become "the previous image's". */
    remember() {
      memory.previous = { imageId, regions: store.all().filter((r) => !r.suggested) };
    },
  };
}
