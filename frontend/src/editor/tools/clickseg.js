// Click-to-segment (issue 21's POST /images/<id>/assist tool "click"): click on the tattoo, Shift+click on what is
// not; every click sends all clicks so far and the answer replaces the region being made. Enter keeps it, Esc
// drops it, Backspace / Ctrl+Z takes the last click back.

export class ClickSegmentTool {
  constructor(ctx) {
    this.editor = ctx;
    this.positive = [];
    this.negative = [];
    this.regionId = null;
    this.busy = false;
    this.again = false;
  }

  get drawing() {
    return this.positive.length + this.negative.length > 0;
  }

  deactivate() {
    this._reset();
  }

  _reset() {
    this.positive = [];
    this.negative = [];
    this.regionId = null;
    this.editor.overlay.clearDraft();
    this.editor.emit("draft", 0);
  }

  _draw() {
    this.editor.overlay.showClicks(this.positive, this.negative);
  }

  viewChanged() {
    if (this.drawing) this._draw();
  }

  down(ev, p) {
    (ev.shiftKey ? this.negative : this.positive).push(p.image);
    this.editor.emit("activity");
    this._draw();
    this._ask();
  }

  /** One request at a time; clicks made meanwhile go in the next one. */
  async _ask() {
    if (this.busy) { this.again = true; return; }
    const e = this.editor;
    if (!this.positive.length) {
      if (this.regionId && e.store.has(this.regionId)) e.store.remove(this.regionId);
      this.regionId = null;
      return;
    }
    this.busy = true;
    try {
      const id = await e.assist({ tool: "click", points: this.positive, negative_points: this.negative },
        { replace: this.regionId && e.store.has(this.regionId) ? this.regionId : null });
      if (id && this.drawing) this.regionId = id;
    } finally {
      this.busy = false;
      if (this.again) { this.again = false; this._ask(); }
    }
  }

  key(ev) {
    if (!this.drawing) return false;
    const ctrl = ev.ctrlKey || ev.metaKey;
    if (ev.key === "Enter") {
      this._reset(); // the region stays as it is
      return true;
    }
    if (ev.key === "Escape") {
      if (this.regionId && this.editor.store.has(this.regionId)) this.editor.store.remove(this.regionId);
      this._reset();
      return true;
    }
    if (ev.key === "Backspace" || (ctrl && ev.key.toLowerCase() === "z" && !ev.shiftKey)) {
      const last = [...this.positive.map((p) => ["positive", p]), ...this.negative.map((p) => ["negative", p])].pop();
      if (last) this[last[0]].pop(); // (the newest list's last click; good enough for undoing a mistake)
      this._draw();
      this._ask();
      return true;
    }
    return false;
  }
}
