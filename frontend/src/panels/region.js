// The selected region: its style (taxonomy dropdown; number keys do the same), motif tags with suggestions,
// where it came from, and accept / reject for model suggestions.

import { h, clear } from "../dom.js";
import { vertexCount, geometryArea, polygonsOf, makeGeometry, openRing, closeRing, simplifyRing, roundGeometry } from "../geometry.js";

/** Douglas–Peucker on every ring at `tolerance` image pixels (a ring that would collapse keeps its vertices). */
export function simplifyGeometry(geometry, tolerance) {
  return roundGeometry(makeGeometry(polygonsOf(geometry).map((poly) => poly.map((ring) => closeRing(simplifyRing(openRing(ring), tolerance))))));
}

export function regionPanel({ editor, store, taxonomy }) {
  const body = h("div", { class: "panel-body" });
  const panel = h("section", { class: "panel", "aria-labelledby": "region-panel-title" },
    h("h2", { id: "region-panel-title", text: "Selected region" }), body);
  const listId = "motif-suggestions";
  const datalist = h("datalist", { id: listId }, taxonomy.motifs.map((m) => h("option", { value: m })));
  panel.append(datalist);

  function render() {
    clear(body);
    const r = editor.selected;
    if (!r) {
      body.append(h("p", { class: "muted", text: "No region selected. Draw one with P (polygon), B (brush), N (box), X (box assist) or C (click on the ink), or click a region." }));
      return;
    }
    const select = h("select", { id: "region-style", "data-testid": "region-style", "aria-label": "Region style" },
      h("option", { value: "", text: "— no style —" }),
      h("optgroup", { label: "Styles" }, taxonomy.styles.filter((s) => s.trainable !== false).map((s) => option(s))),
      h("optgroup", { label: "Not used for training" }, taxonomy.styles.filter((s) => s.trainable === false).map((s) => option(s))));
    select.value = r.style || "";
    select.addEventListener("change", () => store.update(r.id, { style: select.value || null }));
    const styleInfo = taxonomy.style(r.style);
    const rows = [
      h("label", { class: "field", for: "region-style" }, h("span", { text: "Style" }), select),
    ];
    if (styleInfo && styleInfo.trainable === false) {
      rows.push(h("p", { class: "note warn", text: `${styleInfo.label} is not used for training${styleInfo.note ? ": " + styleInfo.note.replace(/^excluded from training:\s*/, "") : ""}.` }));
    }
    const chips = h("div", { class: "chips", "data-testid": "motifs" }, r.motifs.map((m) =>
      h("span", { class: "chip" }, m,
        h("button", { type: "button", class: "chip-x", title: `Remove motif “${m}”`, "aria-label": `Remove motif ${m}`,
          on: { click: () => store.update(r.id, { motifs: r.motifs.filter((x) => x !== m) }) } }, "×"))));
    const input = h("input", { type: "text", id: "motif-input", list: listId, placeholder: "Add a motif (rose, koi…)", maxlength: 64, autocomplete: "off", "aria-label": "Add motif" });
    const add = () => {
      const v = input.value.trim().toLowerCase().replace(/\s+/g, " ");
      if (!v) return;
      if (!r.motifs.includes(v)) store.update(r.id, { motifs: [...r.motifs, v] });
      input.value = "";
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        add();
        const again = document.getElementById("motif-input");
        if (again) again.focus();
      }
    });
    input.addEventListener("change", () => { if (taxonomy.motifs.includes(input.value.trim().toLowerCase())) add(); });
    rows.push(h("div", { class: "field" }, h("span", { text: "Motifs" }), chips, input));
    const parts = polygonsOf(r.geometry);
    const holes = parts.reduce((n, p) => n + p.length - 1, 0);
    const src = r.source === "model" ? "model pre-fill" : r.source === "assist" ? "assist" : "drawn";
    rows.push(h("p", { class: "muted small", text:
      `${src} · ${parts.length} part${parts.length === 1 ? "" : "s"}, ${holes} hole${holes === 1 ? "" : "s"}, ${vertexCount(r.geometry)} vertices · ${Math.round(geometryArea(r.geometry)).toLocaleString()} px²` }));
    if (r.kind !== "box") {
      // simplification with the tolerance in sight: assists and brushes can leave more vertices than needed
      const tol = h("input", { type: "number", min: 0.1, max: 20, step: 0.1, value: 1, "aria-label": "Simplify tolerance in pixels", "data-testid": "simplify-tolerance", class: "narrow" });
      const simplify = h("button", { type: "button", class: "btn btn-small", "data-testid": "simplify", title: "Remove vertices closer than the tolerance to the outline (one undo step)" }, "Simplify");
      simplify.addEventListener("click", () => {
        const before = vertexCount(r.geometry);
        const geometry = simplifyGeometry(r.geometry, Math.max(0.1, Number(tol.value) || 1));
        const after = vertexCount(geometry);
        if (after < before) store.update(r.id, { geometry });
        editor.notify(after < before ? `Simplified at ${tol.value} px: ${before} → ${after} vertices.` : `Nothing to simplify at ${tol.value} px.`, "info");
      });
      rows.push(h("div", { class: "row tight" }, simplify, h("label", { class: "inline small" }, "tolerance ", tol, " px")));
    }
    if (r.suggested) {
      const conf = r.confidence !== undefined ? ` (${Math.round(r.confidence * 100)}% sure)` : "";
      rows.push(h("div", { class: "suggestion-box" },
        h("p", { text: `Model suggestion${conf}. Accept it as it is, edit it, or reject it.` }),
        h("div", { class: "row" },
          h("button", { type: "button", class: "btn btn-primary", title: "Accept this suggestion (A)", on: { click: () => store.update(r.id, { suggested: false }) } }, "Accept"),
          h("button", { type: "button", class: "btn", title: "Reject this suggestion (R)", on: { click: () => store.remove(r.id) } }, "Reject"))));
    }
    rows.push(h("div", { class: "row" },
      h("button", { type: "button", class: "btn btn-danger-quiet", title: "Delete this region (Delete)", on: { click: () => store.remove(r.id) } }, "Delete region")));
    body.append(...rows);
  }

  function option(s) {
    const key = taxonomy.shortcutText(s.key);
    return h("option", { value: s.key, text: s.label + (key ? `  (${key})` : "") });
  }

  editor.on("select", render);
  store.subscribe((cs) => {
    const id = editor.selectedId;
    if (cs.reset || !id) return render();
    const touched = cs.updated.some((e) => e.after.id === id) || cs.created.some((e) => e.region.id === id);
    if (touched) {
      const focused = document.activeElement && document.activeElement.id === "motif-input";
      render();
      if (focused) document.getElementById("motif-input").focus();
    }
  });
  render();
  return panel;
}
