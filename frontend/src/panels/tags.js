// Image-level tags: styles seen in the photo and flags (not a tattoo, bad example, store front, …).
// Each toggle is one undoable store change. A style some region has is ticked by the regions (as the API reports
// the image's styles: image-level plus region styles) and cannot be unticked here; only the extra image-level
// styles are ticked by hand. In a read-only editor every box is disabled.

import { h, clear } from "../dom.js";

/** Styles the image's regions carry (suggestions not counted: they are not part of the document yet). */
export function regionStyles(store) {
  const out = new Set();
  for (const r of store.all()) if (r.style && !r.suggested) out.add(r.style);
  return out;
}

export function tagsPanel({ store, taxonomy, view }) {
  const styles = h("div", { class: "toggle-grid", role: "group", "aria-label": "Image styles" });
  const flags = h("div", { class: "toggle-list", role: "group", "aria-label": "Image flags" });

  function toggle(kind, key, on) {
    const tags = { styles: [...store.tags.styles], flags: [...store.tags.flags] };
    const list = tags[kind];
    const i = list.indexOf(key);
    if (on && i < 0) list.push(key);
    if (!on && i >= 0) list.splice(i, 1);
    store.setTags(tags);
  }

  let shownRegionStyles = "";
  function render() {
    clear(styles);
    clear(flags);
    const readOnly = Boolean(view && view.options.readOnly);
    const fromRegions = regionStyles(store);
    shownRegionStyles = [...fromRegions].sort().join();
    for (const s of taxonomy.styles) {
      const derived = fromRegions.has(s.key);
      const box = h("input", { type: "checkbox", value: s.key, "data-testid": "image-style-" + s.key, "data-derived": derived ? "regions" : undefined });
      box.checked = derived || store.tags.styles.includes(s.key);
      box.disabled = derived || readOnly;
      box.addEventListener("change", () => toggle("styles", s.key, box.checked));
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = taxonomy.color(s.key);
      const title = derived ? `${s.label}: a region has this style` : s.trainable === false ? `${s.label}: not used for training` : s.label;
      styles.append(h("label", { class: ["toggle", s.trainable === false ? "untrainable" : "", derived ? "derived" : ""], title },
        box, swatch, h("span", { text: s.label }), derived ? h("span", { class: "derived-mark", "aria-hidden": "true", text: "●" }) : null));
    }
    for (const f of taxonomy.flags) {
      const box = h("input", { type: "checkbox", value: f.key, "data-testid": "flag-" + f.key });
      box.checked = store.tags.flags.includes(f.key);
      box.disabled = readOnly;
      box.addEventListener("change", () => toggle("flags", f.key, box.checked));
      flags.append(h("label", { class: "toggle", title: f.excluded_from_training === false ? f.label : `${f.label}: the image is left out of training sets` }, box, h("span", { text: f.label })));
    }
  }

  store.subscribe((cs) => {
    if (cs.reset || cs.tags) return render();
    const regionsChanged = cs.created.length || cs.deleted.length || cs.updated.length;
    if (regionsChanged && [...regionStyles(store)].sort().join() !== shownRegionStyles) render();
  });
  if (view) view.subscribe((what) => { if (what.option === "readOnly") render(); });
  render();
  return h("section", { class: "panel", "aria-labelledby": "tags-title" },
    h("h2", { id: "tags-title", text: "Image" }),
    h("h3", { text: "Styles in the photo" }),
    h("p", { class: "muted small", text: "Styles of the regions (●) are ticked for you; tick others you see in the photo." }), styles,
    taxonomy.styles.some((s) => s.trainable === false) ? h("p", { class: "footnote", text: "not used for training (too ambiguous)" }) : null,
    h("h3", { text: "Flags" }), flags);
}
