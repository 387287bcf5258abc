// Issue 19: the pure parts of the editor's new structure — view state, tool registry, access rules, submit
// checks, the queue's reason in plain words, box geometry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ViewState } from "../../frontend/src/viewstate.js";
import { TOOL_REGISTRY, toolForKey, toolSheetRows } from "../../frontend/src/editor/tools/registry.js";
import { editAccess, heldByOther } from "../../frontend/src/access.js";
import { submitProblems } from "../../frontend/src/panels/submitchecks.js";
import { plainReason } from "../../frontend/src/queuereason.js";
import { boxGeometry, dragBoxCorner, boxCorners } from "../../frontend/src/boxes.js";
import { Store } from "../../frontend/src/store.js";
import { Taxonomy } from "../../frontend/src/taxonomy.js";

test("view state: selection, hidden by id/style/all, locks, read-only, observers", () => {
  const v = new ViewState();
  const seen = [];
  v.subscribe((what) => seen.push(what));
  v.select("a");
  v.setStyleHidden("tribal", true);
  assert.equal(v.isHidden({ id: "x", style: "tribal" }), true);
  assert.equal(v.isHidden({ id: "x", style: "japanese" }), false);
  v.setOption("allHidden", true);
  assert.equal(v.isHidden({ id: "x", style: "japanese" }), true);
  assert.equal(v.isLocked("x"), false);
  v.setOption("readOnly", true);
  assert.equal(v.isLocked("x"), true);
  assert.throws(() => v.setOption("nonsense", 1));
  assert.deepEqual(seen.map((w) => Object.keys(w)[0]), ["selection", "hiddenStyles", "option", "option"]);
});

test("tool registry: unique names and keys, key map and sheet rows from it", () => {
  const names = TOOL_REGISTRY.map((t) => t.name);
  assert.equal(new Set(names).size, names.length);
  const keys = TOOL_REGISTRY.map((t) => t.key);
  assert.equal(new Set(keys).size, keys.length);
  for (const t of TOOL_REGISTRY) {
    assert.ok(t.hint && t.icon && typeof t.create === "function", t.name);
    if (t.key.length === 1) assert.equal(toolForKey(t.key.toLowerCase()), t.name);
  }
  assert.equal(toolForKey("q"), null);
  assert.equal(toolSheetRows().length, TOOL_REGISTRY.length);
});

test("access: frozen and submitted are read-only for annotators, not reviewers; someone else's hold", () => {
  const anna = { username: "anna", role: "annotator" }, rita = { username: "rita", role: "reviewer" };
  assert.equal(editAccess({ meta: { status: "accepted" }, user: anna }).editable, false);
  assert.match(editAccess({ meta: { status: "accepted" }, user: anna }).who, /reviewer or an admin/);
  assert.equal(editAccess({ meta: { status: "accepted" }, user: rita }).editable, true);
  assert.equal(editAccess({ meta: { status: "submitted" }, user: anna }).kind, "submitted");
  assert.equal(editAccess({ meta: { status: "accepted" }, user: anna, agreement: true }).editable, true);
  const now = Date.parse("2026-12-07T10:00:00Z");
  const held = { status: "in_progress", held_by: "bob", held_until: "2026-12-07T10:12:00Z" };
  assert.deepEqual(heldByOther(held, anna, now), { user: "bob", until: held.held_until });
  assert.equal(heldByOther(held, { username: "bob" }, now), null);
  assert.equal(heldByOther({ ...held, held_until: "2026-12-07T09:00:00Z" }, anna, now), null);
  const a = editAccess({ meta: held, user: anna, now });
  assert.equal(a.kind, "held");
  assert.equal(a.override, false); // an annotator's save would be refused (409 leased)
  assert.equal(editAccess({ meta: held, user: rita, now }).override, true);
});

test("submit checks: flag vs regions, unstyled regions, unanswered suggestions; fixes work", () => {
  const taxonomy = new Taxonomy({ styles: [{ key: "tribal", label: "Tribal" }], flags: [{ key: "not_tattoo", label: "Not a tattoo", excluded_from_training: true }, { key: "kept", label: "Kept", excluded_from_training: false }] });
  const store = new Store();
  const sq = { type: "Polygon", coordinates: [[[0, 0], [10, 0], [10, 10], [0, 0]]] };
  store.load({ version: 1, regions: [{ id: "a", geometry: sq, style: null }, { id: "b", geometry: sq, style: "tribal" }], tags: { styles: [], flags: ["not_tattoo", "kept"] } });
  store.create({ id: "s", geometry: sq, style: null, suggested: true });
  const problems = submitProblems(store, taxonomy);
  assert.deepEqual(problems.map((p) => [p.check, p.count]), [["flag_with_regions", 2], ["unstyled_regions", 1], ["unanswered_suggestions", 1]]);
  problems[0].fixes[0].run(); // remove the flag
  assert.deepEqual(store.tags.flags, ["kept"]);
  submitProblems(store, taxonomy)[1].fixes[1].run(); // reject all suggestions
  assert.deepEqual(submitProblems(store, taxonomy).map((p) => p.check), ["unstyled_regions"]);
});

test("queue reason in plain words; the numbers stay out of the sentence", () => {
  const text = plainReason({ kind: "annotate", strategy: "uncertainty", reason: "Most uncertain: roi_entropy 0.71, uncertain_share 0.55", parts: { roi_entropy: 0.71, uncertain_share: 0.55 } });
  assert.equal(text, "Your labels help most here: the model is very unsure where the tattoo is and unsure about its style.");
  assert.doesNotMatch(text, /roi_entropy|uncertain_share/);
  assert.match(plainReason({ kind: "rework", comment: "add the arm" }), /Sent back in review: add the arm/);
  assert.equal(plainReason({ kind: "annotate", strategy: "oldest", parts: {} }), "The image that has waited longest.");
});

test("box geometry: canonical ring, corner drag keeps the opposite corner", () => {
  const g = boxGeometry(30, 40, 10, 20);
  assert.deepEqual(g.coordinates[0], [[10, 20], [30, 20], [30, 40], [10, 40], [10, 20]]);
  const moved = dragBoxCorner(g, 2, [50, 60]);
  assert.deepEqual(boxCorners(moved), [10, 20, 50, 60]);
  assert.deepEqual(boxCorners(dragBoxCorner(g, 2, [0, 0])), [0, 0, 10, 20]); // dragged past the opposite corner
});
