// Model/classical help on the canvas: box-assist (drag a box round a tattoo → the ink inside it, from the server)
// and the wand (click on ink → region grown from that point). The request goes through editor.assist, which
// the page wires to POST /api/v1/images/<id>/assist and which explains failures.

export class BoxAssistTool {
  constructor(editor) {
    this.editor = editor;
    this.start = null;
  }

  down(ev, p) {
    this.start = p.image;
    this.end = p.image;
  }

  move(ev, p) {
    if (!this.start) return;
    this.end = p.image;
    this.editor.overlay.showBox(this.start, this.end);
  }

  viewChanged() {
    if (this.start) this.editor.overlay.showBox(this.start, this.end);
  }

  up() {
    const a = this.start, b = this.end;
    this.start = null;
    this.editor.overlay.clearDraft();
    if (!a || !b) return;
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    if ((box[2] - box[0]) * this.editor.viewport.scale < 6 || (box[3] - box[1]) * this.editor.viewport.scale < 6) {
      this.editor.notify("Drag a box around the tattoo.", "info");
      return;
    }
    this.finish(box);
  }

  finish(box) {
    this.editor.assist({ tool: "box", box }); // the ink inside the box (GrabCut was 18× slower, often empty)
  }

  cancel() {
    this.start = null;
    this.editor.overlay.clearDraft();
  }

  key(ev) {
    if (ev.key === "Escape" && this.start) {
      this.cancel();
      return true;
    }
    return false;
  }
}

export class WandTool {
  constructor(editor) {
    this.editor = editor;
  }

  up(ev, p) {
    this.editor.assist({ tool: "wand", points: [p.image] });
  }
}
