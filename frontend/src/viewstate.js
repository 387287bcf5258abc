// The view state of the open image, kept beside the document store (as Annotorious keeps selection apart from
// annotations): which region is selected, which are hidden or locked, which styles are hidden, and the view
// options (fill opacity, labels on the canvas, photo brightness/contrast/gamma, read-only). None of it is saved
// with the annotation and none of it is undoable. Observers get the names of what changed.

export const DEFAULT_OPTIONS = Object.freeze({
  allHidden: false,
  opacity: 0.3,
  labels: false,
  readOnly: false,
  brightness: 1,
  contrast: 1,
  gamma: 1,
});

export class ViewState {
  constructor(options = {}) {
    this.selectedId = null;
    this.selectedVertex = null;
    this.hidden = new Set();
    this.locked = new Set();
    this.hiddenStyles = new Set();
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.listeners = new Set();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _emit(what) {
    for (const fn of this.listeners) fn(what);
  }

  select(id, vertex = null) {
    const changed = id !== this.selectedId || vertex !== this.selectedVertex;
    this.selectedId = id;
    this.selectedVertex = vertex;
    if (changed) this._emit({ selection: true });
  }

  selectVertex(vertex) {
    this.selectedVertex = vertex;
    this._emit({ selection: true });
  }

  setHidden(id, hidden) {
    if (hidden) this.hidden.add(id);
    else this.hidden.delete(id);
    this._emit({ hidden: id });
  }

  setLocked(id, locked) {
    if (locked) this.locked.add(id);
    else this.locked.delete(id);
    this._emit({ locked: id });
  }

  setStyleHidden(style, hidden) {
    const key = style || "";
    if (hidden) this.hiddenStyles.add(key);
    else this.hiddenStyles.delete(key);
    this._emit({ hiddenStyles: key });
  }

  /** Forget what a deleted region left behind. */
  forget(id) {
    this.hidden.delete(id);
    this.locked.delete(id);
  }

  setOption(name, value) {
    if (!(name in this.options)) throw new Error(`unknown view option ${name}`);
    if (this.options[name] === value) return;
    this.options[name] = value;
    this._emit({ option: name });
  }

  /** Hidden one by one, by its style, or with all regions. */
  isHidden(region) {
    if (!region) return false;
    return this.options.allHidden || this.hidden.has(region.id) || this.hiddenStyles.has(region.style || "");
  }

  isLocked(id) {
    return this.options.readOnly || this.locked.has(id);
  }
}
