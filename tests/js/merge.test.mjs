import { test } from "node:test";
import assert from "node:assert/strict";
import { diffDocuments, describeDiff, rebase, isEmptyDiff } from "../../frontend/src/merge.js";

const g = (x) => ({ type: "Polygon", coordinates: [[[x, 0], [x + 1, 0], [x, 1], [x, 0]]] });
const r = (id, x, style = null) => ({ id, geometry: g(x), style, motifs: [], source: "human" });
const doc = (regions, styles = [], flags = []) => ({ regions, tags: { styles, flags } });

test("diff names added, removed, changed regions and tags", () => {
  const d = diffDocuments(doc([r("a", 0), r("b", 0)]), doc([r("a", 5), r("c", 0)], ["tribal"]));
  assert.deepEqual(d.added, ["c"]);
  assert.deepEqual(d.removed, ["b"]);
  assert.deepEqual(d.changed, ["a"]);
  assert.deepEqual(d.tags.styles.added, ["tribal"]);
  assert.equal(describeDiff(d), "1 region added, 1 region changed, 1 region removed, image styles +tribal");
  assert.ok(isEmptyDiff(diffDocuments(doc([r("a", 0)]), doc([r("a", 0)]))));
});

test("rebase keeps both sides' independent edits", () => {
  const base = doc([r("a", 0), r("b", 0), r("c", 0)], [], ["bad_example"]);
  const mine = doc([r("a", 1), r("b", 0), r("m", 0)], ["tribal"], ["bad_example"]); // changed a, deleted c, added m
  const theirs = doc([r("a", 0), r("b", 2, "japanese"), r("c", 0), r("t", 0)], [], []); // changed b, added t, removed flag
  const { document, conflicts } = rebase(base, mine, theirs);
  const byId = Object.fromEntries(document.regions.map((x) => [x.id, x]));
  assert.deepEqual(Object.keys(byId).sort(), ["a", "b", "m", "t"]);
  assert.deepEqual(byId.a.geometry, g(1));
  assert.equal(byId.b.style, "japanese");
  assert.deepEqual(document.tags, { styles: ["tribal"], flags: [] });
  assert.deepEqual(conflicts, []);
});

test("rebase reports conflicts and keeps mine", () => {
  const base = doc([r("a", 0), r("b", 0), r("c", 0)]);
  const mine = doc([r("a", 1), r("b", 1)]); // changed a and b, deleted c
  const theirs = doc([r("a", 2), r("c", 2)]); // changed a and c, deleted b
  const { document, conflicts } = rebase(base, mine, theirs);
  const ids = document.regions.map((x) => x.id).sort();
  assert.deepEqual(ids, ["a", "b"]);
  assert.deepEqual(document.regions.find((x) => x.id === "a").geometry, g(1));
  const kinds = Object.fromEntries(conflicts.map((c) => [c.id, c.kind]));
  assert.deepEqual(kinds, { a: "both_changed", b: "changed_deleted", c: "deleted_changed" });
});

test("rebase of an unchanged draft is theirs", () => {
  const base = doc([r("a", 0)]);
  const theirs = doc([r("a", 3), r("z", 1)], ["tribal"]);
  assert.deepEqual(rebase(base, base, theirs).document, theirs);
});

test("turning a box into a mask is a change the merge sees", () => {
  const box = { ...r("a", 0), kind: "box" }, mask = { ...r("a", 0), kind: "mask" };
  assert.deepEqual(diffDocuments(doc([box]), doc([mask])).changed, ["a"]);
  const { document } = rebase(doc([box]), doc([mask]), doc([box, r("t", 3)]));
  assert.equal(document.regions.find((x) => x.id === "a").kind, "mask");
});
