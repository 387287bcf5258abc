// Brush and eraser, computed in the browser: the region's affected polygons and the stroke (round caps and
// joins, exactly what the brush preview draws) are rasterised on a grid at screen resolution (at least one
// cell per image pixel, at most 4), combined, and traced back to polygons with marching squares (the 0.5 level
// at cell centres, so rings never touch themselves), then lightly simplified. Polygons of a MultiPolygon the
// stroke does not reach are kept exactly as they were. Pure code: runs in Node tests and in the browser.

import {
  bboxIntersects,
  closeRing,
  distToSegment,
  makeGeometry,
  openRing,
  pointInRing,
  polygonsOf,
  ringBBox,
  roundPoint,
  signedArea,
  simplifyRing,
  unionBBox,
} from "../geometry.js";

export const MAX_CELLS = 16_000_000;

export function strokeBBox(points, radius) {
  let box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of points) box = unionBBox(box, [x - radius, y - radius, x + radius, y + radius]);
  return box;
}

/**
 * Apply a brush ("add") or eraser ("erase") stroke to a geometry.
 *   geometry: Polygon | MultiPolygon | null (brush on nothing makes a new region)
 *   points:   stroke centre line in image pixels, radius in image pixels
 *   width, height: image size (results are clipped to it)
 *   scale:    screen pixels per image pixel (the grid follows what the annotator sees)
 * Returns the new geometry, or null when nothing is left.
 */
export function applyStroke({ geometry, points, radius, mode, width, height, scale = 1, maxCells = MAX_CELLS }) {
  if (!points.length || !(radius > 0)) return geometry;
  const polys = polygonsOf(geometry);
  const sbox = clipBox(strokeBBox(points, radius), width, height);
  if (sbox[2] <= sbox[0] || sbox[3] <= sbox[1]) return geometry; // stroke entirely outside the image
  const affected = [], untouched = [];
  for (const poly of polys) (bboxIntersects(ringBBox(poly[0]), sbox) ? affected : untouched).push(poly);
  if (mode === "erase" && !affected.length) return geometry;

  let box = sbox;
  for (const poly of affected) box = unionBBox(box, ringBBox(poly[0]));
  box = clipBox(box, width, height);
  const area = Math.max(1e-6, (box[2] - box[0]) * (box[3] - box[1]));
  let res = Math.min(4, Math.max(1, scale));
  if (area * res * res > maxCells) res = Math.sqrt(maxCells / area);

  const grid = makeGrid(box, res);
  fillPolygons(grid, affected);
  fillStroke(grid, points, radius, mode === "erase" ? 0 : 1);
  const traced = tracePolygons(grid);
  return makeGeometry(untouched.concat(traced));
}

function clipBox(b, width, height) {
  return [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(width, b[2]), Math.min(height, b[3])];
}

/** A grid of cells of size 1/res image pixels over `box`, with one empty cell of padding all round. */
export function makeGrid(box, res) {
  const cols = Math.ceil((box[2] - box[0]) * res) + 2;
  const rows = Math.ceil((box[3] - box[1]) * res) + 2;
  return {
    cols, rows, res, box,
    ox: box[0] - 1 / res, // image x of the grid's left edge (cell i has its centre at ox + (i + 0.5) / res)
    oy: box[1] - 1 / res,
    data: new Uint8Array(cols * rows),
  };
}

function inside(grid, i, j) {
  // cells whose centre lies outside the clipping box stay empty, so results never leave the image
  const x = grid.ox + (i + 0.5) / grid.res, y = grid.oy + (j + 0.5) / grid.res;
  return x >= grid.box[0] && x <= grid.box[2] && y >= grid.box[1] && y <= grid.box[3];
}

/** Even-odd scanline fill of polygons (outer rings and holes) at cell centres. */
export function fillPolygons(grid, polys) {
  const { cols, rows, res, ox, oy, data } = grid;
  const edges = [];
  for (const poly of polys) {
    for (const ring of poly) {
      const pts = openRing(ring);
      for (let k = 0; k < pts.length; k++) {
        const a = pts[k], b = pts[(k + 1) % pts.length];
        if (a[1] !== b[1]) edges.push(a[1] < b[1] ? [a[0], a[1], b[0], b[1]] : [b[0], b[1], a[0], a[1]]);
      }
    }
  }
  if (!edges.length) return;
  const xs = [];
  for (let j = 1; j < rows - 1; j++) {
    const y = oy + (j + 0.5) / res;
    xs.length = 0;
    for (const [x0, y0, x1, y1] of edges) {
      if (y >= y0 && y < y1) xs.push(x0 + ((y - y0) * (x1 - x0)) / (y1 - y0));
    }
    if (xs.length < 2) continue;
    xs.sort((p, q) => p - q);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // cells with centre in [xa, xb)
      const i0 = Math.max(1, Math.ceil((xs[k] - ox) * res - 0.5));
      const i1 = Math.min(cols - 2, Math.ceil((xs[k + 1] - ox) * res - 0.5) - 1);
      const row = j * cols;
      for (let i = i0; i <= i1; i++) if (inside(grid, i, j)) data[row + i] = 1;
    }
  }
}

/** Cells within `radius` of the polyline get `value` (1 brush, 0 eraser). */
export function fillStroke(grid, points, radius, value) {
  const { cols, rows, res, ox, oy, data } = grid;
  const segs = points.length === 1 ? [[points[0], points[0]]] : points.slice(1).map((p, k) => [points[k], p]);
  for (const [a, b] of segs) {
    const i0 = Math.max(1, Math.floor((Math.min(a[0], b[0]) - radius - ox) * res));
    const i1 = Math.min(cols - 2, Math.ceil((Math.max(a[0], b[0]) + radius - ox) * res));
    const j0 = Math.max(1, Math.floor((Math.min(a[1], b[1]) - radius - oy) * res));
    const j1 = Math.min(rows - 2, Math.ceil((Math.max(a[1], b[1]) + radius - oy) * res));
    for (let j = j0; j <= j1; j++) {
      const y = oy + (j + 0.5) / res;
      for (let i = i0; i <= i1; i++) {
        if (data[j * cols + i] === value) continue;
        const x = ox + (i + 0.5) / res;
        if (distToSegment([x, y], a, b).dist <= radius && (value === 0 || inside(grid, i, j))) data[j * cols + i] = value;
      }
    }
  }
}

/**
 * Marching squares at level 0.5 on cell centres. Each boundary crossing sits at the middle of the line
 * between two cell centres; in every square the crossing where the value goes 0→1 (walking its corners
 * clockwise) is joined to the next 1→0 crossing, which separates diagonal neighbours (4-connectivity) so
 * rings never touch. Returns rings in image coordinates, each an open point list.
 */
export function traceRings(grid) {
  const { cols, rows, data } = grid;
  const next = new Map();
  const H = (i, j) => 2 * (j * cols + i); // crossing between centres (i,j) and (i+1,j)
  const V = (i, j) => 2 * (j * cols + i) + 1; // between (i,j) and (i,j+1)
  const c = [0, 0, 0, 0];
  const e = [0, 0, 0, 0];
  for (let j = 0; j < rows - 1; j++) {
    for (let i = 0; i < cols - 1; i++) {
      c[0] = data[j * cols + i];
      c[1] = data[j * cols + i + 1];
      c[2] = data[(j + 1) * cols + i + 1];
      c[3] = data[(j + 1) * cols + i];
      const sum = c[0] + c[1] + c[2] + c[3];
      if (sum === 0 || sum === 4) continue;
      e[0] = H(i, j); // top: TL→TR
      e[1] = V(i + 1, j); // right: TR→BR
      e[2] = H(i, j + 1); // bottom: BR→BL
      e[3] = V(i, j); // left: BL→TL
      for (let k = 0; k < 4; k++) {
        if (c[k] === 0 && c[(k + 1) % 4] === 1) {
          // A crossing on edge k: find the next 1→0 crossing clockwise
          for (let m = 1; m <= 4; m++) {
            const q = (k + m) % 4;
            if (c[q] === 1 && c[(q + 1) % 4] === 0) {
              next.set(e[k], e[q]);
              break;
            }
          }
        }
      }
    }
  }
  const rings = [];
  const seen = new Set();
  for (const start of next.keys()) {
    if (seen.has(start)) continue;
    const ring = [];
    let id = start;
    while (id !== undefined && !seen.has(id)) {
      seen.add(id);
      ring.push(crossingPoint(grid, id));
      id = next.get(id);
    }
    if (ring.length >= 3) rings.push(ring);
  }
  return rings;
}

function crossingPoint(grid, id) {
  const cell = id >> 1;
  const i = cell % grid.cols, j = (cell - i) / grid.cols;
  const gx = id & 1 ? i : i + 0.5; // in cell-centre units
  const gy = id & 1 ? j + 0.5 : j;
  return [grid.ox + (gx + 0.5) / grid.res, grid.oy + (gy + 0.5) / grid.res];
}

/** Traced rings → polygons: outer rings and the holes inside them, simplified and rounded. */
export function tracePolygons(grid) {
  const tolerance = 0.6 / grid.res;
  const minArea = 1 / (grid.res * grid.res);
  const outers = [], holes = [];
  for (const raw of traceRings(grid)) {
    const area = signedArea(raw);
    if (Math.abs(area) < minArea) continue;
    let ring = simplifyRing(raw, tolerance).map((p) => roundPoint(p));
    ring = dedupe(ring);
    if (ring.length < 3) continue;
    // outer rings run counter-clockwise on screen (negative shoelace area with y down), holes clockwise
    (area < 0 ? outers : holes).push({ ring, area: Math.abs(area) });
  }
  outers.sort((a, b) => a.area - b.area);
  const polys = outers.map((o) => ({ outer: o, holes: [] }));
  for (const h of holes) {
    const probe = h.ring[0];
    const owner = polys.find((p) => p.outer.area > h.area && pointInRing(probe, p.outer.ring));
    if (owner) owner.holes.push(h.ring);
  }
  return polys.map((p) => [closeRing(p.outer.ring), ...p.holes.map((r) => closeRing(r))]);
}

function dedupe(ring) {
  const out = [];
  for (const p of ring) {
    const last = out[out.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) out.push(p);
  }
  while (out.length > 1 && out[0][0] === out[out.length - 1][0] && out[0][1] === out[out.length - 1][1]) out.pop();
  return out;
}
