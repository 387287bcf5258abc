import { test } from "node:test";
import assert from "node:assert/strict";
import { applyStroke, makeGrid, fillPolygons, tracePolygons } from "../../frontend/src/editor/raster.js";
import * as G from "../../frontend/src/geometry.js";

const square = (x, y, s) => G.polygonFromPoints([[x, y], [x + s, y], [x + s, y + s], [x, y + s]]);
const near = (a, b, tol) => Math.abs(a - b) <= tol;

function assertValidish(geom) {
  for (const poly of G.polygonsOf(geom)) {
    for (const ring of poly) {
      const pts = G.openRing(ring);
      assert.equal(G.ringProblem(pts), null, "ring is a simple polygon");
      assert.deepEqual(ring[0], ring[ring.length - 1], "ring is closed");
    }
    for (const hole of poly.slice(1)) assert.ok(G.openRing(hole).every((p) => G.pointInRing(p, poly[0])), "hole inside outer");
  }
}

test("rasterise + trace a square gives the square back", () => {
  const grid = makeGrid([10, 10, 50, 50], 1);
  fillPolygons(grid, G.polygonsOf(square(10, 10, 40)));
  const polys = tracePolygons(grid);
  assert.equal(polys.length, 1);
  const geom = G.makeGeometry(polys);
  assert.ok(near(G.geometryArea(geom), 1600, 60), `area ${G.geometryArea(geom)}`);
  const box = G.geometryBBox(geom);
  for (const [a, b] of box.map((v, i) => [v, [10, 10, 50, 50][i]])) assert.ok(near(a, b, 0.51));
});

test("brush on nothing makes a disc of the right area", () => {
  const geom = applyStroke({ geometry: null, points: [[100, 100]], radius: 20, mode: "add", width: 500, height: 500, scale: 2 });
  assert.equal(geom.type, "Polygon");
  assertValidish(geom);
  assert.ok(near(G.geometryArea(geom), Math.PI * 400, Math.PI * 400 * 0.03), `area ${G.geometryArea(geom)}`);
});

test("brush stroke adds a capsule to a square; eraser cuts a hole", () => {
  const base = square(100, 100, 100);
  const added = applyStroke({ geometry: base, points: [[150, 150], [260, 150]], radius: 10, mode: "add", width: 400, height: 400 });
  assert.equal(added.type, "Polygon");
  assertValidish(added);
  const expected = 10000 + 60 * 20 + (Math.PI * 100) / 2;
  assert.ok(near(G.geometryArea(added), expected, expected * 0.02), `area ${G.geometryArea(added)} vs ${expected}`);
  const holed = applyStroke({ geometry: base, points: [[150, 150]], radius: 15, mode: "erase", width: 400, height: 400 });
  assert.equal(holed.coordinates.length, 2, "outer ring plus a hole");
  assertValidish(holed);
  assert.ok(!G.pointInGeometry([150, 150], holed));
  assert.ok(G.pointInGeometry([110, 110], holed));
});

test("eraser across a region splits it into a MultiPolygon; erasing everything leaves null", () => {
  const base = square(0, 0, 100);
  const split = applyStroke({ geometry: base, points: [[50, -20], [50, 120]], radius: 5, mode: "erase", width: 200, height: 200 });
  assert.equal(split.type, "MultiPolygon");
  assert.equal(split.coordinates.length, 2);
  assertValidish(split);
  const gone = applyStroke({ geometry: base, points: [[0, 50], [100, 50]], radius: 80, mode: "erase", width: 200, height: 200 });
  assert.equal(gone, null);
});

test("parts the stroke does not reach are kept exactly", () => {
  const multi = G.addPart(square(0, 0, 50).coordinates[0].slice(0, 4) && square(0, 0, 50), [[300, 300], [340, 300], [340, 340], [300, 340]]);
  const out = applyStroke({ geometry: multi, points: [[25, 25]], radius: 10, mode: "erase", width: 500, height: 500 });
  const far = out.coordinates.find((p) => G.ringBBox(p[0])[0] >= 299);
  assert.deepEqual(far, multi.coordinates[1]);
});

test("results stay inside the image", () => {
  const geom = applyStroke({ geometry: null, points: [[2, 2], [50, 2]], radius: 10, mode: "add", width: 100, height: 100 });
  const [x0, y0, x1, y1] = G.geometryBBox(geom);
  assert.ok(x0 >= 0 && y0 >= 0 && x1 <= 100 && y1 <= 100, JSON.stringify([x0, y0, x1, y1]));
});

test("an eraser stroke outside every part changes nothing", () => {
  const base = square(0, 0, 10);
  assert.equal(applyStroke({ geometry: base, points: [[90, 90]], radius: 3, mode: "erase", width: 100, height: 100 }), base);
});
