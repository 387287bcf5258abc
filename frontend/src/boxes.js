// Box regions (issue 21's contract): a region with kind "box" is a weak label whose geometry is a GeoJSON Polygon
// with the single ring [[x0,y0],[x1,y0],[x1,y1],[x0,y1],[x0,y0]] (x0 < x1, y0 < y1), in image pixels.

import { roundCoord } from "./geometry.js";

export function boxGeometry(x0, y0, x1, y1) {
  const [a, b, c, d] = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)].map((v) => roundCoord(v));
  return { type: "Polygon", coordinates: [[[a, b], [c, b], [c, d], [a, d], [a, b]]] };
}

/** [x0, y0, x1, y1] of a box region's geometry. */
export function boxCorners(geometry) {
  const ring = geometry.coordinates[0];
  const xs = ring.map((p) => p[0]), ys = ring.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** The box after dragging its corner `index` (0..3, ring order) to `pt`: the opposite corner stays put. */
export function dragBoxCorner(geometry, index, pt) {
  const ring = geometry.coordinates[0];
  const opposite = ring[(index + 2) % 4];
  return boxGeometry(opposite[0], opposite[1], pt[0], pt[1]);
}
