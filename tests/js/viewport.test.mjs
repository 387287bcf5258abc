import { test } from "node:test";
import assert from "node:assert/strict";
import { Viewport, wheelFactor, MAX_SCALE } from "../../frontend/src/viewport.js";

function vp(w = 800, h = 600, iw = 4000, ih = 2000) {
  const v = new Viewport();
  v.setSize(w, h);
  v.setImage(iw, ih);
  v.fit(0);
  return v;
}

test("fit centres the whole image", () => {
  const v = vp();
  assert.equal(v.scale, 0.2);
  assert.deepEqual(v.toScreen([0, 0]), [0, 100]);
  assert.deepEqual(v.toScreen([4000, 2000]), [800, 500]);
});

test("image ↔ screen round trip", () => {
  const v = vp();
  v.zoomAt(3.7, 123, 456);
  v.panBy(-31, 17);
  for (const p of [[0, 0], [1234.5, 987.25], [4000, 2000]]) {
    const back = v.toImage(v.toScreen(p));
    assert.ok(Math.abs(back[0] - p[0]) < 1e-9 && Math.abs(back[1] - p[1]) < 1e-9);
  }
});

test("zoom keeps the point under the cursor fixed", () => {
  const v = vp();
  const before = v.toImage([300, 250]);
  v.zoomAt(2, 300, 250);
  assert.equal(v.scale, 0.4);
  const after = v.toImage([300, 250]);
  assert.ok(Math.abs(before[0] - after[0]) < 1e-9 && Math.abs(before[1] - after[1]) < 1e-9);
});

test("zoom is clamped", () => {
  const v = vp();
  v.zoomAt(1e9);
  assert.equal(v.scale, MAX_SCALE);
  v.zoomAt(1e-9);
  assert.equal(v.scale, v.minScale());
  assert.ok(v.scale > 0);
});

test("visible rect follows pan", () => {
  const v = vp();
  v.panBy(100, 0);
  const [x0] = v.visibleRect();
  assert.equal(x0, -500);
});

test("centreOn puts an image point in the middle", () => {
  const v = vp();
  v.centreOn(1000, 500);
  assert.deepEqual(v.toScreen([1000, 500]), [400, 300]);
});

test("wheel factor: down zooms out, up zooms in, symmetric", () => {
  assert.ok(wheelFactor(100) < 1);
  assert.ok(wheelFactor(-100) > 1);
  assert.ok(Math.abs(wheelFactor(100) * wheelFactor(-100) - 1) < 1e-12);
  assert.ok(wheelFactor(3, 1) < 1); // line mode
});

test("listeners are told about changes", () => {
  const v = vp();
  let calls = 0;
  const off = v.onChange(() => calls++);
  v.panBy(1, 1);
  v.zoomAt(2);
  off();
  v.fit();
  assert.equal(calls, 2);
});
