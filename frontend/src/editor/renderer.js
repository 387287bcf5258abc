// SVG rendering of the regions. Paths live in image coordinates inside one transformed <g>, so pan and zoom
// change a single attribute; the renderer observes the store's change sets and touches only the regions in
// them (a vertex drag updates one path's `d` per frame, nothing else). Each region is its coloured shape over a
// dark casing (the outline halo that keeps light colours readable on pale skin); only the selected region gets
// a third, white halo path.

import { svg } from "../dom.js";
import { pathData } from "../geometry.js";

export class RegionRenderer {
  constructor(layer, store, taxonomy, view) {
    this.layer = layer;
    this.store = store;
    this.taxonomy = taxonomy;
    this.els = new Map(); // id -> {g, halo, shape}
    this.selected = null;
    this.view = view; // the view state: hidden/locked sets, hidden styles
    this.unsubscribe = store.subscribe((cs) => this.onChange(cs));
    this.rebuild();
  }

  onChange(cs) {
    if (cs.reset) return this.rebuild();
    for (const { region } of cs.deleted) this._remove(region.id);
    for (const { region } of cs.created) this._add(region, this.store.indexOf(region.id));
    for (const { after } of cs.updated) this._update(after);
  }

  rebuild() {
    for (const { g } of this.els.values()) g.remove();
    this.els.clear();
    const frag = document.createDocumentFragment();
    for (const r of this.store.all()) frag.append(this._make(r));
    this.layer.append(frag);
  }

  _make(region) {
    const d = pathData(region.geometry);
    const shape = svg("path", { class: "shape", d });
    // a dark outline under the coloured edge, so light style colours read on pale skin as well as on black ink
    const casing = svg("path", { class: "casing", d });
    const g = svg("g", { class: "region", "data-id": region.id }, casing, shape);
    this.els.set(region.id, { g, halo: null, shape, casing });
    this._style(region);
    if (this.selected === region.id) this._addHalo(region.id);
    return g;
  }

  _addHalo(id) {
    const el = this.els.get(id);
    if (!el || el.halo) return;
    el.halo = svg("path", { class: "halo", d: el.shape.getAttribute("d") });
    el.g.insertBefore(el.halo, el.casing);
  }

  _removeHalo(id) {
    const el = this.els.get(id);
    if (!el || !el.halo) return;
    el.halo.remove();
    el.halo = null;
  }

  _setD(el, d) {
    el.shape.setAttribute("d", d);
    el.casing.setAttribute("d", d);
    if (el.halo) el.halo.setAttribute("d", d);
  }

  _add(region, index) {
    const g = this._make(region);
    const nextId = this.store.order[index + 1];
    const next = nextId && this.els.get(nextId);
    this.layer.insertBefore(g, next ? next.g : null);
  }

  _remove(id) {
    const el = this.els.get(id);
    if (el) el.g.remove();
    this.els.delete(id);
  }

  _update(region) {
    const el = this.els.get(region.id);
    if (!el) return;
    const d = pathData(region.geometry);
    if (el.shape.getAttribute("d") !== d) this._setD(el, d);
    this._style(region);
  }

  _style(region) {
    const el = this.els.get(region.id);
    if (!el) return;
    const color = this.taxonomy.color(region.style);
    el.shape.style.setProperty("--c", color);
    const cls = ["region"];
    if (region.kind === "box") cls.push("box"); // a weak label: drawn as a dashed rectangle, lightly filled
    if (region.suggested) cls.push("suggested");
    if (!region.style) cls.push("unstyled");
    if (this.selected === region.id) cls.push("selected");
    if (this.view.hidden.has(region.id) || this.view.hiddenStyles.has(region.style || "")) cls.push("hidden");
    if (this.view.locked.has(region.id)) cls.push("locked");
    el.g.setAttribute("class", cls.join(" "));
  }

  restyle(id) {
    const r = this.store.get(id);
    if (r) this._style(r);
  }

  setSelected(id) {
    const prev = this.selected;
    this.selected = id;
    if (prev && prev !== id) this._removeHalo(prev);
    if (prev) this.restyle(prev);
    if (id) {
      this._addHalo(id);
      this.restyle(id);
      // draw the selected region on top so its edges are never hidden by neighbours
      const el = this.els.get(id);
      if (el && el.g !== this.layer.lastChild) this.layer.append(el.g);
    }
    if (prev && prev !== id) this._restoreOrder(prev);
  }

  _restoreOrder(id) {
    const el = this.els.get(id);
    if (!el) return;
    const index = this.store.indexOf(id);
    const nextId = this.store.order[index + 1];
    const next = nextId && this.els.get(nextId);
    if (next && next.g !== el.g.nextSibling) this.layer.insertBefore(el.g, next.g);
  }

  restyleAll() {
    for (const r of this.store.all()) this._style(r);
  }

  /** Show a geometry for a region without touching the store (live drag / brush preview). */
  preview(id, geometry) {
    const el = this.els.get(id);
    if (!el) return;
    this._setD(el, pathData(geometry));
  }

  /** Back to what the store holds. */
  endPreview(id) {
    const r = this.store.get(id);
    if (r) this._update(r);
  }

  regionIdAt(target) {
    const g = target && target.closest ? target.closest("g.region") : null;
    return g ? g.getAttribute("data-id") : null;
  }

  dispose() {
    this.unsubscribe();
    for (const { g } of this.els.values()) g.remove();
    this.els.clear();
  }
}
