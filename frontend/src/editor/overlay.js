// Screen-space overlay: vertex handles of the selected region, the polygon being drawn, the assist box, the
// brush cursor and suggestion labels. It is redrawn from image coordinates through the viewport, so handles
// keep their size at every zoom.

import { svg, clear } from "../dom.js";
import { openRing, polygonsOf } from "../geometry.js";

export const MAX_HANDLES = 1500; // handles on screen at once; zoom in to edit denser outlines

export class Overlay {
  constructor(layer, viewport) {
    this.layer = layer;
    this.viewport = viewport;
    this.handles = svg("g", { class: "handles" });
    this.draft = svg("g", { class: "draft" });
    this.labels = svg("g", { class: "labels" });
    this.cursor = svg("g", { class: "cursor-layer" });
    this.layer.append(this.labels, this.handles, this.draft, this.cursor);
    this.handleEls = []; // [{addr, el}]
    this.handleGeom = null;
  }

  // --- vertex handles ---------------------------------------------------------------------------------------

  /** Handles for every vertex of `geometry` that is on screen (none when there are too many). */
  showHandles(geometry, selectedVertex = null, { locked = false } = {}) {
    clear(this.handles);
    this.handleEls = [];
    this.handleGeom = geometry;
    if (!geometry) return;
    const vp = this.viewport;
    const [x0, y0, x1, y1] = vp.visibleRect();
    const pad = 10 / vp.scale;
    const items = [];
    polygonsOf(geometry).forEach((poly, pi) =>
      poly.forEach((ring, ri) =>
        openRing(ring).forEach((p, vi) => {
          if (p[0] >= x0 - pad && p[0] <= x1 + pad && p[1] >= y0 - pad && p[1] <= y1 + pad) items.push([pi, ri, vi, p]);
        }),
      ),
    );
    this.handles.classList.toggle("locked", locked);
    if (items.length > MAX_HANDLES) {
      this.handles.dataset.note = "zoom";
      return;
    }
    delete this.handles.dataset.note;
    const frag = document.createDocumentFragment();
    for (const [pi, ri, vi, p] of items) {
      const [sx, sy] = vp.toScreen(p);
      const isSel = selectedVertex && selectedVertex.poly === pi && selectedVertex.ring === ri && selectedVertex.index === vi;
      const el = svg("rect", {
        class: ["handle", ri > 0 ? "hole" : "", isSel ? "active" : ""],
        x: (sx - 4).toFixed(1), y: (sy - 4).toFixed(1), width: 8, height: 8,
      });
      this.handleEls.push({ addr: { poly: pi, ring: ri, index: vi }, el });
      frag.append(el);
    }
    this.handles.append(frag);
  }

  /** Move one handle during a drag without redrawing the others. */
  moveHandle(addr, imagePoint) {
    const h = this.handleEls.find((x) => x.addr.poly === addr.poly && x.addr.ring === addr.ring && x.addr.index === addr.index);
    if (!h) return;
    const [sx, sy] = this.viewport.toScreen(imagePoint);
    h.el.setAttribute("x", (sx - 4).toFixed(1));
    h.el.setAttribute("y", (sy - 4).toFixed(1));
  }

  hideHandles() {
    clear(this.handles);
    this.handleEls = [];
    this.handleGeom = null;
  }

  /** A ghost vertex where a click on the edge would insert one. */
  showGhost(imagePoint) {
    this.hideGhost();
    if (!imagePoint) return;
    const [sx, sy] = this.viewport.toScreen(imagePoint);
    this.ghost = svg("circle", { class: "ghost", cx: sx.toFixed(1), cy: sy.toFixed(1), r: 4.5 });
    this.cursor.append(this.ghost);
  }

  hideGhost() {
    if (this.ghost) this.ghost.remove();
    this.ghost = null;
  }

  // --- drawing a polygon ------------------------------------------------------------------------------------

  showDraft(points, cursorPoint, { hole = false, closable = false } = {}) {
    clear(this.draft);
    if (!points.length) return;
    const vp = this.viewport;
    const scr = points.map((p) => vp.toScreen(p));
    const all = cursorPoint ? scr.concat([vp.toScreen(cursorPoint)]) : scr;
    const pts = all.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
    const cls = hole ? "hole" : "";
    if (all.length >= 3) this.draft.append(svg("polygon", { class: ["draft-fill", cls], points: pts }));
    this.draft.append(svg("polyline", { class: ["draft-halo"], points: pts }));
    this.draft.append(svg("polyline", { class: ["draft-line", cls], points: pts }));
    scr.forEach((p, i) => {
      this.draft.append(svg("circle", {
        class: ["draft-vertex", i === 0 && closable ? "closable" : ""],
        cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: i === 0 ? 5.5 : 3.5,
      }));
    });
  }

  clearDraft() {
    clear(this.draft);
  }

  /** Click-to-segment's clicks: green on the tattoo, red (Shift+click) off it. */
  showClicks(positive, negative) {
    clear(this.draft);
    for (const [points, kind] of [[positive, "pos"], [negative, "neg"]]) {
      for (const p of points) {
        const [x, y] = this.viewport.toScreen(p);
        this.draft.append(svg("circle", { class: `click-mark ${kind}`, cx: x, cy: y, r: 5 }));
      }
    }
  }

  showBox(a, b) {
    clear(this.draft);
    const [ax, ay] = this.viewport.toScreen(a);
    const [bx, by] = this.viewport.toScreen(b);
    this.draft.append(svg("rect", {
      class: "assist-box", x: Math.min(ax, bx), y: Math.min(ay, by), width: Math.abs(bx - ax), height: Math.abs(by - ay),
    }));
  }

  // --- brush cursor -----------------------------------------------------------------------------------------

  showBrushCursor(screenPoint, radius, erase) {
    if (!this.brush) {
      this.brush = svg("circle", { class: "brush-cursor" });
      this.cursor.append(this.brush);
    }
    this.brush.setAttribute("cx", screenPoint[0].toFixed(1));
    this.brush.setAttribute("cy", screenPoint[1].toFixed(1));
    this.brush.setAttribute("r", radius.toFixed(1));
    this.brush.classList.toggle("erase", Boolean(erase));
  }

  hideBrushCursor() {
    if (this.brush) this.brush.remove();
    this.brush = null;
  }

  // --- labels for model suggestions -------------------------------------------------------------------------

  showLabels(items) {
    clear(this.labels);
    this.labelWidths = this.labelWidths || new Map();
    for (const { point, text, color, selected } of items) {
      const [sx, sy] = this.viewport.toScreen(point);
      if (sx < -200 || sy < -50 || sx > this.viewport.width + 50 || sy > this.viewport.height + 50) continue;
      const label = svg("text", { x: 9, y: 13, text });
      const box = svg("rect", { height: 18, rx: 4 });
      const lx = Math.max(2, sx), ly = Math.max(2, sy - 22);
      const g = svg("g", { class: ["label", selected ? "selected" : ""], transform: `translate(${lx.toFixed(1)} ${ly.toFixed(1)})` },
        box, svg("rect", { class: "swatch", width: 4, height: 18, rx: 1, fill: color }), label);
      this.labels.append(g);
      let width = this.labelWidths.get(text);
      if (width === undefined) {
        width = label.getComputedTextLength ? label.getComputedTextLength() : text.length * 7;
        if (width > 0) this.labelWidths.set(text, width);
      }
      box.setAttribute("width", (width + 15).toFixed(1));
    }
  }
}
