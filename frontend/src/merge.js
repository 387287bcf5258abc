// Three-way merge of annotation documents, for the 409 "someone saved in between" flow and for restoring a
// draft kept in localStorage onto a newer server version.
//   base:   the server document my edits started from
//   mine:   my document now
//   theirs: the server's current document
// Per region (by id): whoever changed it wins; changed on both sides → mine wins and it is reported as a
// conflict. Image tags merge as sets (their additions/removals plus mine).

function regionKey(r) {
  if (!r) return "";
  return JSON.stringify([r.kind || "mask", r.geometry, r.style ?? null, r.motifs || [], r.source || "human"]);
}

function byId(doc) {
  const map = new Map();
  for (const r of (doc && doc.regions) || []) map.set(r.id, r);
  return map;
}

function tagList(doc, key) {
  return ((doc && doc.tags && doc.tags[key]) || []).slice();
}

/** What changed from `a` to `b`: region ids added / removed / changed, and the tag differences. */
export function diffDocuments(a, b) {
  const ma = byId(a), mb = byId(b);
  const added = [], removed = [], changed = [];
  for (const [id, r] of mb) {
    if (!ma.has(id)) added.push(id);
    else if (regionKey(ma.get(id)) !== regionKey(r)) changed.push(id);
  }
  for (const id of ma.keys()) if (!mb.has(id)) removed.push(id);
  const tags = {};
  for (const key of ["styles", "flags"]) {
    const ta = new Set(tagList(a, key)), tb = new Set(tagList(b, key));
    const plus = [...tb].filter((t) => !ta.has(t));
    const minus = [...ta].filter((t) => !tb.has(t));
    if (plus.length || minus.length) tags[key] = { added: plus, removed: minus };
  }
  return { added, removed, changed, tags };
}

export function isEmptyDiff(d) {
  return !d.added.length && !d.removed.length && !d.changed.length && !Object.keys(d.tags).length;
}

/** One line for people: "2 regions added, 1 region changed, image flags +Store front". */
export function describeDiff(d, labels = {}) {
  const parts = [];
  const n = (k, word) => `${k} region${k === 1 ? "" : "s"} ${word}`;
  if (d.added.length) parts.push(n(d.added.length, "added"));
  if (d.changed.length) parts.push(n(d.changed.length, "changed"));
  if (d.removed.length) parts.push(n(d.removed.length, "removed"));
  for (const [key, t] of Object.entries(d.tags)) {
    const name = (key === "flags" ? labels.flag : labels.style) || ((x) => x);
    const bits = [...t.added.map((x) => "+" + name(x)), ...t.removed.map((x) => "−" + name(x))];
    parts.push(`image ${key} ${bits.join(" ")}`);
  }
  return parts.length ? parts.join(", ") : "no differences";
}

function mergeTags(base, mine, theirs, key) {
  const b = new Set(tagList(base, key)), m = new Set(tagList(mine, key));
  const out = tagList(theirs, key);
  const have = new Set(out);
  for (const t of tagList(mine, key)) if (!b.has(t) && !have.has(t)) { out.push(t); have.add(t); }
  return out.filter((t) => !(b.has(t) && !m.has(t)));
}

/**
 * Re-base my edits (base → mine) onto theirs. Returns {document, conflicts: [{id, kind}]}, where kind is
 * "both_changed" (mine kept), "changed_deleted" (I changed what they deleted: mine kept) or
 * "deleted_changed" (I deleted what they changed: deleted).
 */
export function rebase(base, mine, theirs) {
  const mb = byId(base), mm = byId(mine), mt = byId(theirs);
  const conflicts = [];
  const result = [];
  const placed = new Set();
  for (const r of (theirs && theirs.regions) || []) {
    const id = r.id;
    const inBase = mb.has(id), inMine = mm.has(id);
    if (!inBase) {
      result.push(inMine ? mm.get(id) : r); // they added it (or both added the same id: mine)
    } else if (!inMine) {
      if (regionKey(mb.get(id)) !== regionKey(r)) conflicts.push({ id, kind: "deleted_changed" });
      // I deleted it: stays deleted
    } else {
      const mineChanged = regionKey(mm.get(id)) !== regionKey(mb.get(id));
      const theirsChanged = regionKey(r) !== regionKey(mb.get(id));
      if (mineChanged && theirsChanged && regionKey(mm.get(id)) !== regionKey(r)) conflicts.push({ id, kind: "both_changed" });
      result.push(mineChanged ? mm.get(id) : r);
    }
    placed.add(id);
  }
  for (const r of (mine && mine.regions) || []) {
    if (placed.has(r.id)) continue;
    if (!mb.has(r.id)) result.push(r); // I added it
    else if (regionKey(r) !== regionKey(mb.get(r.id))) {
      conflicts.push({ id: r.id, kind: "changed_deleted" });
      result.push(r);
    }
    // else: they deleted it and I had not touched it
  }
  const tags = { styles: mergeTags(base, mine, theirs, "styles"), flags: mergeTags(base, mine, theirs, "flags") };
  return { document: { regions: result, tags }, conflicts };
}
