// Brush and eraser. While painting, the stroke is drawn on a canvas above the image (round caps and joins,
// the shape the result will have); on release it is combined with the region's geometry (raster.js) in one
// store update. The brush on no selection paints a new region; the eraser works on the selected region or
// the one the stroke starts on.

import { applyStroke, strokeBBox } from "../raster.js";
import { roundGeometry, roundPoint, bboxIntersects, geometryBBox } from "../../geometry.js";

/**
 * The stroke combined with the geometry: by the server (shapely: exact on the untouched vertices, validated)
 * through editor.geometryOp when it answers, else in the browser (raster.js), so the brush works offline too.
 */
export async function computeStroke(editor, { geometry, points, radius, mode, scale }) {
  const { width, height } = editor.image;
  if (mode === "erase" && geometry && !bboxIntersects(geometryBBox(geometry), strokeBBox(points, radius))) return geometry;
  if (editor.geometryOp) {
    const pts = points.map((p) => roundPoint(p));
    const stroke = pts.length === 1 || pts.every((p) => p[0] === pts[0][0] && p[1] === pts[0][1])
      ? { type: "Point", coordinates: pts[0] }
      : { type: "LineString", coordinates: pts };
    try {
      const result = await editor.geometryOp(mode === "erase" ? "difference" : "union", {
        geometry, stroke, radius: Math.round(radius * 1000) / 1000, width, height,
      });
      return result ? roundGeometry(result) : null;
    } catch (err) {
      if (err && err.status === 401) throw err;
      // offline, or the server refused (too many vertices…): fall back to the browser
    }
  }
  return applyStroke({ geometry, points, radius, mode, width, height, scale });
}

export class BrushTool {
  constructor(editor, { erase }) {
    this.editor = editor;
    this.erase = erase;
    this.stroke = null;
  }

  get hidesHandles() {
    return true;
  }

  activate() {
    this.editor.setMode("brush-mode", true);
  }

  deactivate() {
    this.editor.setMode("brush-mode", false);
    this.editor.overlay.hideBrushCursor();
    this._clearCanvas();
    this.stroke = null;
  }

  radiusChanged() {
    const p = this.editor.lastPointer;
    if (p) this.editor.overlay.showBrushCursor(p.screen, this.editor.brushRadius, this.erase);
  }

  _target(ev) {
    const e = this.editor;
    let r = e.selected;
    if (!r && this.erase) {
      const id = e.regionIdAt(ev.target);
      r = id ? e.store.get(id) : null;
      if (r) e.select(id);
    }
    return r;
  }

  down(ev, p) {
    const e = this.editor;
    const target = this._target(ev);
    if (this.erase && !target) {
      e.notify("Nothing to erase here: select a region or start the stroke on one.", "warn");
      return;
    }
    if (target && e.isLocked(target.id)) {
      e.notify("The selected region is locked; unlock it in the region list.", "warn");
      return;
    }
    if (target && e.isHidden(target.id)) {
      e.notify("The selected region is hidden; show it first.", "warn");
      return;
    }
    this.stroke = {
      id: target ? target.id : null,
      points: [p.raw],
      radius: e.brushRadius / e.viewport.scale, // image pixels: the size the annotator sees
      scale: e.viewport.scale,
      color: e.taxonomy.color(target ? target.style : null),
    };
    e.emit("activity");
    this._paint();
  }

  move(ev, p) {
    const e = this.editor;
    e.overlay.showBrushCursor(p.screen, e.brushRadius, this.erase);
    if (!this.stroke) return;
    const last = this.stroke.points[this.stroke.points.length - 1];
    if (Math.hypot(p.raw[0] - last[0], p.raw[1] - last[1]) * e.viewport.scale < 1.5) return;
    this.stroke.points.push(p.raw);
    this._paint();
  }

  viewChanged() {
    if (this.stroke) this._paint();
  }

  _ctx() {
    const c = this.editor.brushCanvas;
    const ctx = c.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  _clearCanvas() {
    const c = this.editor.brushCanvas;
    const ctx = c.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
  }

  _paint() {
    const s = this.stroke;
    const vp = this.editor.viewport;
    this._clearCanvas();
    const ctx = this._ctx();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = 2 * s.radius * vp.scale;
    ctx.strokeStyle = this.erase ? "rgba(255,255,255,0.55)" : s.color;
    ctx.globalAlpha = this.erase ? 1 : 0.55;
    ctx.beginPath();
    const pts = s.points.map((q) => vp.toScreen(q));
    ctx.moveTo(pts[0][0], pts[0][1]);
    if (pts.length === 1) ctx.lineTo(pts[0][0] + 0.01, pts[0][1]);
    for (let i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
    ctx.stroke();
    if (this.erase) {
      ctx.globalAlpha = 1;
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "rgba(220,38,38,0.9)";
      ctx.setLineDash([4, 3]);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  async up() {
    const s = this.stroke;
    this.stroke = null;
    if (!s) return;
    const e = this.editor;
    const region = s.id ? e.store.get(s.id) : null;
    const before = region ? region.geometry : null;
    const mode = this.erase ? "erase" : "add";
    let geometry;
    this.pending = (this.pending || 0) + 1;
    try {
      geometry = await computeStroke(e, { geometry: before, points: s.points, radius: s.radius, mode, scale: s.scale });
    } finally {
      this.pending -= 1;
    }
    if (!this.stroke) this._clearCanvas();
    const now = s.id ? e.store.get(s.id) : null;
    if (s.id && (!now || now.geometry !== before)) {
      // the region changed while the server was answering: apply the stroke to what it is now, locally
      if (!now) return;
      geometry = applyStroke({ geometry: now.geometry, points: s.points, radius: s.radius, mode, width: e.image.width, height: e.image.height, scale: s.scale });
    }
    if (now) {
      if (geometry === now.geometry) return;
      if (!geometry) {
        e.store.remove(now.id);
        e.notify("The eraser removed the whole region (Ctrl+Z brings it back).", "info");
      } else e.store.update(now.id, { geometry });
    } else if (geometry && !s.id) {
      const created = e.store.create({ geometry, style: null, motifs: [], source: "human" });
      e.select(created.id);
    }
  }

  cancel() {
    this.stroke = null;
    this._clearCanvas();
  }

  key(ev) {
    if (ev.key === "Escape" && this.stroke) {
      this.cancel();
      return true;
    }
    return false;
  }
}
