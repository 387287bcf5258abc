// The annotation document of the open image. Every edit goes through the store, which emits a change set:
//   {created: [{region, index}], updated: [{before, after}], deleted: [{region, index}], tags: {before, after} | null}
// Renderers, the region list, autosave and the undo stack only observe these change sets.
// Regions are plain objects replaced (never mutated) on update:
//   {id, kind, geometry, style, motifs, source, confidence?, suggested?}
// kind is "mask" (the geometry outlines the tattoo) or "box" (a weak label: the geometry is the axis-aligned
// rectangle [[x0,y0],[x1,y0],[x1,y1],[x0,y1],[x0,y0]] around it).
// A `suggested` region is a model pre-fill not yet accepted: shown, undoable, but not part of the saved document.

export const SAVED_REGION_FIELDS = ["id", "kind", "geometry", "style", "motifs", "source"];
// sent only when set: which model proposed a region and how sure it was (pre-fill usefulness statistics)
export const OPTIONAL_REGION_FIELDS = ["model_version", "confidence"];

export function emptyChangeSet() {
  return { created: [], updated: [], deleted: [], tags: null };
}

export function isEmptyChangeSet(cs) {
  return !cs.reset && !cs.created.length && !cs.updated.length && !cs.deleted.length && !cs.tags;
}

/** The change set that undoes `cs`. */
export function invertChangeSet(cs) {
  return {
    created: cs.deleted.slice().reverse().map((e) => ({ region: e.region, index: e.index })),
    updated: cs.updated.map((e) => ({ before: e.after, after: e.before })),
    deleted: cs.created.slice().reverse().map((e) => ({ region: e.region, index: e.index })),
    tags: cs.tags ? { before: cs.tags.after, after: cs.tags.before } : null,
  };
}

/** Ids touched by a change set. */
export function changedIds(cs) {
  const ids = new Set();
  for (const e of cs.created) ids.add(e.region.id);
  for (const e of cs.deleted) ids.add(e.region.id);
  for (const e of cs.updated) ids.add(e.after.id);
  return ids;
}

export function newRegionId() {
  if (globalThis.crypto && globalThis.crypto.randomUUID) return globalThis.crypto.randomUUID().replace(/-/g, "");
  let s = "";
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

function normaliseTags(tags) {
  return { styles: [...((tags && tags.styles) || [])], flags: [...((tags && tags.flags) || [])] };
}

function normaliseRegion(r) {
  const out = {
    id: r.id || newRegionId(),
    kind: r.kind === "box" ? "box" : "mask",
    geometry: r.geometry,
    style: r.style ?? null,
    motifs: [...(r.motifs || [])],
    source: r.source || "human",
  };
  if (r.model_version !== undefined && r.model_version !== null) out.model_version = r.model_version;
  if (r.confidence !== undefined && r.confidence !== null) out.confidence = r.confidence;
  if (r.suggested) out.suggested = true;
  return out;
}

export class Store {
  constructor() {
    this.order = [];
    this.byId = new Map();
    this.tags = { styles: [], flags: [] };
    this.listeners = new Set();
    this.revision = 0; // grows on every change; autosave compares it with the revision it last saved
    // read-only: edits (and undo/redo) are refused and reported to onRefused; the server's changes still apply
    this.readOnly = false;
    this.onRefused = null;
    this._tx = null;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _emit(cs, origin) {
    this.revision += 1;
    for (const fn of this.listeners) fn(cs, origin);
  }

  /** Replace everything with a server document (no undo entry: observers get {reset: true}). */
  load(doc) {
    this.order = [];
    this.byId = new Map();
    for (const r of (doc && doc.regions) || []) {
      const region = normaliseRegion(r);
      if (this.byId.has(region.id)) continue;
      this.order.push(region.id);
      this.byId.set(region.id, region);
    }
    this.tags = normaliseTags(doc && doc.tags);
    this._emit({ ...emptyChangeSet(), reset: true }, "load");
  }

  get(id) {
    return this.byId.get(id) || null;
  }

  has(id) {
    return this.byId.has(id);
  }

  indexOf(id) {
    return this.order.indexOf(id);
  }

  all() {
    return this.order.map((id) => this.byId.get(id));
  }

  get size() {
    return this.order.length;
  }

  /** The document as the server stores it: suggestions left out, only the saved fields. */
  toDocument() {
    const regions = [];
    for (const id of this.order) {
      const r = this.byId.get(id);
      if (r.suggested) continue;
      const out = {};
      for (const key of SAVED_REGION_FIELDS) out[key] = r[key];
      for (const key of OPTIONAL_REGION_FIELDS) if (r[key] !== undefined && r[key] !== null) out[key] = r[key];
      regions.push(out);
    }
    return { regions, tags: normaliseTags(this.tags) };
  }

  // --- edits (each is one undoable change set unless inside transact) ---------------------------------------

  create(region, index = this.order.length) {
    const r = normaliseRegion(region);
    if (this.byId.has(r.id)) throw new Error(`region ${r.id} exists`);
    this._record({ ...emptyChangeSet(), created: [{ region: r, index }] });
    return r;
  }

  /** Change a region. Editing a model suggestion (any change but `suggested` itself) accepts it. */
  update(id, patch) {
    const before = this.byId.get(id);
    if (!before) throw new Error(`no region ${id}`);
    const accept = before.suggested && !("suggested" in patch) ? { suggested: false } : {};
    const after = normaliseRegion({ ...before, ...patch, ...accept, id });
    if (JSON.stringify(before) === JSON.stringify(after)) return before;
    this._record({ ...emptyChangeSet(), updated: [{ before, after }] });
    return after;
  }

  remove(id) {
    const region = this.byId.get(id);
    if (!region) return;
    this._record({ ...emptyChangeSet(), deleted: [{ region, index: this.order.indexOf(id) }] });
  }

  setTags(tags) {
    const after = normaliseTags(tags);
    const before = normaliseTags(this.tags);
    if (JSON.stringify(before) === JSON.stringify(after)) return;
    this._record({ ...emptyChangeSet(), tags: { before, after } });
  }

  /** Run several edits as one change set (one undo step), e.g. "accept all suggestions". */
  transact(fn, origin = "local") {
    if (this._tx) return fn();
    this._tx = emptyChangeSet();
    let result;
    try {
      result = fn();
    } finally {
      const cs = this._tx;
      this._tx = null;
      if (!isEmptyChangeSet(cs)) this._emit(cs, origin);
    }
    return result;
  }

  _refused() {
    if (!this.readOnly) return false;
    if (this.onRefused) this.onRefused();
    return true;
  }

  _record(cs, origin = "local") {
    if (this._refused()) return;
    this._applyRaw(cs);
    if (this._tx) composeInto(this._tx, cs);
    else this._emit(cs, origin);
  }

  /** Apply a change set built elsewhere (undo, redo, rebase). `origin` tells observers where it came from. */
  apply(cs, origin = "local") {
    if (isEmptyChangeSet(cs)) return;
    if ((origin === "undo" || origin === "redo") && this._refused()) return;
    this._applyRaw(cs);
    if (this._tx) composeInto(this._tx, cs);
    else this._emit(cs, origin);
  }

  _applyRaw(cs) {
    for (const { after } of cs.updated) {
      if (!this.byId.has(after.id)) throw new Error(`no region ${after.id}`);
      this.byId.set(after.id, after);
    }
    for (const { region } of cs.deleted) {
      const i = this.order.indexOf(region.id);
      if (i >= 0) this.order.splice(i, 1);
      this.byId.delete(region.id);
    }
    for (const { region, index } of cs.created) {
      if (this.byId.has(region.id)) throw new Error(`region ${region.id} exists`);
      const at = index === undefined || index < 0 || index > this.order.length ? this.order.length : index;
      this.order.splice(at, 0, region.id);
      this.byId.set(region.id, region);
    }
    if (cs.tags) this.tags = normaliseTags(cs.tags.after);
  }
}

/** Fold change set `next` into `acc` so that applying `acc` equals applying both in turn. */
export function composeInto(acc, next) {
  for (const { before, after } of next.updated) {
    const created = acc.created.find((e) => e.region.id === after.id);
    if (created) { created.region = after; continue; }
    const updated = acc.updated.find((e) => e.after.id === after.id);
    if (updated) updated.after = after;
    else acc.updated.push({ before, after });
  }
  for (const { region, index } of next.deleted) {
    const ci = acc.created.findIndex((e) => e.region.id === region.id);
    if (ci >= 0) { acc.created.splice(ci, 1); continue; }
    const ui = acc.updated.findIndex((e) => e.after.id === region.id);
    if (ui >= 0) {
      const [entry] = acc.updated.splice(ui, 1);
      acc.deleted.push({ region: entry.before, index });
    } else acc.deleted.push({ region, index });
  }
  for (const entry of next.created) acc.created.push(entry);
  if (next.tags) acc.tags = acc.tags ? { before: acc.tags.before, after: next.tags.after } : { ...next.tags };
  for (let i = acc.updated.length - 1; i >= 0; i--) {
    const e = acc.updated[i];
    if (JSON.stringify(e.before) === JSON.stringify(e.after)) acc.updated.splice(i, 1);
  }
  return acc;
}

/**
 * The change set that turns the store's saved regions and tags into `doc` (suggestions are left alone).
 * Applied with store.apply it is one undoable step: restoring a draft, taking the server's version, a rebase.
 */
export function changeSetTo(store, doc) {
  const cs = emptyChangeSet();
  const target = new Map();
  for (const r of doc.regions || []) target.set(r.id, normaliseRegion(r));
  store.order.forEach((id, index) => {
    const cur = store.byId.get(id);
    if (cur.suggested) {
      if (target.has(id)) cs.updated.push({ before: cur, after: target.get(id) });
      return;
    }
    if (!target.has(id)) cs.deleted.push({ region: cur, index });
    else {
      const next = target.get(id);
      if (JSON.stringify(cur) !== JSON.stringify(next)) cs.updated.push({ before: cur, after: next });
    }
  });
  cs.deleted.reverse(); // remove from the end first so recorded indexes stay right
  let index = store.order.length - cs.deleted.length;
  for (const [id, r] of target) if (!store.byId.has(id)) cs.created.push({ region: r, index: index++ });
  const tags = normaliseTags(doc.tags);
  if (JSON.stringify(tags) !== JSON.stringify(normaliseTags(store.tags))) cs.tags = { before: normaliseTags(store.tags), after: tags };
  return cs;
}
