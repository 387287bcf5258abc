// Undo/redo by replaying change sets: every local change set the store emits is pushed; undo applies its
// inverse, redo applies it again. Change sets applied by undo/redo carry their own origin so they are not
// recorded twice. Loading a new document or a remote change clears nothing by itself: the editor decides.

import { invertChangeSet } from "./store.js";

export class UndoStack {
  constructor(store, { limit = 1000 } = {}) {
    this.store = store;
    this.limit = limit;
    this.done = [];
    this.undone = [];
    this.listeners = new Set();
    this.unsubscribe = store.subscribe((cs, origin) => this._record(cs, origin));
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _notify() {
    for (const fn of this.listeners) fn(this);
  }

  _record(cs, origin) {
    if (cs.reset) {
      this.clear();
      return;
    }
    if (origin !== "local") return;
    this.done.push(cs);
    if (this.done.length > this.limit) this.done.shift();
    this.undone = [];
    this._notify();
  }

  get canUndo() {
    return this.done.length > 0;
  }

  get canRedo() {
    return this.undone.length > 0;
  }

  /** Returns the change set that was undone (null if none). */
  undo() {
    const cs = this.done.pop();
    if (!cs) return null;
    try {
      this.store.apply(invertChangeSet(cs), "undo");
    } catch (err) {
      this.clear(); // the document moved under us (e.g. a rebase): the history no longer applies
      throw err;
    }
    this.undone.push(cs);
    this._notify();
    return cs;
  }

  redo() {
    const cs = this.undone.pop();
    if (!cs) return null;
    try {
      this.store.apply(cs, "redo");
    } catch (err) {
      this.clear();
      throw err;
    }
    this.done.push(cs);
    this._notify();
    return cs;
  }

  clear() {
    this.done = [];
    this.undone = [];
    this._notify();
  }

  dispose() {
    this.unsubscribe();
    this.listeners.clear();
  }
}
