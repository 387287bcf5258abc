// The canvas of the editor: image + regions (SVG), overlay, brush layer, viewport, pointer and wheel input,
// selection, per-region visibility and locks, and the active tool. Panels and keyboard shortcuts live in
// page.js; this module knows nothing about the network except through the `assist` callback.

import { svg, h } from "../dom.js";
import { Viewport, wheelFactor } from "../viewport.js";
import { RegionRenderer } from "./renderer.js";
import { Overlay } from "./overlay.js";
import { geometryBBox, clampPoint, roundPoint, polygonsOf } from "../geometry.js";
import { TOOL_REGISTRY, TOOLS } from "./tools/registry.js";
import { toolContext } from "./tools/context.js";
import { ViewState } from "../viewstate.js";
import { photoFilter, applyPhotoFilter } from "./photofilter.js";
import { drawCompare } from "./compare.js";

export { TOOLS };
export const SCENE_MARGIN = 256; // px of painted scene beyond each side of the canvas
export const COMMIT_DELAY_MS = 150;

export class Editor {
  constructor({ host, image, taxonomy, store, undo, assist, notify, view }) {
    Object.assign(this, { host, image, taxonomy, store, undo, assist, notify: notify || (() => {}) });
    this.view = view || new ViewState();
    this.viewport = new Viewport();
    this.viewport.setImage(image.width, image.height);
    this.brushRadius = 14; // screen pixels
    this.listeners = new Map();
    this.spaceHeld = false;
    this._buildDom();
    this.renderer = new RegionRenderer(this.regionLayer, store, taxonomy, this.view);
    this.overlay = new Overlay(this.overlayLayer, this.viewport);
    const ctx = toolContext(this);
    this.tools = Object.fromEntries(TOOL_REGISTRY.map((t) => [t.name, t.create(ctx)]));
    this.toolName = "select";
    this.tool = this.tools.select;
    this._frame = 0;
    this.viewport.onChange(() => this._scheduleView());
    this.unsubscribe = store.subscribe((cs) => this._onStore(cs));
    this.unsubscribeView = this.view.subscribe((what) => this._onView(what));
    this._bindInput();
    this.resizeObserver = new ResizeObserver(() => this._resize());
    this.resizeObserver.observe(this.wrap);
    this._resize(true);
    this.setOpacity(this.opacity);
    this._applyPhotoFilter();
  }

  // --- view state (selection, hidden/locked, options) live in this.view ---------------------------------------

  get selectedId() { return this.view.selectedId; }
  get selectedVertex() { return this.view.selectedVertex; }
  get allHidden() { return this.view.options.allHidden; }
  get opacity() { return this.view.options.opacity; }
  get readOnly() { return this.view.options.readOnly; }

  _onView(what) {
    if (what.option === "readOnly") {
      this.wrap.classList.toggle("read-only", this.readOnly);
      if (this.readOnly && this.tool && TOOLS[this.toolName].edits) this.setTool("select");
    }
    if (what.option === "brightness" || what.option === "contrast" || what.option === "gamma") this._applyPhotoFilter();
    if (what.option === "labels" || what.hiddenStyles !== undefined) {
      if (what.hiddenStyles !== undefined) this.renderer.restyleAll();
      this.refreshOverlay();
      this.emit("visibility", null);
    }
  }

  _applyPhotoFilter() {
    applyPhotoFilter(this.photoFilter, this.imageEl, this.view.options);
  }

  // --- events for panels ------------------------------------------------------------------------------------

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  emit(name, value) {
    for (const fn of this.listeners.get(name) || []) fn(value);
  }

  // --- DOM ----------------------------------------------------------------------------------------------------

  _buildDom() {
    const { width, height } = this.image;
    this.imageEl = svg("image", { class: "photo", x: 0, y: 0, width, height, preserveAspectRatio: "none" });
    this.regionLayer = svg("g", { class: "regions" });
    this.world = svg("g", { class: "world" }, this.imageEl, svg("rect", { class: "image-frame", x: 0, y: 0, width, height }), this.regionLayer);
    // The scene (photo + regions) is painted at a "committed" view and moved by the compositor while the view
    // changes (CSS transform, no repaint); it is repainted at the new view once panning/zooming pauses. It
    // extends SCENE_MARGIN pixels past the canvas so that panning reveals painted content.
    this.photoFilter = photoFilter();
    this.scene = svg("svg", { class: "scene", "aria-hidden": "true" }, svg("defs", {}, this.photoFilter), this.world);
    this.overlayLayer = svg("g", { class: "overlay" });
    this.overlaySvg = svg("svg", { class: "overlay-svg", "aria-hidden": "true" }, this.overlayLayer);
    this.brushCanvas = h("canvas", { class: "brush-layer", "aria-hidden": "true" });
    this.svgEl = h("div", { class: "stage", tabindex: "0", role: "application", "aria-label": "Image and regions. Press ? for keyboard shortcuts." },
      this.scene, this.overlaySvg, this.brushCanvas);
    this.wrap = h("div", { class: "canvas-wrap" }, this.svgEl);
    this.host.append(this.wrap);
    this.committed = null;
    this.repaintEveryFrame = false; // benchmarks compare with the naive way: repaint the scene on every change
  }

  /**
   * Progressive picture: the thumbnail at once (made at ingest, usually cached from the grid), the display
   * derivative (long side 2048) as soon as it is decoded, the original only when zoomed past the display's
   * resolution. Each step is decoded off the main thread before it replaces the previous one.
   */
  setImageSources({ thumb, display, original, displaySide }) {
    this.sources = { thumb, display, original, displaySide: displaySide || 2048, level: null, usingOriginal: false };
    const rank = { thumb: 0, display: 1, original: 2 };
    this._show = (level, url) => {
      const s = this.sources;
      if (s.level && rank[s.level] >= rank[level]) return;
      s.level = level;
      this.imageEl.setAttribute("href", url);
      this.wrap.dataset.loaded = level;
      this.emit("image-loaded", level);
    };
    const load = (level, url) => {
      const img = new Image();
      img.src = url;
      return img.decode().then(() => this._show(level, url));
    };
    if (thumb) load("thumb", thumb).catch(() => {});
    load("display", display).catch(() => this.notify("The image could not be loaded.", "error"));
    this._maybeOriginal();
  }

  _maybeOriginal() {
    const s = this.sources;
    if (!s || s.usingOriginal || !s.original) return;
    const long = Math.max(this.image.width, this.image.height);
    if (long <= s.displaySide) return; // the display derivative is full resolution
    if (this.viewport.scale * long <= s.displaySide * 1.1) return;
    s.usingOriginal = true;
    const img = new Image();
    img.src = s.original;
    img.decode().then(() => this._show("original", s.original), () => { s.usingOriginal = false; });
  }

  _resize(first = false) {
    const rect = this.wrap.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width)), hgt = Math.max(1, Math.round(rect.height));
    const dpr = window.devicePixelRatio || 1;
    this.brushCanvas.width = Math.round(w * dpr);
    this.brushCanvas.height = Math.round(hgt * dpr);
    const m = SCENE_MARGIN;
    Object.assign(this.scene.style, { left: `${-m}px`, top: `${-m}px`, width: `${w + 2 * m}px`, height: `${hgt + 2 * m}px` });
    this.committed = null; // repaint the scene at the new size
    const hadSize = this.viewport.width > 1;
    this.viewport.width = w;
    this.viewport.height = hgt;
    if (first || !hadSize || !this._userMoved) this.viewport.fit();
    else this.viewport.emit();
  }

  _scheduleView() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this.renderView();
    });
  }

  /**
   * Apply the viewport. While it keeps changing, only a CSS transform on the scene moves (the compositor does
   * it, whatever the number of regions) and the small screen-space overlay is redrawn; 150 ms after the last
   * change the scene is repainted sharp at the new view.
   */
  renderView() {
    const vp = this.viewport;
    if (!this.committed || this.repaintEveryFrame) this._commitView();
    else {
      const c = this.committed, m = SCENE_MARGIN;
      const k = vp.scale / c.scale;
      const dx = vp.tx + m - k * (c.tx + m), dy = vp.ty + m - k * (c.ty + m);
      this.scene.style.transform = k === 1 && dx === 0 && dy === 0 ? "" : `translate(${dx}px, ${dy}px) scale(${k})`;
      clearTimeout(this._commitTimer);
      this._commitTimer = setTimeout(() => this._commitView(), COMMIT_DELAY_MS);
    }
    this.wrap.classList.toggle("pixelated", vp.scale >= 4);
    this._maybeOriginal();
    this.refreshOverlay();
    if (this.tool.viewChanged) this.tool.viewChanged();
    this.emit("view", vp);
  }

  _commitView() {
    clearTimeout(this._commitTimer);
    const vp = this.viewport, m = SCENE_MARGIN;
    this.committed = { scale: vp.scale, tx: vp.tx, ty: vp.ty };
    this.world.setAttribute("transform", `matrix(${vp.scale} 0 0 ${vp.scale} ${vp.tx + m} ${vp.ty + m})`);
    this.scene.style.transform = "";
  }

  refreshOverlay() {
    const r = this.selectedId && this.store.get(this.selectedId);
    if (r && !this.isHidden(r.id) && !this.tool.hidesHandles) {
      this.overlay.showHandles(this.dragGeometry || r.geometry, this.selectedVertex, { locked: this.isLocked(r.id) });
    } else this.overlay.hideHandles();
    this._labels();
  }

  _labels() {
    const items = [];
    for (const r of this.store.all()) {
      const pinned = this.pins && this.pins.get(r.id);
      if (!(r.suggested || r.id === this.selectedId || this.view.options.labels || pinned) || this.isHidden(r.id) || !r.geometry) continue;
      const [x0, y0] = geometryBBox(r.geometry);
      const name = this.taxonomy.label(r.style);
      const conf = r.confidence !== undefined ? ` ${Math.round(r.confidence * 100)}%` : "";
      const note = pinned ? ` · ${pinned} comment${pinned === 1 ? "" : "s"}` : "";
      items.push({ point: [x0, y0], text: (r.suggested ? "Suggested: " : "") + name + conf + note, color: this.taxonomy.color(r.style), selected: r.id === this.selectedId });
      if (items.length > 60) break;
    }
    this.overlay.showLabels(items);
  }

  /** Comments pinned to regions ([{region_id}]): their regions carry a label with the count. */
  setPins(comments) {
    this.pins = new Map();
    for (const c of comments || []) this.pins.set(c.region_id, (this.pins.get(c.region_id) || 0) + 1);
    this.refreshOverlay();
  }

  /** Diff overlay (compare.js): {then, now, diff} or null. */
  showCompare(cmp) {
    if (!this.compareLayer) {
      this.compareLayer = svg("g", { class: "compare", "data-testid": "compare-layer" });
      this.world.append(this.compareLayer);
    }
    drawCompare(this.compareLayer, cmp);
  }

  // --- store --------------------------------------------------------------------------------------------------

  _onStore(cs) {
    if (cs.reset) {
      this.select(null);
      return;
    }
    if (this.selectedId && !this.store.has(this.selectedId)) this.select(null);
    else if (this.selectedId) {
      const touched = cs.updated.some((e) => e.after.id === this.selectedId) || cs.created.some((e) => e.region.id === this.selectedId);
      if (touched) {
        this.renderer.setSelected(this.selectedId);
        this._validateVertex();
      }
    }
    for (const { region } of cs.deleted) this.view.forget(region.id);
    this.refreshOverlay();
  }

  _validateVertex() {
    if (!this.selectedVertex) return;
    const r = this.store.get(this.selectedId);
    const v = this.selectedVertex;
    const ring = r && polygonsOf(r.geometry)[v.poly] && polygonsOf(r.geometry)[v.poly][v.ring];
    if (!ring || v.index >= ring.length - 1) this.view.selectVertex(null);
  }

  // --- selection, visibility, locks -----------------------------------------------------------------------------

  select(id, { reveal = false } = {}) {
    if (id && !this.store.has(id)) id = null;
    const changed = id !== this.selectedId;
    this.view.select(id);
    this.renderer.setSelected(id);
    if (reveal && id) this.reveal(id);
    this.refreshOverlay();
    if (changed) this.emit("select", id);
  }

  selectVertex(addr) {
    this.view.selectVertex(addr);
    this.refreshOverlay();
  }

  get selected() {
    return this.selectedId ? this.store.get(this.selectedId) : null;
  }

  /** Pan so the region is on screen (zooming out if it does not fit). */
  reveal(id) {
    const r = this.store.get(id);
    if (!r) return;
    const [x0, y0, x1, y1] = geometryBBox(r.geometry);
    const vp = this.viewport;
    const [v0x, v0y, v1x, v1y] = vp.visibleRect();
    if (x0 >= v0x && y0 >= v0y && x1 <= v1x && y1 <= v1y) return;
    const fits = (x1 - x0) * vp.scale < vp.width * 0.9 && (y1 - y0) * vp.scale < vp.height * 0.9;
    if (!fits) vp.scale = Math.max(vp.minScale(), Math.min(vp.width * 0.8 / (x1 - x0 || 1), vp.height * 0.8 / (y1 - y0 || 1)));
    vp.centreOn((x0 + x1) / 2, (y0 + y1) / 2);
  }

  isHidden(id) {
    return this.view.isHidden(this.store.get(id) || { id });
  }

  isLocked(id) {
    return this.view.isLocked(id);
  }

  setHidden(id, hidden) {
    this.view.setHidden(id, hidden);
    this.renderer.restyle(id);
    this.refreshOverlay();
    this.emit("visibility", id);
  }

  setLocked(id, locked) {
    this.view.setLocked(id, locked);
    this.renderer.restyle(id);
    this.refreshOverlay();
    this.emit("visibility", id);
  }

  toggleAllHidden(force) {
    this.view.setOption("allHidden", force === undefined ? !this.allHidden : force);
    this.wrap.classList.toggle("all-hidden", this.allHidden);
    this.refreshOverlay();
    this.emit("visibility", null);
  }

  setOpacity(value) {
    this.view.setOption("opacity", Math.max(0, Math.min(1, value)));
    this.wrap.style.setProperty("--fill-opacity", String(this.opacity));
    this.emit("opacity", this.opacity);
  }

  setBrushRadius(px) {
    this.brushRadius = Math.max(2, Math.min(200, Math.round(px)));
    if (this.tool.radiusChanged) this.tool.radiusChanged();
    this.emit("brush", this.brushRadius);
  }

  // --- tools --------------------------------------------------------------------------------------------------

  setTool(name) {
    if (!this.tools[name]) return;
    if (this.readOnly && TOOLS[name].edits) {
      this.notify("This image is read-only here: drawing tools are off (see the banner above).", "warn");
      return;
    }
    if (this.tool.deactivate) this.tool.deactivate();
    this.toolName = name;
    this.tool = this.tools[name];
    this.wrap.dataset.tool = name;
    if (this.tool.activate) this.tool.activate();
    this.refreshOverlay();
    this.emit("tool", name);
  }

  /** Image point for a pointer event, clamped to the image and rounded to 0.01 px. */
  pointFor(ev) {
    const rect = this.svgEl.getBoundingClientRect();
    const screen = [ev.clientX - rect.left, ev.clientY - rect.top];
    const raw = this.viewport.toImage(screen);
    const image = roundPoint(clampPoint(raw, this.image.width, this.image.height));
    return { screen, image, raw };
  }

  _bindInput() {
    const el = this.svgEl;
    el.addEventListener("pointerdown", (ev) => this._down(ev));
    el.addEventListener("pointermove", (ev) => this._move(ev));
    el.addEventListener("pointerup", (ev) => this._up(ev));
    el.addEventListener("pointercancel", (ev) => this._up(ev, true));
    el.addEventListener("pointerleave", () => {
      this.overlay.hideBrushCursor();
      this.overlay.hideGhost();
      this.emit("cursor", null);
    });
    el.addEventListener("dblclick", (ev) => {
      if (this.tool.dblclick) this.tool.dblclick(ev, this.pointFor(ev));
    });
    el.addEventListener("wheel", (ev) => this._wheel(ev), { passive: false });
    el.addEventListener("contextmenu", (ev) => ev.preventDefault());
    el.addEventListener("auxclick", (ev) => ev.preventDefault());
  }

  // Two fingers on a touch screen pinch-zoom and pan; one finger uses the tool like a mouse.
  _touch(ev, phase) {
    if (ev.pointerType !== "touch") return false;
    this.touches = this.touches || new Map();
    if (phase === "down") this.touches.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (phase === "up") {
      this.touches.delete(ev.pointerId);
      const wasPinching = Boolean(this.pinching);
      if (this.touches.size < 2) this.pinch = null;
      if (this.touches.size === 0) this.pinching = false;
      return wasPinching; // the fingers of a pinch do not reach the tool
    }
    if (phase === "move" && this.touches.has(ev.pointerId)) this.touches.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (this.touches.size !== 2) return Boolean(this.pinching);
    const [a, b] = [...this.touches.values()];
    const rect = this.svgEl.getBoundingClientRect();
    const mid = [(a[0] + b[0]) / 2 - rect.left, (a[1] + b[1]) / 2 - rect.top];
    const dist = Math.hypot(a[0] - b[0], a[1] - b[1]) || 1;
    if (!this.pinch) {
      if (this.tool.cancel) this.tool.cancel();
      this.pinching = true;
    } else {
      this.viewport.panBy(mid[0] - this.pinch.mid[0], mid[1] - this.pinch.mid[1]);
      this.viewport.zoomAt(dist / this.pinch.dist, mid[0], mid[1]);
      this._userMoved = true;
    }
    this.pinch = { mid, dist };
    return true;
  }

  _down(ev) {
    this.emit("activity");
    this.svgEl.focus({ preventScroll: true });
    if (this._touch(ev, "down")) return;
    const p = this.pointFor(ev);
    if (ev.button === 1 || (ev.button === 0 && this.spaceHeld)) {
      ev.preventDefault();
      this._startPan(ev);
      return;
    }
    if (ev.button !== 0) return;
    this._capture(ev.pointerId);
    if (this.tool.down) this.tool.down(ev, p);
  }

  _move(ev) {
    if (this._touch(ev, "move")) return;
    const p = this.pointFor(ev);
    this.lastPointer = p;
    this.emit("cursor", p.raw);
    if (this.panning) {
      this.viewport.panBy(ev.clientX - this.panning.x, ev.clientY - this.panning.y);
      this.panning.x = ev.clientX;
      this.panning.y = ev.clientY;
      this._userMoved = true;
      return;
    }
    if (this.tool.move) this.tool.move(ev, p);
  }

  _up(ev, cancelled = false) {
    if (this._touch(ev, "up")) return;
    if (this.panning) {
      this.panning = null;
      this.wrap.classList.remove("panning");
      return;
    }
    try {
      if (this.svgEl.hasPointerCapture(ev.pointerId)) this.svgEl.releasePointerCapture(ev.pointerId);
    } catch {
      /* synthetic pointer */
    }
    if (cancelled) {
      if (this.tool.cancel) this.tool.cancel();
      return;
    }
    if (this.tool.up) this.tool.up(ev, this.pointFor(ev));
  }

  _capture(pointerId) {
    try {
      this.svgEl.setPointerCapture(pointerId);
    } catch {
      /* synthetic or already released pointer: moves still arrive while over the canvas */
    }
  }

  _startPan(ev) {
    this.panning = { x: ev.clientX, y: ev.clientY };
    this.wrap.classList.add("panning");
    this._capture(ev.pointerId);
  }

  /** Used by tools: a left-drag on the background pans. */
  startPan(ev) {
    this._startPan(ev);
  }

  _wheel(ev) {
    ev.preventDefault();
    this.emit("activity");
    const rect = this.svgEl.getBoundingClientRect();
    const sx = ev.clientX - rect.left, sy = ev.clientY - rect.top;
    // the wheel, and trackpad pinch (which arrives as ctrl+wheel), zoom around the cursor
    this.viewport.zoomAt(wheelFactor(ev.deltaY, ev.deltaMode, ev.ctrlKey), sx, sy);
    this._userMoved = true;
  }

  zoomBy(factor) {
    const p = this.lastPointer ? this.lastPointer.screen : [this.viewport.width / 2, this.viewport.height / 2];
    const inside = p[0] >= 0 && p[1] >= 0 && p[0] <= this.viewport.width && p[1] <= this.viewport.height;
    this.viewport.zoomAt(factor, ...(inside ? p : [this.viewport.width / 2, this.viewport.height / 2]));
    this._userMoved = true;
  }

  fit() {
    this.viewport.fit();
    this._userMoved = false;
  }

  /**
   * The active tool answers every key first (Enter, Esc, Backspace, Ctrl+Z while drawing); the page's own
   * shortcuts run only when it returns false. That keeps undo from touching the document mid-shape.
   */
  toolKey(ev) {
    return this.tool.key ? this.tool.key(ev) : false;
  }

  dispose() {
    if (this.tool.deactivate) this.tool.deactivate();
    this.resizeObserver.disconnect();
    this.unsubscribe();
    this.unsubscribeView();
    this.renderer.dispose();
    if (this._frame) cancelAnimationFrame(this._frame);
    clearTimeout(this._commitTimer);
    this.wrap.remove();
    this.listeners.clear();
  }
}
