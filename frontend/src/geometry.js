// GeoJSON Polygon / MultiPolygon helpers in image pixel coordinates (x right, y down).
// Rings are stored closed (first point repeated at the end) as GeoJSON requires; vertex addresses
// {poly, ring, index} count the open ring (the closing duplicate is not a vertex of its own).
// Every edit returns a new geometry object: documents in the store are never mutated in place.

export const COORD_DECIMALS = 2;

export function roundCoord(value, decimals = COORD_DECIMALS) {
  const f = 10 ** decimals;
  const r = Math.round(value * f) / f;
  return Object.is(r, -0) ? 0 : r;
}

export function roundPoint(p, decimals = COORD_DECIMALS) {
  return [roundCoord(p[0], decimals), roundCoord(p[1], decimals)];
}

export function clampPoint(p, width, height) {
  return [Math.min(width, Math.max(0, p[0])), Math.min(height, Math.max(0, p[1]))];
}

export function samePoint(a, b) {
  return a[0] === b[0] && a[1] === b[1];
}

/** Open point list → closed GeoJSON ring. */
export function closeRing(points) {
  const pts = points.map((p) => [p[0], p[1]]);
  if (pts.length && !samePoint(pts[0], pts[pts.length - 1])) pts.push([pts[0][0], pts[0][1]]);
  return pts;
}

/** Closed GeoJSON ring → open point list. */
export function openRing(ring) {
  if (ring.length > 1 && samePoint(ring[0], ring[ring.length - 1])) return ring.slice(0, -1);
  return ring.slice();
}

/** The polygons of a geometry: an array of polygons, each an array of closed rings (outer first). */
export function polygonsOf(geom) {
  if (!geom) return [];
  if (geom.type === "Polygon") return [geom.coordinates];
  if (geom.type === "MultiPolygon") return geom.coordinates;
  return [];
}

/** Polygons → Polygon (one), MultiPolygon (several) or null (none). */
export function makeGeometry(polys) {
  const kept = polys.filter((p) => p.length && p[0].length >= 4);
  if (kept.length === 0) return null;
  if (kept.length === 1) return { type: "Polygon", coordinates: kept[0] };
  return { type: "MultiPolygon", coordinates: kept };
}

export function polygonFromPoints(points) {
  return { type: "Polygon", coordinates: [closeRing(points)] };
}

/** Shoelace area of a ring (open or closed); the sign gives the orientation. */
export function signedArea(ring) {
  let sum = 0;
  const n = ring.length;
  for (let i = 0; i < n; i++) {
    const [x1, y1] = ring[i];
    const [x2, y2] = ring[(i + 1) % n];
    sum += x1 * y2 - x2 * y1;
  }
  return sum / 2;
}

export function geometryArea(geom) {
  let total = 0;
  for (const poly of polygonsOf(geom)) {
    poly.forEach((ring, i) => {
      const a = Math.abs(signedArea(ring));
      total += i === 0 ? a : -a;
    });
  }
  return total;
}

/** Even-odd point-in-ring test (ray casting). */
export function pointInRing(pt, ring) {
  const [x, y] = pt;
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function pointInPolygon(pt, polygon) {
  if (!polygon.length || !pointInRing(pt, polygon[0])) return false;
  for (let i = 1; i < polygon.length; i++) if (pointInRing(pt, polygon[i])) return false;
  return true;
}

export function pointInGeometry(pt, geom) {
  return polygonsOf(geom).some((poly) => pointInPolygon(pt, poly));
}

export function ringBBox(ring) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of ring) {
    if (x < x0) x0 = x;
    if (y < y0) y0 = y;
    if (x > x1) x1 = x;
    if (y > y1) y1 = y;
  }
  return [x0, y0, x1, y1];
}

export function geometryBBox(geom) {
  let box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const poly of polygonsOf(geom)) box = unionBBox(box, ringBBox(poly[0]));
  return box;
}

export function unionBBox(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

export function bboxIntersects(a, b) {
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

export function vertexCount(geom) {
  let n = 0;
  for (const poly of polygonsOf(geom)) for (const ring of poly) n += openRing(ring).length;
  return n;
}

function fmt(v) {
  return String(Math.round(v * 100) / 100);
}

/** SVG path data of every ring (use fill-rule evenodd so holes render as holes). */
export function pathData(geom) {
  const parts = [];
  for (const poly of polygonsOf(geom)) {
    for (const ring of poly) {
      const pts = openRing(ring);
      if (!pts.length) continue;
      let d = "M" + fmt(pts[0][0]) + " " + fmt(pts[0][1]);
      for (let i = 1; i < pts.length; i++) d += "L" + fmt(pts[i][0]) + " " + fmt(pts[i][1]);
      parts.push(d + "Z");
    }
  }
  return parts.join("");
}

function cloneRings(geom) {
  return polygonsOf(geom).map((poly) => poly.map((ring) => openRing(ring)));
}

function rebuild(polys) {
  return makeGeometry(polys.map((poly) => poly.map((pts) => closeRing(pts))));
}

export function getVertex(geom, addr) {
  const poly = polygonsOf(geom)[addr.poly];
  if (!poly || !poly[addr.ring]) return null;
  const pts = openRing(poly[addr.ring]);
  return pts[addr.index] || null;
}

export function ringPoints(geom, poly, ring) {
  const p = polygonsOf(geom)[poly];
  return p && p[ring] ? openRing(p[ring]) : [];
}

export function moveVertex(geom, addr, pt) {
  const polys = cloneRings(geom);
  polys[addr.poly][addr.ring][addr.index] = [pt[0], pt[1]];
  return rebuild(polys);
}

/** Insert `pt` after vertex `addr.index` of the ring. */
export function insertVertex(geom, addr, pt) {
  const polys = cloneRings(geom);
  polys[addr.poly][addr.ring].splice(addr.index + 1, 0, [pt[0], pt[1]]);
  return rebuild(polys);
}

/**
 * Remove one vertex. A ring left with fewer than 3 vertices goes: a hole disappears; an outer ring takes its
 * polygon with it. Returns {geometry, removed: "vertex" | "hole" | "part"}; geometry is null when nothing is left.
 */
export function removeVertex(geom, addr) {
  const polys = cloneRings(geom);
  const ring = polys[addr.poly][addr.ring];
  if (ring.length > 3) {
    ring.splice(addr.index, 1);
    return { geometry: rebuild(polys), removed: "vertex" };
  }
  if (addr.ring > 0) {
    polys[addr.poly].splice(addr.ring, 1);
    return { geometry: rebuild(polys), removed: "hole" };
  }
  polys.splice(addr.poly, 1);
  return { geometry: rebuild(polys), removed: "part" };
}

/** Add a hole (open point list) to the polygon of `geom` that contains it; null if no polygon contains it. */
export function addHole(geom, points) {
  const polys = cloneRings(geom);
  const source = polygonsOf(geom);
  for (let i = 0; i < polys.length; i++) {
    if (points.every((p) => pointInRing(p, source[i][0]))) {
      polys[i].push(points.map((p) => [p[0], p[1]]));
      return rebuild(polys);
    }
  }
  return null;
}

/** Add another polygon (outer ring) to the geometry: Polygon → MultiPolygon. */
export function addPart(geom, points) {
  const polys = cloneRings(geom);
  polys.push([points.map((p) => [p[0], p[1]])]);
  return rebuild(polys);
}

export function distToSegment(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  let t = len2 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  const q = [a[0] + t * dx, a[1] + t * dy];
  return { dist: Math.hypot(p[0] - q[0], p[1] - q[1]), t, point: q };
}

/** The vertex nearest to `pt` within `maxDist` (image pixels), or null. */
export function nearestVertex(geom, pt, maxDist) {
  let best = null;
  polygonsOf(geom).forEach((poly, pi) =>
    poly.forEach((ring, ri) =>
      openRing(ring).forEach((v, vi) => {
        const d = Math.hypot(v[0] - pt[0], v[1] - pt[1]);
        if (d <= maxDist && (!best || d < best.dist)) best = { poly: pi, ring: ri, index: vi, dist: d };
      }),
    ),
  );
  return best;
}

/** The edge nearest to `pt` within `maxDist`: {poly, ring, index (edge start), point (projection), dist}. */
export function nearestEdge(geom, pt, maxDist) {
  let best = null;
  polygonsOf(geom).forEach((poly, pi) =>
    poly.forEach((ring, ri) => {
      const pts = openRing(ring);
      for (let i = 0; i < pts.length; i++) {
        const hit = distToSegment(pt, pts[i], pts[(i + 1) % pts.length]);
        if (hit.dist <= maxDist && (!best || hit.dist < best.dist)) {
          best = { poly: pi, ring: ri, index: i, point: hit.point, dist: hit.dist };
        }
      }
    }),
  );
  return best;
}

function orient(a, b, c) {
  const v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

function onSegment(a, b, p) {
  return Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);
}

export function segmentsIntersect(a, b, c, d) {
  const o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b);
  if (o1 !== o2 && o3 !== o4) return true;
  if (o1 === 0 && onSegment(a, b, c)) return true;
  if (o2 === 0 && onSegment(a, b, d)) return true;
  if (o3 === 0 && onSegment(c, d, a)) return true;
  if (o4 === 0 && onSegment(c, d, b)) return true;
  return false;
}

/** Whether a ring (open point list) crosses or touches itself, apart from neighbouring edges sharing a vertex. */
export function ringSelfIntersects(points) {
  const n = points.length;
  if (n < 4) return false;
  for (let i = 0; i < n; i++) {
    const a = points[i], b = points[(i + 1) % n];
    for (let j = i + 1; j < n; j++) {
      if (j === i || (j + 1) % n === i || j === (i + 1) % n) continue;
      if (segmentsIntersect(a, b, points[j], points[(j + 1) % n])) return true;
    }
  }
  return false;
}

/** Fewer than 3 distinct points, or a non-finite coordinate. */
export function ringProblem(points) {
  if (points.some((p) => !Number.isFinite(p[0]) || !Number.isFinite(p[1]))) return "a coordinate is not a number";
  const distinct = new Set(points.map((p) => p[0] + "," + p[1]));
  if (distinct.size < 3) return "a ring needs at least 3 different points";
  if (Math.abs(signedArea(points)) < 1e-9) return "the ring has no area";
  if (points.length <= 2000 && ringSelfIntersects(points)) return "the edges cross each other";
  return null;
}

/** Douglas–Peucker on an open ring; keeps at least 3 points. */
export function simplifyRing(points, tolerance) {
  if (points.length <= 4 || tolerance <= 0) return points.slice();
  // Split the closed ring at the vertex farthest from the first one, simplify both halves as open lines.
  let far = 0, farD = -1;
  for (let i = 1; i < points.length; i++) {
    const d = Math.hypot(points[i][0] - points[0][0], points[i][1] - points[0][1]);
    if (d > farD) { farD = d; far = i; }
  }
  const a = simplifyLine(points.slice(0, far + 1), tolerance);
  const b = simplifyLine(points.slice(far).concat([points[0]]), tolerance);
  const out = a.concat(b.slice(1, -1));
  return out.length >= 3 ? out : points.slice();
}

export function simplifyLine(points, tolerance) {
  const n = points.length;
  if (n <= 2) return points.slice();
  const keep = new Uint8Array(n);
  keep[0] = keep[n - 1] = 1;
  const stack = [[0, n - 1]];
  while (stack.length) {
    const [s, e] = stack.pop();
    let idx = -1, maxD = tolerance;
    for (let i = s + 1; i < e; i++) {
      const d = distToSegment(points[i], points[s], points[e]).dist;
      if (d > maxD) { maxD = d; idx = i; }
    }
    if (idx >= 0) {
      keep[idx] = 1;
      stack.push([s, idx], [idx, e]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

/** Canonical JSON of a geometry, for equality checks. */
export function geometryKey(geom) {
  return JSON.stringify(geom);
}

/** Round every coordinate (what the editor sends and stores). */
export function roundGeometry(geom, decimals = COORD_DECIMALS) {
  if (!geom) return geom;
  const polys = polygonsOf(geom).map((poly) => poly.map((ring) => ring.map((p) => roundPoint(p, decimals))));
  return makeGeometry(polys);
}
