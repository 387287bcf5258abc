import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../../frontend/src/store.js";
import { UndoStack } from "../../frontend/src/undo.js";
import { Autosave, ActivityClock } from "../../frontend/src/autosave.js";
import { ApiError } from "../../frontend/src/api.js";

const g = (x) => ({ type: "Polygon", coordinates: [[[x, 0], [x + 10, 0], [x, 10], [x, 0]]] });

class FakeServer {
  constructor() {
    this.doc = { version: 0, regions: [], tags: { styles: [], flags: [] } };
    this.mode = "ok"; // ok | offline | error500 | 422
    this.puts = [];
  }
  async put(path, body) {
    this.puts.push(JSON.parse(JSON.stringify(body)));
    if (this.mode === "offline") throw new ApiError(0, "offline", "offline");
    if (this.mode === "error500") throw new ApiError(503, "unavailable", "down");
    if (this.mode === "422") throw new ApiError(422, "invalid_geometry", "region 0: bad", { region: 0 });
    if (body.base_version !== this.doc.version) {
      throw new ApiError(409, "stale_version", "stale", { current: JSON.parse(JSON.stringify(this.doc)) });
    }
    this.doc = { version: this.doc.version + 1, regions: body.regions, tags: body.tags };
    return JSON.parse(JSON.stringify(this.doc));
  }
  /** Someone else saves. */
  otherSave(regions, tags = this.doc.tags) {
    this.doc = { version: this.doc.version + 1, regions, tags };
  }
}

class FakeTimers {
  constructor() { this.queue = new Map(); this.n = 0; }
  set = (fn, ms) => { const id = ++this.n; this.queue.set(id, { fn, ms }); return id; };
  clear = (id) => { this.queue.delete(id); };
  async runAll() {
    for (let i = 0; i < 20 && this.queue.size; i++) {
      const [[id, { fn }]] = this.queue;
      this.queue.delete(id);
      await fn();
      await new Promise((r) => setImmediate(r));
    }
  }
  delays() { return [...this.queue.values()].map((t) => t.ms); }
}

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
  removeItem(k) { this.items.delete(k); }
}

function setup(server = new FakeServer(), storage = new MemoryStorage()) {
  const store = new Store();
  const undo = new UndoStack(store);
  const timers = new FakeTimers();
  const saver = new Autosave({ api: server, imageId: 7, store, storage, timers, delay: 500, draftDelay: 0 });
  store.load(server.doc);
  saver.start(server.doc);
  const statuses = [];
  saver.onStatus((s) => statuses.push(s.status));
  return { server, store, undo, timers, saver, storage, statuses };
}

test("an edit is saved after the delay; the draft is cleared once saved", async () => {
  const { server, store, timers, saver, storage, statuses } = setup();
  store.create({ id: "a", geometry: g(0) });
  assert.equal(saver.status, "unsaved");
  assert.ok(storage.getItem("inklabel.draft.7"), "draft written at once");
  assert.deepEqual(timers.delays(), [500]);
  await timers.runAll();
  assert.equal(server.doc.version, 1);
  assert.equal(server.doc.regions[0].id, "a");
  assert.equal(server.puts[0].base_version, 0);
  assert.equal(saver.status, "saved");
  assert.equal(storage.getItem("inklabel.draft.7"), null);
  assert.deepEqual(statuses.slice(-2), ["saving", "saved"]);
});

test("undo back to the saved state saves nothing new", async () => {
  const { server, store, undo, timers, saver } = setup();
  store.create({ id: "a", geometry: g(0) });
  undo.undo();
  await timers.runAll();
  assert.equal(server.puts.length, 0);
  assert.equal(saver.status, "saved");
});

test("offline: status offline, backoff retries, nothing lost, then recovers", async () => {
  const { server, store, timers, saver, storage } = setup();
  server.mode = "offline";
  store.create({ id: "a", geometry: g(0) });
  const [[id, { fn }]] = timers.queue; // the first attempt
  timers.queue.delete(id);
  await fn();
  assert.equal(saver.status, "offline");
  assert.ok(JSON.parse(storage.getItem("inklabel.draft.7")).document.regions.length === 1);
  store.create({ id: "b", geometry: g(20) }); // edits while offline still go to the draft
  assert.equal(JSON.parse(storage.getItem("inklabel.draft.7")).document.regions.length, 2);
  server.mode = "ok";
  await saver.retry();
  assert.equal(saver.status, "saved");
  assert.deepEqual(server.doc.regions.map((r) => r.id), ["a", "b"]);
  assert.equal(storage.getItem("inklabel.draft.7"), null);
});

test("retry delays back off up to 30 s", async () => {
  const { server, store, timers, saver } = setup();
  server.mode = "error500";
  store.create({ id: "a", geometry: g(0) });
  const seen = [];
  for (let i = 0; i < 8; i++) {
    const [[id, { fn }]] = timers.queue;
    timers.queue.delete(id);
    await fn();
    seen.push(...timers.delays());
  }
  assert.deepEqual(seen, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(saver.status, "error");
});

test("time spent is reported and given back when a save fails", async () => {
  let t = 0;
  const clock = new ActivityClock({ now: () => t, idleMs: 1000 });
  clock.touch(); t = 500; clock.touch(); t = 5000; clock.touch(); t = 5200; clock.touch();
  assert.equal(clock.take(), 700); // the 4.5 s gap is idle
  clock.giveBack(300);
  assert.equal(clock.take(), 300);
});

test("409: keep mine re-bases my edits onto theirs and saves", async () => {
  const { server, store, timers, saver } = setup();
  store.create({ id: "a", geometry: g(0) });
  await timers.runAll();
  server.otherSave([...server.doc.regions, { id: "t", geometry: g(50), style: "tribal", motifs: [], source: "human" }], { styles: [], flags: ["bad_example"] });
  store.update("a", { style: "japanese" });
  await timers.runAll();
  assert.equal(saver.status, "conflict");
  const summary = saver.conflictSummary();
  assert.deepEqual(summary.theirs.added, ["t"]);
  assert.deepEqual(summary.mine.changed, ["a"]);
  saver.resolveConflict("mine");
  await timers.runAll();
  await saver.flush();
  assert.equal(saver.status, "saved");
  assert.equal(server.doc.version, 3);
  const byId = Object.fromEntries(server.doc.regions.map((r) => [r.id, r]));
  assert.equal(byId.a.style, "japanese");
  assert.equal(byId.t.style, "tribal");
  assert.deepEqual(server.doc.tags.flags, ["bad_example"]);
  assert.equal(store.get("t").style, "tribal");
});

test("409: take theirs replaces the document, undoably, and saves nothing", async () => {
  const { server, store, undo, timers, saver } = setup();
  store.create({ id: "a", geometry: g(0) });
  await timers.runAll();
  server.otherSave([]);
  store.update("a", { style: "japanese" });
  await timers.runAll();
  assert.equal(saver.status, "conflict");
  const puts = server.puts.length;
  saver.resolveConflict("theirs");
  await timers.runAll();
  assert.equal(store.size, 0);
  assert.equal(saver.status, "saved");
  assert.equal(server.puts.length, puts);
  undo.undo(); // my region comes back, and is saved again on top of their version
  assert.equal(store.get("a").style, "japanese");
  await timers.runAll();
  assert.equal(server.doc.regions[0].style, "japanese");
});

test("a draft from an earlier visit is found and restored, re-based if the server moved on", async () => {
  const storage = new MemoryStorage();
  const server = new FakeServer();
  const first = setup(server, storage);
  server.mode = "offline";
  first.store.create({ id: "mine", geometry: g(0) });
  first.saver.dispose(); // the tab is closed while offline
  server.mode = "ok";
  server.otherSave([{ id: "other", geometry: g(30), style: null, motifs: [], source: "human" }]);
  const second = setup(server, storage);
  const draft = second.saver.findDraft(server.doc);
  assert.ok(draft);
  second.saver.restoreDraft(draft, server.doc);
  assert.deepEqual(second.store.order.sort(), ["mine", "other"]);
  await second.timers.runAll();
  assert.equal(server.doc.regions.length, 2);
  assert.equal(second.saver.findDraft(server.doc), null);
});

test("422 keeps the draft and reports the error without retry loops", async () => {
  const { server, store, timers, saver, storage } = setup();
  server.mode = "422";
  store.create({ id: "a", geometry: g(0) });
  await timers.runAll();
  assert.equal(saver.status, "error");
  assert.equal(saver.lastError.details.region, 0);
  assert.equal(timers.queue.size, 0);
  assert.ok(storage.getItem("inklabel.draft.7"));
});

test("edits made while a save is in flight are saved next", async () => {
  const { server, store, timers, saver } = setup();
  store.create({ id: "a", geometry: g(0) });
  const p = saver.save();
  store.create({ id: "b", geometry: g(20) });
  await p;
  await timers.runAll();
  assert.equal(saver.status, "saved");
  assert.deepEqual(server.doc.regions.map((r) => r.id), ["a", "b"]);
});

test("the server's repaired geometry is shown without an undo entry", async () => {
  const server = new FakeServer();
  const origPut = server.put.bind(server);
  server.put = async (path, body) => {
    const resp = await origPut(path, body);
    resp.regions[0].geometry = g(1); // clipped by the server
    server.doc = JSON.parse(JSON.stringify(resp));
    return resp;
  };
  const { store, undo, timers, saver } = setup(server);
  store.create({ id: "a", geometry: g(0) });
  await timers.runAll();
  assert.deepEqual(store.get("a").geometry, g(1));
  assert.equal(saver.status, "saved");
  assert.equal(undo.done.length, 1);
});

test("model suggestions alone leave the status saved; the local copy is written once per burst", async () => {
  const server = new FakeServer();
  const storage = new MemoryStorage();
  let writes = 0;
  const setItem = storage.setItem.bind(storage);
  storage.setItem = (k, v) => { writes++; setItem(k, v); };
  const store = new Store();
  const timers = new FakeTimers();
  const saver = new Autosave({ api: server, imageId: 9, store, storage, timers, delay: 500, draftDelay: 250 });
  store.load(server.doc);
  saver.start(server.doc);
  store.create({ id: "s", geometry: g(0), suggested: true });
  assert.equal(saver.status, "saved");
  assert.equal(timers.queue.size, 0);
  for (let i = 0; i < 5; i++) store.create({ id: "r" + i, geometry: g(i) });
  assert.equal(writes, 0);
  assert.deepEqual(timers.delays().sort((a, b) => a - b), [250, 500]);
  const [[id, { fn }]] = [...timers.queue].filter(([, t]) => t.ms === 250);
  timers.queue.delete(id);
  fn();
  assert.equal(writes, 1);
  assert.equal(JSON.parse(storage.getItem("inklabel.draft.9")).document.regions.length, 5);
});
