import { test } from "node:test";
import assert from "node:assert/strict";
import * as G from "../../frontend/src/geometry.js";

const square = (x, y, s) => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];
const withHole = { type: "Polygon", coordinates: [G.closeRing(square(0, 0, 100)), G.closeRing(square(40, 40, 20))] };

test("close/open rings", () => {
  const ring = G.closeRing(square(0, 0, 1));
  assert.equal(ring.length, 5);
  assert.deepEqual(ring[0], ring[4]);
  assert.deepEqual(G.openRing(ring), square(0, 0, 1));
});

test("area counts holes", () => {
  assert.equal(G.geometryArea(withHole), 10000 - 400);
  const multi = { type: "MultiPolygon", coordinates: [withHole.coordinates, [G.closeRing(square(200, 0, 10))]] };
  assert.equal(G.geometryArea(multi), 10000 - 400 + 100);
});

test("point in polygon respects holes", () => {
  assert.ok(G.pointInGeometry([10, 10], withHole));
  assert.ok(!G.pointInGeometry([50, 50], withHole));
  assert.ok(!G.pointInGeometry([150, 50], withHole));
});

test("path data draws every ring", () => {
  const d = G.pathData(withHole);
  assert.equal((d.match(/M/g) || []).length, 2);
  assert.equal((d.match(/Z/g) || []).length, 2);
  assert.ok(d.startsWith("M0 0L100 0"));
});

test("move / insert / remove vertices keep rings closed", () => {
  let g = G.moveVertex(withHole, { poly: 0, ring: 0, index: 0 }, [-5, -5]);
  assert.deepEqual(g.coordinates[0][0], [-5, -5]);
  assert.deepEqual(g.coordinates[0][4], [-5, -5]);
  assert.deepEqual(withHole.coordinates[0][0], [0, 0], "the input is not mutated");
  g = G.insertVertex(g, { poly: 0, ring: 0, index: 0 }, [50, -10]);
  assert.deepEqual(G.openRing(g.coordinates[0])[1], [50, -10]);
  assert.equal(G.vertexCount(g), 5 + 4);
  const r = G.removeVertex(g, { poly: 0, ring: 0, index: 1 });
  assert.equal(r.removed, "vertex");
  assert.equal(G.vertexCount(r.geometry), 8);
});

test("removing from a triangle hole removes the hole; from a triangle part removes the part", () => {
  const tri = [[40, 40], [60, 40], [50, 60]];
  const g = G.addHole({ type: "Polygon", coordinates: [G.closeRing(square(0, 0, 100))] }, tri);
  assert.equal(g.coordinates.length, 2);
  const r = G.removeVertex(g, { poly: 0, ring: 1, index: 0 });
  assert.equal(r.removed, "hole");
  assert.equal(r.geometry.coordinates.length, 1);
  const t = G.polygonFromPoints(tri);
  const gone = G.removeVertex(t, { poly: 0, ring: 0, index: 0 });
  assert.equal(gone.removed, "part");
  assert.equal(gone.geometry, null);
});

test("holes go into the polygon that contains them; outside is refused", () => {
  const multi = G.addPart(G.polygonFromPoints(square(0, 0, 10)), square(100, 100, 50));
  assert.equal(multi.type, "MultiPolygon");
  const holed = G.addHole(multi, square(110, 110, 10));
  assert.equal(holed.coordinates[1].length, 2);
  assert.equal(holed.coordinates[0].length, 1);
  assert.equal(G.addHole(multi, square(300, 300, 5)), null);
});

test("nearest vertex and edge", () => {
  const v = G.nearestVertex(withHole, [41, 39], 5);
  assert.deepEqual([v.ring, v.index], [1, 0]);
  assert.equal(G.nearestVertex(withHole, [70, 70], 5), null);
  const e = G.nearestEdge(withHole, [50, 2], 5);
  assert.deepEqual([e.ring, e.index], [0, 0]);
  assert.deepEqual(e.point, [50, 0]);
});

test("self-intersection and ring problems", () => {
  assert.ok(G.ringSelfIntersects([[0, 0], [10, 10], [10, 0], [0, 10]]));
  assert.ok(!G.ringSelfIntersects(square(0, 0, 10)));
  assert.equal(G.ringProblem([[0, 0], [1, 1], [0, 0]]), "a ring needs at least 3 different points");
  assert.equal(G.ringProblem([[0, 0], [1, 1], [2, 2]]), "the ring has no area");
  assert.equal(G.ringProblem([[0, 0], [NaN, 1], [2, 2]]), "a coordinate is not a number");
  assert.equal(G.ringProblem(square(0, 0, 3)), null);
});

test("simplify keeps corners and drops collinear points", () => {
  const pts = [[0, 0], [5, 0], [10, 0], [10, 5], [10, 10], [5, 10], [0, 10], [0, 5]];
  assert.deepEqual(G.simplifyRing(pts, 0.1).length, 4);
});

test("rounding and clamping", () => {
  assert.deepEqual(G.roundPoint([1.23456, -0.0001]), [1.23, 0]);
  assert.deepEqual(G.clampPoint([-3, 5000], 100, 200), [0, 200]);
  const g = G.roundGeometry({ type: "Polygon", coordinates: [G.closeRing([[0.001, 0], [1.005, 0], [1, 1.111]])] });
  assert.deepEqual(g.coordinates[0][2], [1, 1.11]);
});
