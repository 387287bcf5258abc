// Image-level tags: styles seen in the photo and flags (not a tattoo, bad example, store front, …).
// Each toggle is one undoable store change.

import { h, clear } from "../dom.js";

export function tagsPanel({ store, taxonomy }) {
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

  function render() {
    clear(styles);
    clear(flags);
    for (const s of taxonomy.styles) {
      const box = h("input", { type: "checkbox", value: s.key, "data-testid": "image-style-" + s.key });
      box.checked = store.tags.styles.includes(s.key);
      box.addEventListener("change", () => toggle("styles", s.key, box.checked));
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = taxonomy.color(s.key);
      styles.append(h("label", { class: ["toggle", s.trainable === false ? "untrainable" : ""], title: s.trainable === false ? `${s.label}: not used for training` : s.label },
        box, swatch, h("span", { text: s.label })));
    }
    for (const f of taxonomy.flags) {
      const box = h("input", { type: "checkbox", value: f.key, "data-testid": "flag-" + f.key });
      box.checked = store.tags.flags.includes(f.key);
      box.addEventListener("change", () => toggle("flags", f.key, box.checked));
      flags.append(h("label", { class: "toggle", title: f.excluded_from_training === false ? f.label : `${f.label}: the image is left out of training sets` }, box, h("span", { text: f.label })));
    }
  }

  store.subscribe((cs) => { if (cs.reset || cs.tags) render(); });
  render();
  return h("section", { class: "panel", "aria-labelledby": "tags-title" },
    h("h2", { id: "tags-title", text: "Image" }),
    h("h3", { text: "Styles in the photo" }), styles,
    taxonomy.styles.some((s) => s.trainable === false) ? h("p", { class: "footnote", text: "not used for training (too ambiguous)" }) : null,
    h("h3", { text: "Flags" }), flags);
}
