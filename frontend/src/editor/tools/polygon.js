// Polygon and hole drawing. Click adds a vertex; double-click, Enter, or a click on the first vertex closes;
// Backspace or Ctrl+Z removes the last vertex (Ctrl+Shift+Z / Ctrl+Y puts it back); Esc cancels. While a shape
// is being drawn these keys never reach the document's undo stack. The hole tool adds the ring as a hole of the selected
// region's polygon that contains it. Shift+Enter (polygon tool) adds the shape as another part of the
// selected region, making it a MultiPolygon.

import { addHole, addPart, polygonFromPoints, ringProblem } from "../../geometry.js";

const CLOSE_HIT = 9; // screen pixels

export class PolygonTool {
  constructor(ctx, { hole }) {
    this.editor = ctx;
    this.hole = hole;
    this.points = [];
    this.removed = []; // vertices taken back with Ctrl+Z, for Ctrl+Shift+Z
    this.cursor = null;
  }

  get drawing() {
    return this.points.length > 0;
  }

  activate() {
    const e = this.editor;
    if (this.hole && !e.selected) e.notify("Select a region first: holes are cut into the selected region.", "warn");
  }

  deactivate() {
    this.points = [];
    this.removed = [];
    this.editor.overlay.clearDraft();
    this.editor.emit("draft", 0);
  }

  _nearFirst(p) {
    if (this.points.length < 3) return false;
    const [fx, fy] = this.editor.viewport.toScreen(this.points[0]);
    return Math.hypot(p.screen[0] - fx, p.screen[1] - fy) <= CLOSE_HIT;
  }

  down(ev, p) {
    // pointerdown has no click count (detail is 0), so double-clicks are recognised here: a second press
    // within 400 ms and 5 px closes the polygon (the first press already placed the last vertex)
    const now = ev.timeStamp;
    const prev = this.lastDown;
    this.lastDown = { t: now, x: p.screen[0], y: p.screen[1] };
    if (prev && now - prev.t < 400 && Math.hypot(p.screen[0] - prev.x, p.screen[1] - prev.y) < 5 && this.points.length >= 3) {
      this.lastDown = null;
      this.close(ev.shiftKey);
      return;
    }
    if (this._nearFirst(p)) {
      this.close(ev.shiftKey);
      return;
    }
    const last = this.points[this.points.length - 1];
    if (last && last[0] === p.image[0] && last[1] === p.image[1]) return;
    this.points.push(p.image);
    this.removed = [];
    this.editor.emit("activity");
    this._draw();
  }

  move(ev, p) {
    this.cursor = p.image;
    if (this.drawing) this._draw(p);
  }

  viewChanged() {
    if (this.drawing) this._draw();
  }

  _draw(p) {
    const closable = p ? this._nearFirst(p) : false;
    this.editor.overlay.showDraft(this.points, closable ? null : this.cursor, { hole: this.hole, closable });
    this.editor.emit("draft", this.points.length);
  }

  key(ev) {
    if (!this.drawing) return false;
    const ctrl = ev.ctrlKey || ev.metaKey;
    const letter = ev.key.length === 1 ? ev.key.toLowerCase() : "";
    if (ctrl && (letter === "y" || (letter === "z" && ev.shiftKey))) {
      if (this.removed.length) {
        this.points.push(this.removed.pop());
        this._draw();
      }
      return true;
    }
    if (ctrl && letter === "z") return this._removeLast();
    if (ev.key === "Enter") {
      this.close(ev.shiftKey);
      return true;
    }
    if (ev.key === "Escape") {
      this.points = [];
      this.editor.overlay.clearDraft();
      this.editor.emit("draft", 0);
      return true;
    }
    if (ev.key === "Backspace") return this._removeLast();
    return false;
  }

  _removeLast() {
    this.removed.push(this.points.pop());
    if (this.drawing) this._draw();
    else this.editor.overlay.clearDraft();
    this.editor.emit("draft", this.points.length);
    return true;
  }

  close(asPart) {
    const e = this.editor;
    if (this.points.length < 3) {
      e.notify("A polygon needs at least 3 vertices.", "warn");
      return false;
    }
    const problem = ringProblem(this.points);
    if (problem) {
      e.notify(`Cannot close: ${problem}. Backspace removes the last vertex.`, "warn");
      return false;
    }
    const points = this.points;
    const sel = e.selected;
    if (this.hole) {
      if (!sel) {
        e.notify("Select the region to cut the hole into first (Esc, then click it).", "warn");
        return false;
      }
      if (e.isLocked(sel.id)) {
        e.notify("The selected region is locked.", "warn");
        return false;
      }
      const geometry = addHole(sel.geometry, points);
      if (!geometry) {
        e.notify("A hole must lie inside the selected region.", "warn");
        return false;
      }
      e.store.update(sel.id, { geometry });
    } else if (asPart && sel && !e.isLocked(sel.id)) {
      e.store.update(sel.id, { geometry: addPart(sel.geometry, points) });
    } else {
      const region = e.store.create({ geometry: polygonFromPoints(points), style: null, motifs: [], source: "human" });
      e.select(region.id);
    }
    this.points = [];
    this.removed = [];
    e.overlay.clearDraft();
    e.emit("draft", 0);
    return true;
  }
}
