// The narrow view of the editor a tool gets: the document store, the viewport and overlay, selection and the
// view state's hidden/locked answers, a few canvas services (hit test, preview, pan, cursor mode) and the
// server helpers. Tools never reach the editor's DOM, panels or other tools through it.

export function toolContext(editor) {
  const ctx = {
    store: editor.store,
    viewport: editor.viewport,
    overlay: editor.overlay,
    image: editor.image,
    taxonomy: editor.taxonomy,
    brushCanvas: editor.brushCanvas,
    notify: (msg, kind) => editor.notify(msg, kind),
    emit: (name, value) => editor.emit(name, value),
    select: (id, opts) => editor.select(id, opts),
    selectVertex: (addr) => editor.selectVertex(addr),
    isHidden: (id) => editor.isHidden(id),
    isLocked: (id) => editor.isLocked(id),
    refreshOverlay: () => editor.refreshOverlay(),
    startPan: (ev) => editor.startPan(ev),
    /** Ask the server's assist; resolves with the id of the region made or replaced (null when nothing was found). */
    assist: (req, opts) => editor.assist(req, opts),
    geometryOp: (op, body) => (editor.geometryOp ? editor.geometryOp(op, body) : Promise.reject(new Error("no geometry endpoint"))),
    /** The region whose shape is under an event target (null on the background). */
    regionIdAt: (target) => editor.renderer.regionIdAt(target),
    /** Show a geometry for a region while it is dragged or painted, without touching the store. */
    preview: (id, geometry) => {
      editor.dragGeometry = geometry;
      editor.renderer.preview(id, geometry);
    },
    endPreview: (id) => {
      editor.dragGeometry = null;
      if (id) editor.renderer.endPreview(id);
    },
    /** A CSS mode of the canvas (cursor shapes): "brush-mode", or the hover kind of the select tool. */
    setMode: (name, on) => editor.wrap.classList.toggle(name, on),
    setHover: (kind) => { editor.wrap.dataset.hover = kind || ""; },
  };
  for (const name of ["selected", "selectedVertex", "brushRadius", "lastPointer", "readOnly"]) {
    Object.defineProperty(ctx, name, { get: () => editor[name], enumerable: true });
  }
  return Object.freeze(ctx);
}
