// Select and edit: click a region to select it; drag a vertex (or a hole's vertex) to move it; click an edge
// to insert a vertex (and keep dragging it); Alt-click a vertex to remove it. A drag previews on the one
// region being edited and becomes one store update (one undo step) on release.

import { dragBoxCorner } from "../../boxes.js";
import { moveVertex, insertVertex, removeVertex, nearestVertex, nearestEdge, getVertex, roundPoint } from "../../geometry.js";

const VERTEX_HIT = 8; // screen pixels
const EDGE_HIT = 6;

export class SelectTool {
  constructor(ctx) {
    this.editor = ctx;
    this.drag = null;
  }

  _editable() {
    const e = this.editor;
    const r = e.selected;
    if (!r || e.isHidden(r.id) || e.isLocked(r.id)) return null;
    return r;
  }

  _hit(p) {
    const r = this._editable();
    if (!r) return null;
    const s = this.editor.viewport.scale;
    const v = nearestVertex(r.geometry, p.raw, VERTEX_HIT / s);
    if (v) return { kind: "vertex", region: r, addr: v };
    if (r.kind === "box") return null; // a box keeps its four corners: no vertices on its edges
    const edge = nearestEdge(r.geometry, p.raw, EDGE_HIT / s);
    if (edge) return { kind: "edge", region: r, edge };
    return null;
  }

  down(ev, p) {
    const e = this.editor;
    const hit = this._hit(p);
    if (hit && hit.kind === "vertex") {
      if (ev.altKey && hit.region.kind !== "box") {
        this.removeVertex(hit.region, hit.addr);
        return;
      }
      e.selectVertex(hit.addr);
      this.drag = { id: hit.region.id, addr: hit.addr, start: hit.region.geometry, geometry: hit.region.geometry, moved: false, from: p.screen };
      return;
    }
    if (hit && hit.kind === "edge") {
      const { poly, ring, index, point } = hit.edge;
      const at = roundPoint(point);
      const geometry = insertVertex(hit.region.geometry, { poly, ring, index }, at);
      const addr = { poly, ring, index: index + 1 };
      this.drag = { id: hit.region.id, addr, start: geometry, geometry, moved: true, inserted: true, from: p.screen };
      e.preview(hit.region.id, geometry);
      e.selectVertex(addr);
      return;
    }
    const id = e.regionIdAt(ev.target);
    if (id) {
      e.select(id);
      return;
    }
    e.select(null);
    e.startPan(ev);
  }

  move(ev, p) {
    const e = this.editor;
    if (this.drag) {
      const d = this.drag;
      if (!d.moved && Math.hypot(p.screen[0] - d.from[0], p.screen[1] - d.from[1]) < 2) return;
      d.moved = true;
      const region = e.store.get(d.id);
      const box = region && region.kind === "box";
      d.geometry = box ? dragBoxCorner(d.start, d.addr.index, p.image) : moveVertex(d.start, d.addr, p.image);
      e.preview(d.id, d.geometry);
      if (box) e.refreshOverlay(); // its neighbouring corners move too
      else e.overlay.moveHandle(d.addr, p.image);
      return;
    }
    const hit = this._hit(p);
    e.setHover(hit ? hit.kind : "");
    e.overlay.showGhost(hit && hit.kind === "edge" ? hit.edge.point : null);
  }

  up() {
    const e = this.editor;
    const d = this.drag;
    this.drag = null;
    e.endPreview(null);
    if (!d) return;
    if (d.moved && JSON.stringify(d.geometry) !== JSON.stringify(e.store.get(d.id).geometry)) {
      e.store.update(d.id, { geometry: d.geometry });
      e.selectVertex(d.addr);
    } else {
      e.endPreview(d.id);
      e.refreshOverlay();
    }
  }

  cancel() {
    const e = this.editor;
    e.endPreview(this.drag ? this.drag.id : null);
    this.drag = null;
    e.refreshOverlay();
  }

  removeVertex(region, addr) {
    const e = this.editor;
    const result = removeVertex(region.geometry, addr);
    if (!result.geometry) {
      e.notify("That is the region's last triangle: delete the region instead (Delete with no vertex selected).", "warn");
      return false;
    }
    if (result.removed === "part") e.notify("Removed a part of the region (it had 3 vertices left).", "info");
    if (result.removed === "hole") e.notify("Removed the hole (it had 3 vertices left).", "info");
    e.store.update(region.id, { geometry: result.geometry });
    e.selectVertex(null);
    return true;
  }

  /** Delete/Backspace: the selected vertex if any (returns true), else nothing. */
  deleteSelectedVertex() {
    const e = this.editor;
    const r = this._editable();
    if (!r || !e.selectedVertex || !getVertex(r.geometry, e.selectedVertex)) return false;
    if (r.kind === "box") return true; // a box's corner cannot go; Delete with no corner selected removes the box
    this.removeVertex(r, e.selectedVertex);
    return true;
  }

  key(ev) {
    if (ev.key === "Escape" && this.drag) {
      this.cancel();
      return true;
    }
    if (ev.key === "Escape" && this.editor.selectedVertex) {
      this.editor.selectVertex(null);
      return true;
    }
    return false;
  }

  deactivate() {
    this.cancel();
    this.editor.overlay.hideGhost();
  }
}
