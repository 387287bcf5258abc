import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, invertChangeSet, composeInto, emptyChangeSet } from "../../frontend/src/store.js";
import { UndoStack } from "../../frontend/src/undo.js";

const geom = (x) => ({ type: "Polygon", coordinates: [[[x, 0], [x + 10, 0], [x + 10, 10], [x, 0]]] });
const snapshot = (s) => JSON.stringify({ regions: s.all(), tags: s.tags });

function setup() {
  const store = new Store();
  const undo = new UndoStack(store);
  const events = [];
  store.subscribe((cs, origin) => events.push({ cs, origin }));
  return { store, undo, events };
}

test("load emits a reset and clears history", () => {
  const { store, undo, events } = setup();
  store.create({ id: "a", geometry: geom(0) });
  assert.ok(undo.canUndo);
  store.load({ regions: [{ id: "x", geometry: geom(5), style: "tribal" }], tags: { styles: ["tribal"], flags: [] } });
  assert.ok(!undo.canUndo);
  assert.equal(events.at(-1).cs.reset, true);
  assert.equal(store.get("x").style, "tribal");
  assert.deepEqual(store.get("x").motifs, []);
  assert.equal(store.get("x").source, "human");
});

test("each edit emits one change set with before/after", () => {
  const { store, events } = setup();
  store.create({ id: "a", geometry: geom(0) });
  store.update("a", { style: "japanese" });
  store.remove("a");
  store.setTags({ styles: [], flags: ["not_tattoo"] });
  assert.equal(events.length, 4);
  assert.equal(events[0].cs.created[0].region.id, "a");
  assert.equal(events[1].cs.updated[0].before.style, null);
  assert.equal(events[1].cs.updated[0].after.style, "japanese");
  assert.equal(events[2].cs.deleted[0].region.style, "japanese");
  assert.deepEqual(events[3].cs.tags.after.flags, ["not_tattoo"]);
});

test("a no-op update emits nothing", () => {
  const { store, events } = setup();
  store.create({ id: "a", geometry: geom(0), style: "tribal" });
  store.update("a", { style: "tribal" });
  store.setTags({ styles: [], flags: [] });
  assert.equal(events.length, 1);
});

test("undo and redo replay every kind of edit, back and forth", () => {
  const { store, undo } = setup();
  const states = [snapshot(store)];
  store.create({ id: "a", geometry: geom(0) }); states.push(snapshot(store));
  store.create({ id: "b", geometry: geom(20) }); states.push(snapshot(store));
  store.update("a", { geometry: geom(1), style: "tribal", motifs: ["rose"] }); states.push(snapshot(store));
  store.remove("a"); states.push(snapshot(store));
  store.setTags({ styles: ["tribal"], flags: ["bad_example"] }); states.push(snapshot(store));
  for (let round = 0; round < 3; round++) {
    for (let i = states.length - 2; i >= 0; i--) {
      undo.undo();
      assert.equal(snapshot(store), states[i], `undo to state ${i}`);
    }
    assert.ok(!undo.canUndo);
    for (let i = 1; i < states.length; i++) {
      undo.redo();
      assert.equal(snapshot(store), states[i], `redo to state ${i}`);
    }
    assert.ok(!undo.canRedo);
  }
});

test("undo restores a deleted region at its old position", () => {
  const { store, undo } = setup();
  for (const id of ["a", "b", "c"]) store.create({ id, geometry: geom(0) });
  store.transact(() => { store.remove("b"); store.remove("c"); store.remove("a"); });
  assert.equal(store.size, 0);
  undo.undo();
  assert.deepEqual(store.order, ["a", "b", "c"]);
});

test("a new edit after undo drops the redo branch", () => {
  const { store, undo } = setup();
  store.create({ id: "a", geometry: geom(0) });
  undo.undo();
  store.create({ id: "b", geometry: geom(0) });
  assert.ok(!undo.canRedo);
});

test("transactions are one undo step and compose create+update+delete", () => {
  const { store, undo, events } = setup();
  store.create({ id: "keep", geometry: geom(0) });
  store.transact(() => {
    store.create({ id: "s1", geometry: geom(0), suggested: true, confidence: 0.9 });
    store.update("s1", { suggested: false, style: "tribal" });
    store.create({ id: "tmp", geometry: geom(0) });
    store.remove("tmp");
    store.update("keep", { style: "japanese" });
    store.update("keep", { style: "fineline" });
  });
  const cs = events.at(-1).cs;
  assert.equal(cs.created.length, 1);
  assert.equal(cs.created[0].region.style, "tribal");
  assert.ok(!cs.created[0].region.suggested);
  assert.equal(cs.created[0].region.confidence, 0.9);
  assert.equal(cs.updated.length, 1);
  assert.equal(cs.updated[0].before.style, null);
  assert.equal(cs.updated[0].after.style, "fineline");
  assert.equal(cs.deleted.length, 0);
  undo.undo();
  assert.deepEqual(store.order, ["keep"]);
  assert.equal(store.get("keep").style, null);
});

test("suggested regions are not saved; accepting them is undoable", () => {
  const { store, undo } = setup();
  store.create({ id: "s", geometry: geom(0), suggested: true, source: "model", style: "tribal", confidence: 0.8 });
  assert.equal(store.toDocument().regions.length, 0);
  store.update("s", { suggested: false });
  const doc = store.toDocument();
  assert.deepEqual(Object.keys(doc.regions[0]).sort(), ["confidence", "geometry", "id", "kind", "motifs", "source", "style"]);
  assert.equal(doc.regions[0].source, "model");
  undo.undo();
  assert.equal(store.get("s").suggested, true);
  assert.equal(store.toDocument().regions.length, 0);
  store.create({ id: "plain", geometry: geom(5) });
  assert.deepEqual(Object.keys(store.toDocument().regions[0]).sort(), ["geometry", "id", "kind", "motifs", "source", "style"]);
});

test("invert is an involution; compose of a deleted-after-update keeps the original", () => {
  const cs = { ...emptyChangeSet(), updated: [{ before: { id: "a", v: 1 }, after: { id: "a", v: 2 } }], tags: { before: { styles: [], flags: [] }, after: { styles: ["x"], flags: [] } } };
  assert.deepEqual(invertChangeSet(invertChangeSet(cs)), cs);
  const acc = composeInto(emptyChangeSet(), cs);
  composeInto(acc, { ...emptyChangeSet(), deleted: [{ region: { id: "a", v: 2 }, index: 0 }] });
  assert.deepEqual(acc.deleted, [{ region: { id: "a", v: 1 }, index: 0 }]);
  assert.equal(acc.updated.length, 0);
});

test("the revision counter moves on every change", () => {
  const { store } = setup();
  const r0 = store.revision;
  store.create({ id: "a", geometry: geom(0) });
  assert.equal(store.revision, r0 + 1);
});

test("duplicate ids are refused", () => {
  const { store } = setup();
  store.create({ id: "a", geometry: geom(0) });
  assert.throws(() => store.create({ id: "a", geometry: geom(0) }));
});

test("editing a suggestion accepts it (one undo step restores the suggestion)", () => {
  const { store, undo } = setup();
  store.create({ id: "s", geometry: geom(0), suggested: true, source: "model", style: "tribal" });
  store.update("s", { style: "japanese" });
  assert.equal(store.get("s").suggested, undefined);
  assert.equal(store.toDocument().regions[0].style, "japanese");
  undo.undo();
  assert.equal(store.get("s").suggested, true);
  assert.equal(store.get("s").style, "tribal");
});

test("a box region keeps its kind through edits and into the saved document; other regions are masks", () => {
  const { store } = setup();
  store.load({ regions: [{ id: "b", kind: "box", geometry: geom(0) }, { id: "m", geometry: geom(20) }], tags: {} });
  store.update("b", { style: "tribal" });
  const saved = store.toDocument().regions;
  assert.deepEqual(saved.map((r) => [r.id, r.kind]), [["b", "box"], ["m", "mask"]]);
});
