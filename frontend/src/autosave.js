// Autosave that never loses work.
//  - Every change marks the document dirty, writes a draft to localStorage and schedules a save `delay` ms
//    after the last change. flush() saves now (used before leaving the image and by Ctrl+S).
//  - Network or server failure: status "offline"/"error", the draft stays in localStorage, retries back off
//    (1 s … 30 s) and restart at once when the browser says it is online again.
//  - 409: status "conflict"; the caller shows what changed and calls resolveConflict("mine" | "theirs").
//    "mine" re-bases the local edits onto the server's version (three-way merge), "theirs" takes the server's
//    document as one undoable change.
//  - A draft left from an earlier visit (reload, crash, offline) is offered back by findDraft/restoreDraft.
// Status values: saved | saving | unsaved | offline | error | conflict.

import { changeSetTo } from "./store.js";
import { diffDocuments, isEmptyDiff, rebase } from "./merge.js";

export const DRAFT_PREFIX = "inklabel.draft.";

function canonical(doc) {
  return JSON.stringify({
    regions: (doc.regions || []).map((r) => [r.id, r.geometry, r.style ?? null, r.motifs || [], r.source || "human"]),
    tags: { styles: (doc.tags && doc.tags.styles) || [], flags: (doc.tags && doc.tags.flags) || [] },
  });
}

/** A change set that only adds, changes or removes model suggestions (not part of the saved document). */
export function onlySuggestions(cs) {
  if (cs.tags) return false;
  const sug = (r) => Boolean(r && r.suggested);
  return cs.created.every((e) => sug(e.region)) && cs.deleted.every((e) => sug(e.region)) &&
    cs.updated.every((e) => sug(e.before) && sug(e.after));
}

export function sameDocument(a, b) {
  return canonical(a) === canonical(b);
}

function stripDoc(doc) {
  return { regions: doc.regions || [], tags: doc.tags || { styles: [], flags: [] } };
}

/** Active time: gaps between user inputs count only while shorter than `idleMs`. */
export class ActivityClock {
  constructor({ idleMs = 60_000, now = () => Date.now() } = {}) {
    this.idleMs = idleMs;
    this.now = now;
    this.last = null;
    this.total = 0;
  }

  touch() {
    const t = this.now();
    if (this.last !== null) {
      const gap = t - this.last;
      if (gap > 0 && gap < this.idleMs) this.total += gap;
    }
    this.last = t;
  }

  take() {
    const ms = Math.round(this.total);
    this.total = 0;
    return ms;
  }

  giveBack(ms) {
    this.total += ms;
  }
}

export class Autosave {
  constructor({ api, imageId, store, storage = globalThis.localStorage, delay = 1200, clock = new ActivityClock(),
    timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (t) => clearTimeout(t) }, now = () => Date.now(),
    path = `/images/${imageId}/annotation`, draftKey = DRAFT_PREFIX + imageId, draftDelay = 250 }) {
    Object.assign(this, { api, imageId, store, storage, delay, clock, timers, now, path, draftKey, draftDelay });
    this.draftTimer = null;
    this.status = "saved";
    this.message = "";
    this.version = 0;
    this.base = { regions: [], tags: { styles: [], flags: [] } };
    this.savedRevision = store.revision;
    this.timer = null;
    this.retryMs = 0;
    this.inFlight = null;
    this.conflict = null; // {theirs, mine, base}
    this.lastSavedAt = null;
    this.listeners = new Set();
    this.disposed = false;
    this.unsubscribe = store.subscribe((cs, origin) => {
      if (cs.reset || origin === "server" || onlySuggestions(cs)) return;
      this._changed();
    });
  }

  get key() {
    return this.draftKey;
  }

  onStatus(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _setStatus(status, message = "") {
    this.status = status;
    this.message = message;
    for (const fn of this.listeners) fn(this);
  }

  /** Start from the server's document (already loaded into the store by the caller). */
  start(serverDoc) {
    this.version = serverDoc.version || 0;
    this.base = stripDoc(serverDoc);
    this.savedRevision = this.store.revision;
    this._setStatus("saved");
  }

  get dirty() {
    return !sameDocument(this.store.toDocument(), this.base);
  }

  _changed() {
    if (this.disposed) return;
    this._scheduleDraft();
    if (this.status === "conflict") return; // the conflict dialog decides
    if (this.status === "offline" && this.timer) return; // the retry timer is running; the draft holds the edit
    if (!this.inFlight) this._setStatus("unsaved");
    this._schedule(this.delay);
  }

  _schedule(ms) {
    if (this.timer) this.timers.clear(this.timer);
    this.timer = this.timers.set(() => {
      this.timer = null;
      return this.save();
    }, ms);
  }

  // --- the local copy ---------------------------------------------------------------------------------------

  /** The local copy is written shortly after a burst of edits (and at once before the page goes away). */
  _scheduleDraft() {
    if (!this.draftDelay) return this.writeDraft();
    if (this.draftTimer) return;
    this.draftTimer = this.timers.set(() => {
      this.draftTimer = null;
      this.writeDraft();
    }, this.draftDelay);
  }

  writeDraft() {
    if (this.draftTimer) {
      this.timers.clear(this.draftTimer);
      this.draftTimer = null;
    }
    if (!this.storage || this.disposed) return;
    const doc = this.store.toDocument();
    try {
      if (sameDocument(doc, this.base)) this.storage.removeItem(this.key);
      else this.storage.setItem(this.key, JSON.stringify({ v: 1, imageId: this.imageId, baseVersion: this.version, base: this.base, document: doc, savedAt: this.now() }));
    } catch (err) {
      this._setStatus(this.status, "This browser refused to keep a local copy (storage full?). Save soon.");
    }
  }

  clearDraft() {
    if (this.draftTimer) {
      this.timers.clear(this.draftTimer);
      this.draftTimer = null;
    }
    if (this.storage) this.storage.removeItem(this.key);
  }

  /** A draft of this image that differs from the server's document, or null. */
  findDraft(serverDoc) {
    if (!this.storage) return null;
    let draft;
    try {
      draft = JSON.parse(this.storage.getItem(this.key) || "null");
    } catch {
      return null;
    }
    if (!draft || !draft.document) return null;
    if (sameDocument(draft.document, serverDoc)) {
      this.clearDraft();
      return null;
    }
    return draft;
  }

  /** Put a draft's edits back, re-based on the server's document when the server moved on; one undo step. */
  restoreDraft(draft, serverDoc) {
    let target = draft.document;
    let conflicts = [];
    if (draft.baseVersion !== (serverDoc.version || 0)) {
      ({ document: target, conflicts } = rebase(draft.base || { regions: [], tags: {} }, draft.document, serverDoc));
    }
    this.store.apply(changeSetTo(this.store, target), "local");
    return { conflicts };
  }

  // --- saving -----------------------------------------------------------------------------------------------

  /** Save now if anything is unsaved; resolves true when the server has everything. */
  async flush() {
    if (this.timer) {
      this.timers.clear(this.timer);
      this.timer = null;
    }
    if (this.inFlight) await this.inFlight;
    if (this.status === "conflict") return false;
    if (this.dirty) await this.save();
    return !this.dirty && this.status === "saved";
  }

  save() {
    if (this.disposed) return Promise.resolve();
    if (this.inFlight) {
      this.pending = true;
      return this.inFlight;
    }
    if (this.status === "conflict") return Promise.resolve();
    const doc = this.store.toDocument();
    if (sameDocument(doc, this.base)) {
      this.savedRevision = this.store.revision;
      this.clearDraft();
      this._setStatus("saved");
      return Promise.resolve();
    }
    const spent = this.clock.take();
    this._setStatus("saving");
    this.inFlight = this._put(doc, spent).finally(() => {
      this.inFlight = null;
      if (this.pending && !this.disposed) {
        this.pending = false;
        if (this.status === "unsaved" || this.status === "saving") this._schedule(0);
      }
    });
    return this.inFlight;
  }

  async _put(doc, spent, extra = {}) {
    let resp;
    try {
      resp = await this.api.put(this.path, {
        base_version: this.version,
        regions: doc.regions,
        tags: doc.tags,
        time_spent_ms: spent,
        ...extra,
      });
    } catch (err) {
      this.clock.giveBack(spent);
      this._failed(err, doc);
      return;
    }
    this.retryMs = 0;
    this.version = resp.version;
    this.lastSavedAt = this.now();
    const stored = stripDoc(resp);
    this._adoptServerRepairs(doc, stored);
    this.base = stored;
    if (this.dirty) {
      this.writeDraft();
      this._setStatus("unsaved");
      this._schedule(this.delay);
    } else {
      this.clearDraft();
      this._setStatus("saved");
    }
  }

  /** The server may clip or repair geometry: show what it stored, for regions not edited since. */
  _adoptServerRepairs(sent, stored) {
    const sentById = new Map(sent.regions.map((r) => [r.id, JSON.stringify(r.geometry)]));
    const cs = { created: [], updated: [], deleted: [], tags: null };
    for (const r of stored.regions) {
      const cur = this.store.get(r.id);
      if (!cur || !sentById.has(r.id)) continue;
      const was = sentById.get(r.id);
      if (JSON.stringify(cur.geometry) === was && JSON.stringify(r.geometry) !== was) {
        cs.updated.push({ before: cur, after: { ...cur, geometry: r.geometry } });
      }
    }
    if (cs.updated.length) this.store.apply(cs, "server");
  }

  _failed(err, doc) {
    if (err.status === 409 && err.details && err.details.current) {
      this.conflict = { theirs: err.details.current, base: this.base, mine: doc, savedBy: err.details.saved_by || null, savedAt: err.details.saved_at || null };
      this._setStatus("conflict", err.message);
      return;
    }
    if (err.transient) {
      this.retryMs = Math.min(30_000, this.retryMs ? this.retryMs * 2 : 1000);
      this._setStatus(err.offline ? "offline" : "error", err.offline ? "Offline: kept on this computer, retrying." : err.message);
      this._schedule(this.retryMs);
      return;
    }
    // 401 (logged out), 403 (not allowed any more), 404, 422 (invalid geometry): keep the draft, say why
    this.lastError = err;
    this._setStatus("error", err.message);
  }

  /**
   * Save everything and send extra fields with it (an agreement copy's {"complete": true}) even when nothing
   * changed. Resolves true when the server took it.
   */
  async finalize(extra) {
    if (!(await this.flush()) && this.dirty) return false;
    if (this.status === "conflict") return false;
    const doc = this.store.toDocument();
    const spent = this.clock.take();
    this._setStatus("saving");
    this.inFlight = this._put(doc, spent, extra).finally(() => { this.inFlight = null; });
    await this.inFlight;
    return this.status === "saved";
  }

  /** Try again now (the browser came back online, or the user asked). */
  retry() {
    if (this.status === "conflict" || !this.dirty) return Promise.resolve();
    this.retryMs = 0;
    return this.save();
  }

  /** What differs, for the conflict dialog: theirs vs the common base, and mine vs the base. */
  conflictSummary() {
    if (!this.conflict) return null;
    const { base, theirs } = this.conflict;
    return { theirs: diffDocuments(base, theirs), mine: diffDocuments(base, this.store.toDocument()), version: theirs.version,
      savedBy: this.conflict.savedBy, savedAt: this.conflict.savedAt };
  }

  /** "mine": re-base local edits on the server's version and save; "theirs": take the server's document. */
  resolveConflict(choice) {
    const c = this.conflict;
    if (!c) return { conflicts: [] };
    const theirs = c.theirs;
    this.conflict = null;
    this.version = theirs.version;
    this.base = stripDoc(theirs);
    let conflicts = [];
    if (choice === "mine") {
      const merged = rebase(c.base, this.store.toDocument(), theirs);
      conflicts = merged.conflicts;
      this._setStatus("unsaved");
      this.store.apply(changeSetTo(this.store, merged.document), "local");
      if (isEmptyDiff(diffDocuments(this.base, this.store.toDocument()))) this._setStatus("saved");
      this.save();
    } else {
      this._setStatus("saved");
      this.store.apply(changeSetTo(this.store, theirs), "local");
      // taking theirs is an undoable edit, but it is what the server has: nothing to save
      this.savedRevision = this.store.revision;
      if (this.timer) { this.timers.clear(this.timer); this.timer = null; }
      this.clearDraft();
      this._setStatus("saved");
    }
    return { conflicts };
  }

  dispose() {
    if (this.draftTimer && this.dirty) this.writeDraft();
    this.disposed = true;
    if (this.timer) this.timers.clear(this.timer);
    if (this.draftTimer) this.timers.clear(this.draftTimer);
    this.unsubscribe();
    this.listeners.clear();
  }
}
