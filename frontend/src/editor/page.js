// The editor screen: top bar (save status, undo/redo, submit & next), tool bar, canvas, side panels,
// keyboard shortcuts, autosave and the flows around it (restore a draft, resolve a conflict, leave safely).

import { h, toast, dialog } from "../dom.js";
import { icon } from "../icons.js";
import { Store } from "../store.js";
import { UndoStack } from "../undo.js";
import { Autosave, ActivityClock } from "../autosave.js";
import { Editor } from "./editor.js";
import { TOOL_REGISTRY, TOOLS, toolForKey } from "./tools/registry.js";
import { ViewState } from "../viewstate.js";
import { editAccess, isReviewer, readOnlyBanner } from "../access.js";
import { roundGeometry } from "../geometry.js";
import { boxCorners } from "../boxes.js";
import { statusPill } from "../panels/status.js";
import { regionPanel } from "../panels/region.js";
import { regionsPanel } from "../panels/regions.js";
import { tagsPanel } from "../panels/tags.js";
import { modelPanel } from "../panels/model.js";
import { reviewPanel } from "../panels/review.js";
import { reviewInfoPanel, formatDuration } from "../panels/reviewinfo.js";
import { viewPanel } from "../panels/view.js";
import { plainReason } from "../queuereason.js";
import { showShortcutSheet } from "../panels/shortcuts.js";
import { conflictDialog, restoreDialog } from "../panels/dialogs.js";
import { submitChecksDialog } from "../panels/submitchecks.js";

function isTyping(el) {
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

export async function openEditorPage({ root, app, imageId, copy = null }) {
  const { api, taxonomy } = app;
  if (globalThis.performance && performance.mark) {
    // one image's timeline (benchmarks/bench_editor_flow.py reads it): open → first paint → photo → suggestions
    for (const name of ["inklabel:open", "inklabel:first-paint", "inklabel:photo", "inklabel:suggestions"]) performance.clearMarks(name);
    performance.mark("inklabel:open");
  }
  root.append(h("div", { class: "loading", text: "Opening image…" }));
  // An agreement copy is a second, independent annotation of the image: its own document and endpoint.
  const agreement = copy === "agreement";
  const docPath = agreement ? `/images/${imageId}/agreement` : `/images/${imageId}/annotation`;
  let meta, doc;
  // the cached pre-fill comes with the document, so suggestions are drawn as soon as the photo is (no model call)
  const cachedPrefill = api.get(`/images/${imageId}/prediction`).catch(() => null);
  try {
    [meta, doc] = await Promise.all([api.get(`/images/${imageId}`), api.get(docPath)]);
  } catch (err) {
    root.replaceChildren(h("div", { class: "empty-state" },
      h("h2", { text: err.status === 404 ? "Image not found" : "Could not open the image" }),
      h("p", { text: err.message }),
      h("a", { class: "btn", href: "#/" }, "Back to images")));
    return { leave: async () => true, dispose() {} };
  }

  const store = new Store();
  const view = new ViewState();
  const undo = new UndoStack(store);
  const clock = new ActivityClock();
  const autosave = new Autosave({ api, imageId, store, clock, path: docPath, draftKey: `inklabel.draft.${agreement ? "agreement." : ""}${imageId}` });
  const disposers = [];

  // --- layout -------------------------------------------------------------------------------------------------
  const canvasHost = h("main", { class: "canvas-host", "aria-label": "Canvas" });
  const sidebar = h("aside", { class: "sidebar", "aria-label": "Panels" });
  const toolbar = h("nav", { class: "toolbar", role: "toolbar", "aria-label": "Tools", "aria-orientation": "vertical" });
  const statusbar = h("footer", { class: "statusbar" });
  const body = h("div", { class: "editor-body" }, toolbar, canvasHost, sidebar);
  const topbar = h("header", { class: "topbar editor-top" });
  const page = h("div", { class: "editor-page" }, topbar, body, statusbar);
  root.replaceChildren(page);

  const editor = new Editor({
    host: canvasHost,
    image: { width: meta.width, height: meta.height },
    taxonomy, store, undo, view,
    notify: (msg, kind) => toast(msg, kind || "info"),
    assist: (req, opts) => runAssist(req, opts),
  });
  editor.setImageSources({
    thumb: meta.thumb_url || `/api/v1/images/${imageId}/file?size=thumb`,
    display: meta.display_url || `/api/v1/images/${imageId}/file?size=display`,
    original: meta.original_url || `/api/v1/images/${imageId}/file?size=original`,
    displaySide: app.displaySide || 2048,
  });
  // brush and eraser: shapely on the server while it answers; the browser's raster version otherwise
  let geometryServer = true;
  editor.geometryOp = async (op, body) => {
    if (!geometryServer) throw new Error("no geometry endpoint");
    // the server works on this image's stored size, never on one the client names
    const { width, height, ...rest } = body;
    try {
      return (await api.post(`/geometry/${op}`, { ...rest, image_id: imageId })).geometry;
    } catch (err) {
      if (err.status === 404 || err.status === 405) geometryServer = false;
      throw err;
    }
  };
  window.inklabel = { store, undo, editor, view, autosave, viewport: editor.viewport, imageId };

  // --- top bar ------------------------------------------------------------------------------------------------
  const undoBtn = h("button", { type: "button", class: "icon-btn", title: "Undo (Ctrl+Z)", "aria-label": "Undo", "data-testid": "undo" }, icon("undo"));
  const redoBtn = h("button", { type: "button", class: "icon-btn", title: "Redo (Ctrl+Shift+Z or Ctrl+Y)", "aria-label": "Redo", "data-testid": "redo" }, icon("redo"));
  undoBtn.addEventListener("click", () => doUndo());
  redoBtn.addEventListener("click", () => doRedo());
  const refreshUndo = () => {
    undoBtn.disabled = !undo.canUndo;
    redoBtn.disabled = !undo.canRedo;
  };
  undo.onChange(refreshUndo);
  refreshUndo();
  const submitBtn = h("button", { type: "button", class: "btn btn-primary", title: agreement ? "Mark this agreement copy complete and open the next image (Ctrl+Enter)" : "Submit this image for review and open the next one (Ctrl+Enter)", "data-testid": "submit-next" }, agreement ? "Complete & next" : "Submit & next", h("kbd", { text: "Ctrl+↵" }));
  submitBtn.addEventListener("click", () => submitAndNext());
  const helpBtn = h("button", { type: "button", class: "icon-btn", title: "Keyboard shortcuts (?)", "aria-label": "Keyboard shortcuts" }, icon("keyboard"));
  helpBtn.addEventListener("click", () => showShortcutSheet(taxonomy));
  const statusBadge = h("span", { class: "badge", "data-status": meta.status, "data-testid": "image-status", text: meta.status.replace("_", " ") });
  const title = h("div", { class: "title" },
    h("a", { class: "icon-btn", href: "#/", title: "Back to the image list", "aria-label": "Back to images" }, icon("back")),
    h("div", { class: "title-text" },
      h("strong", { text: meta.original_filename || `Image ${imageId}`, title: meta.original_filename || `Image ${imageId}` }),
      h("span", { class: "muted small", text: `#${imageId} · ${meta.width}×${meta.height}` })),
    statusBadge,
    agreement ? h("span", { class: "badge agreement", title: "A second, independent annotation of this image, used to measure agreement between annotators. You do not see the first one.", text: "agreement copy" }) : null);
  const pill = statusPill(autosave, { onConflict: () => resolveConflict() });
  topbar.append(title, h("div", { class: "spacer" }), pill, undoBtn, redoBtn, helpBtn, submitBtn, app.userMenu());

  // --- tool bar -----------------------------------------------------------------------------------------------
  const toolButtons = {};
  for (const t of TOOL_REGISTRY) {
    const b = h("button", { type: "button", class: "tool", "data-tool": t.name, title: `${t.label} (${t.key}) — ${t.hint}`, "aria-pressed": "false" },
      icon(t.icon, { size: 20 }), h("span", { class: "tool-label", text: t.label }), h("kbd", { text: t.key }));
    b.addEventListener("click", () => editor.setTool(t.name));
    toolButtons[t.name] = b;
    toolbar.append(b);
  }
  const radius = h("input", { type: "range", min: 2, max: 120, value: editor.brushRadius, "aria-label": "Brush size", title: "Brush size ([ and ])" });
  const radiusText = h("span", { class: "small", text: `${editor.brushRadius}px` });
  radius.addEventListener("input", () => editor.setBrushRadius(Number(radius.value)));
  editor.on("brush", (r) => { radius.value = String(r); radiusText.textContent = `${r}px`; });
  const zoomText = h("span", { class: "zoom-text", "data-testid": "zoom" });
  const zoomOut = h("button", { type: "button", class: "icon-btn", title: "Zoom out (−)", "aria-label": "Zoom out" }, icon("zoomOut"));
  const zoomIn = h("button", { type: "button", class: "icon-btn", title: "Zoom in (+)", "aria-label": "Zoom in" }, icon("zoomIn"));
  const fitBtn = h("button", { type: "button", class: "icon-btn", title: "Fit to window (0)", "aria-label": "Fit to window" }, icon("fit"));
  zoomOut.addEventListener("click", () => editor.zoomBy(1 / 1.25));
  zoomIn.addEventListener("click", () => editor.zoomBy(1.25));
  fitBtn.addEventListener("click", () => editor.fit());
  toolbar.append(
    h("div", { class: "tool-group brush-size" }, h("span", { class: "small muted", text: "Brush" }), radius, radiusText),
    h("div", { class: "tool-group zoom" }, zoomOut, zoomText, zoomIn, fitBtn));
  editor.on("tool", (name) => {
    toolbar.classList.toggle("sizing", name === "brush" || name === "eraser"); // the brush size shows only then
    for (const [n, b] of Object.entries(toolButtons)) {
      b.classList.toggle("active", n === name);
      b.setAttribute("aria-pressed", String(n === name));
    }
    hint.textContent = TOOLS[name].hint;
  });

  // --- side panels --------------------------------------------------------------------------------------------
  // time on this image, for the annotator as for the reviewer: what earlier saves recorded + this visit's active time
  let savedTime = 0;
  const visitClock = new ActivityClock();
  const timeText = h("span", { class: "muted small", "data-testid": "image-time", title: "Active time on this image (all saves, and this visit)" });
  const showTime = () => { timeText.textContent = `${formatDuration(savedTime + visitClock.total)} on this image`; };
  const timeTimer = setInterval(showTime, 15_000);
  disposers.push(() => clearInterval(timeTimer));
  const model = modelPanel({ api, imageId, store });
  topbar.insertBefore(model.topButton, undoBtn); // visible on small screens, unlike the panel's button
  const viewTools = viewPanel({ view, store, editor, taxonomy, imageId, notify: (msg, kind) => toast(msg, kind || "info") });
  sidebar.append(regionPanel({ editor, store, taxonomy }), regionsPanel({ editor, store, taxonomy }), tagsPanel({ store, taxonomy, view }), model.panel, viewTools.panel);
  if (!agreement) {
    const review = reviewPanel({ api, app, imageId, meta, autosave, onStatus: (s) => setStatus(s) });
    if (meta.status !== "new") sidebar.prepend(reviewInfoPanel({ api, imageId, editor, store, taxonomy, onInfo: (info) => { savedTime = info.time_spent_ms || 0; showTime(); } }));
    if (review) sidebar.prepend(review);
  }

  // --- status bar ---------------------------------------------------------------------------------------------
  const cursorText = h("span", { class: "mono", "data-testid": "cursor" });
  const hint = h("span", { class: "hint" });
  const drawInfo = h("span", { class: "mono" });
  const pictureNote = h("span", { class: "muted small", "data-testid": "picture-level", text: "Loading the picture…" });
  statusbar.append(cursorText, h("span", { class: "sep" }), drawInfo, pictureNote, timeText, h("span", { class: "spacer" }), hint);
  showTime();
  editor.on("cursor", (p) => { cursorText.textContent = p ? `x ${p[0].toFixed(1)}  y ${p[1].toFixed(1)}` : ""; });
  editor.on("view", (vp) => { zoomText.textContent = `${Math.round(vp.scale * 100)}%`; });
  editor.on("draft", (n) => { drawInfo.textContent = n ? `${n} vertices · Enter closes · Backspace removes last · Esc cancels` : ""; });
  editor.on("activity", () => { clock.touch(); visitClock.touch(); });
  editor.on("image-loaded", (level) => {
    if (globalThis.performance && performance.mark) performance.mark(level === "thumb" ? "inklabel:first-paint" : "inklabel:photo");
    pictureNote.textContent = level === "thumb" ? "Preview shown; loading the full picture…" : level === "original" ? "Original resolution" : "";
  });
  editor.setTool("select");
  const queued = app.queueItem && app.queueItem.image_id === imageId ? app.queueItem : null;
  if (queued && queued.reason) {
    const why = h("span", { class: "muted small queue-reason", "data-testid": "queue-reason", title: `Why the queue chose this image: ${queued.reason}`, text: plainReason(queued) });
    statusbar.insertBefore(why, hint);
  }

  // --- read-only: say why and who can change it, instead of accepting edits the server refuses -----------------
  const access = editAccess({ meta, user: app.user, agreement });
  let refusedAt = 0;
  store.onRefused = () => {
    if (Date.now() - refusedAt > 3000) toast(`Not changed: ${access.reason || "this image is read-only"}`, "warn");
    refusedAt = Date.now();
  };
  function setReadOnly(on) {
    store.readOnly = on;
    view.setOption("readOnly", on);
    page.classList.toggle("read-only", on);
    submitBtn.hidden = on || (isReviewer(app.user) && meta.status === "submitted" && !agreement);
    model.topButton.disabled = on;
  }
  if (!access.editable) page.insertBefore(readOnlyBanner(access, () => setReadOnly(false)), body);
  setReadOnly(!access.editable);

  function setStatus(s) {
    meta.status = s;
    statusBadge.dataset.status = s;
    statusBadge.textContent = s.replace("_", " ");
  }

  // --- load the document, offer back unsaved work -------------------------------------------------------------
  store.load(doc);
  autosave.start(doc);
  const draft = autosave.findDraft(doc);
  if (draft && store.readOnly && !access.override) {
    autosave.clearDraft(); // it can never be saved: say so once instead of offering it on every visit
    toast("Changes kept in this browser from an earlier visit were dropped: this image is read-only for you.", "warn", 8000);
  } else if (draft) {
    const choice = await restoreDialog(draft, doc.version || 0);
    if (choice === "restore") {
      const { conflicts } = autosave.restoreDraft(draft, doc);
      toast(conflicts.length ? `Restored; ${conflicts.length} region(s) had changed on the server too (yours kept).` : "Your unsaved changes are back.", "ok");
    } else if (choice === "discard") {
      autosave.clearDraft();
    }
  }
  if (model.autoPrefill() && !store.size && !store.readOnly) {
    const cached = await cachedPrefill;
    if (cached && !store.size) model.show(cached, { quiet: true });
    else if (!store.size) model.prefill({ quiet: true });
  }

  // --- actions ------------------------------------------------------------------------------------------------
  function doUndo() {
    try {
      if (!undo.undo()) toast("Nothing to undo.", "info", 1500);
    } catch (err) {
      toast("Undo history was reset after the document changed on the server.", "warn");
    }
  }

  function doRedo() {
    try {
      if (!undo.redo()) toast("Nothing to redo.", "info", 1500);
    } catch (err) {
      toast("Redo history was reset after the document changed on the server.", "warn");
    }
  }

  async function resolveConflict() {
    const result = await conflictDialog(autosave, taxonomy);
    if (!result) return;
    if (result.choice === "mine") {
      toast(result.conflicts.length ? `Your changes were re-based; ${result.conflicts.length} region(s) changed on both sides (yours kept).` : "Your changes were re-based on the new version.", "ok");
    } else toast("Now showing the server's version. Ctrl+Z brings yours back.", "info");
  }
  autosave.onStatus((s) => {
    if (s.status === "conflict" && !s._dialogShown) {
      s._dialogShown = true;
      resolveConflict().finally(() => { s._dialogShown = false; });
    }
    if (s.status === "error" && s.lastError && s.lastError.status === 422) {
      const idx = s.lastError.details && s.lastError.details.region;
      const saved = store.all().filter((r) => !r.suggested);
      if (typeof idx === "number" && saved[idx]) editor.select(saved[idx].id, { reveal: true });
      toast(`The server refused the save: ${s.lastError.message}`, "error", 8000);
      s.lastError = null;
    } else if (s.status === "error" && s.lastError && (s.lastError.status === 403 || s.lastError.status === 409)) {
      // the workflow's rules: someone else holds the image, it is submitted, an agreement copy is open…
      toast(`Not saved: ${s.lastError.message} Your changes are kept on this computer.`, "error", 10000);
      s.lastError = null;
    }
  });

  /** Ask the server's assist; the result is a new region, or replaces region `replace` (a box becoming a mask). */
  async function runAssist(req, { replace = null } = {}) {
    const busyText = { wand: "Growing a region from that point…", click: "Segmenting from your clicks…" }[req.tool] || "Finding the tattoo in the box…";
    const done = toast(busyText, "info", 0);
    try {
      const resp = await api.post(`/images/${imageId}/assist`, req);
      if (!resp || !resp.geometry) throw new Error((resp && resp.note) || "Nothing found there: no ink stands out from the skin. Try a tighter box, or draw it.");
      if (resp.vertices_before > resp.vertices_after && req.tool !== "click") {
        toast(`${resp.vertices_after} vertices (simplified at ${resp.simplify_tolerance} px from ${resp.vertices_before}; Simplify in the region panel goes further).`, "info", 3500);
      }
      if (replace && store.has(replace)) {
        store.update(replace, { kind: "mask", geometry: roundGeometry(resp.geometry), source: "assist" });
        editor.select(replace);
        return replace;
      }
      const r = store.create({ geometry: roundGeometry(resp.geometry), style: resp.style || null, motifs: [], source: "assist" });
      editor.select(r.id);
      return r.id;
    } catch (err) {
      toast(err.status === 404 || err.status === 405 ? "Box assist and the wand are not available on this server yet." : err.message, "warn", 7000);
      return null;
    } finally {
      done();
    }
  }

  let submitting = false;
  async function submitAndNext() {
    if (submitting) return;
    if (!agreement && isReviewer(app.user) && meta.status === "submitted") {
      await app.openNextReview({ after: imageId }); // a reviewer decides in the review panel; Ctrl+Enter moves on
      return;
    }
    if (store.readOnly) {
      await app.openNext({ after: imageId });
      return;
    }
    submitting = true;
    submitBtn.disabled = true;
    try {
      const checked = agreement ? { overrides: [] } : await submitChecksDialog(store, taxonomy, { select: (id) => editor.select(id, { reveal: true }) });
      if (!checked) return;
      if (!(await autosave.flush())) {
        if (autosave.status === "conflict") await resolveConflict();
        else toast(`Not submitted: the latest changes are not on the server yet (${autosave.status}). They are kept here.`, "error", 7000);
        return;
      }
      if (agreement) {
        if (!(await autosave.finalize({ complete: true }))) {
          toast(`Not completed: ${autosave.message || autosave.status}.`, "error", 7000);
          return;
        }
        toast("Agreement copy complete.", "ok", 2500);
      } else if (meta.status === "submitted" || meta.status === "accepted") {
        toast(`Already ${meta.status}; your changes are saved.`, "info", 2500);
      } else {
        if (checked.overrides.length) await api.post(`/images/${imageId}/submit-checks`, { overrides: checked.overrides });
        await api.post(`/images/${imageId}/submit`, {});
        setStatus("submitted");
        toast("Submitted for review.", "ok", 2500);
      }
      await app.openNext({ after: imageId });
    } catch (err) {
      toast(`Not submitted: ${err.message}`, "error", 7000);
    } finally {
      submitting = false;
      submitBtn.disabled = false;
    }
  }

  function selectRelative(step) {
    const ids = store.order.filter((id) => !editor.isHidden(id));
    if (!ids.length) return;
    const i = ids.indexOf(editor.selectedId);
    const next = ids[(i + step + ids.length) % ids.length] || ids[0];
    editor.select(next, { reveal: true });
  }

  function boxToMask() {
    const r = editor.selected;
    if (!r || r.kind !== "box") { toast("Select a box region first (drawn with N); M turns it into a mask.", "info"); return; }
    if (store.readOnly) { store.onRefused(); return; }
    runAssist({ tool: "box", box: boxCorners(r.geometry) }, { replace: r.id });
  }

  function acceptSelectedSuggestion() {
    const r = editor.selected;
    if (r && r.suggested) store.update(r.id, { suggested: false });
    else toast("Select a suggested region first (Tab cycles through regions).", "info");
  }

  // --- keyboard -----------------------------------------------------------------------------------------------
  function onKeyDown(ev) {
    if (document.querySelector("dialog[open]")) return;
    const ctrl = ev.ctrlKey || ev.metaKey;
    const k = ev.key;
    clock.touch();
    visitClock.touch();
    if (ctrl && k === "Enter") { ev.preventDefault(); submitAndNext(); return; }
    if (ctrl && (k === "s" || k === "S")) { ev.preventDefault(); autosave.flush(); return; }
    if (isTyping(ev.target)) {
      if (k === "Escape") ev.target.blur();
      return;
    }
    // Tab, Space and Enter keep their usual meaning on buttons and links (keyboard navigation)
    const onControl = ev.target instanceof Element && ev.target.closest("button, a, [role=option], summary") && !ev.target.closest(".stage");
    if (onControl && (k === "Tab" || k === " " || k === "Enter")) return;
    if (k === " ") {
      ev.preventDefault();
      if (!editor.spaceHeld) { editor.spaceHeld = true; editor.wrap.classList.add("space-pan"); }
      return;
    }
    if (editor.toolKey(ev)) { ev.preventDefault(); return; }
    if (ctrl && !ev.altKey) {
      if (k === "z" || k === "Z") { ev.preventDefault(); if (ev.shiftKey) doRedo(); else doUndo(); return; }
      if (k === "y" || k === "Y") { ev.preventDefault(); doRedo(); return; }
      if (k === "c" || k === "C") { ev.preventDefault(); viewTools.copy(); return; }
      if (k === "v" || k === "V") { ev.preventDefault(); viewTools.paste(); return; }
      return;
    }
    if (k === "?") { ev.preventDefault(); showShortcutSheet(taxonomy); return; }
    if (k === "Escape") {
      if (editor.toolName !== "select") editor.setTool("select");
      else editor.select(null);
      return;
    }
    if (k === "+" || k === "=") { editor.zoomBy(1.25); return; }
    if (k === "-" || k === "_") { editor.zoomBy(1 / 1.25); return; }
    if (k === "0" && !ev.altKey && !ev.shiftKey) { editor.fit(); return; }
    const style = taxonomy.styleForEvent(ev);
    if (style && (ev.altKey || ev.code !== "Digit0")) {
      ev.preventDefault();
      const r = editor.selected;
      if (!r) toast("Select a region first, then press its style key.", "info");
      else store.update(r.id, { style });
      return;
    }
    if (ev.altKey) return;
    const lower = k.length === 1 ? k.toLowerCase() : k;
    const toolName = !ev.shiftKey && toolForKey(k);
    if (toolName) { editor.setTool(toolName); return; }
    if (lower === "v") { editor.toggleAllHidden(); return; }
    if (lower === "m") { boxToMask(); return; }
    if (lower === "l") { view.setOption("labels", !view.options.labels); return; }
    if (k === "[") { editor.setBrushRadius(editor.brushRadius / 1.2); return; }
    if (k === "]") { editor.setBrushRadius(editor.brushRadius * 1.2); return; }
    if (k === "Tab") {
      // on the canvas Tab walks through the regions; past the last one (Shift+Tab: before the first, or with none
      // selected) it moves on as usual — to the panels, where the region list is a listbox of its own (arrow keys)
      // — so the keyboard never gets stuck in the canvas
      const onStage = document.activeElement === editor.svgEl;
      const ids = store.order.filter((id) => !editor.isHidden(id));
      const i = ids.indexOf(editor.selectedId);
      const leaving = ev.shiftKey ? i <= 0 : i === ids.length - 1;
      if (onStage && ids.length && !leaving) {
        ev.preventDefault();
        selectRelative(ev.shiftKey ? -1 : 1);
      }
      return;
    }
    if (lower === "a") { if (ev.shiftKey) model.acceptAll(); else acceptSelectedSuggestion(); return; }
    if (lower === "r") {
      const r = editor.selected;
      if (r && r.suggested) store.remove(r.id);
      return;
    }
    if (k === "Delete" || k === "Backspace") {
      ev.preventDefault();
      if (editor.toolName === "select" && editor.tools.select.deleteSelectedVertex()) return;
      const r = editor.selected;
      if (!r) return;
      if (editor.isLocked(r.id)) { toast("The region is locked; unlock it to delete it.", "warn"); return; }
      store.remove(r.id);
      toast("Region deleted (Ctrl+Z brings it back).", "info", 2000);
    }
  }
  function onKeyUp(ev) {
    if (ev.key === " ") {
      editor.spaceHeld = false;
      editor.wrap.classList.remove("space-pan");
      if (!isTyping(ev.target)) ev.preventDefault();
    }
  }
  function onBlur() {
    editor.spaceHeld = false;
    editor.wrap.classList.remove("space-pan");
  }
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", onBlur);
  disposers.push(() => {
    window.removeEventListener("keydown", onKeyDown);
    window.removeEventListener("keyup", onKeyUp);
    window.removeEventListener("blur", onBlur);
  });

  // --- connection and leaving ---------------------------------------------------------------------------------
  const onOnline = () => autosave.retry();
  window.addEventListener("online", onOnline);
  disposers.push(() => window.removeEventListener("online", onOnline));
  const onBeforeUnload = (ev) => {
    if (!autosave.dirty) return;
    autosave.writeDraft();
    ev.preventDefault();
    ev.returnValue = "";
  };
  const onPageHide = () => { if (autosave.dirty) autosave.writeDraft(); };
  window.addEventListener("beforeunload", onBeforeUnload);
  window.addEventListener("pagehide", onPageHide);
  disposers.push(() => {
    window.removeEventListener("beforeunload", onBeforeUnload);
    window.removeEventListener("pagehide", onPageHide);
  });
  const lease = app.startLease ? app.startLease(imageId, () => clock.last !== null && Date.now() - clock.last < 5 * 60_000) : null;
  if (lease) disposers.push(lease);

  editor.svgEl.focus({ preventScroll: true });

  return {
    /** Save before going elsewhere; if that fails the draft stays in this browser and is offered back later. */
    async leave() {
      viewTools.remember();
      const ok = await autosave.flush();
      if (!ok && autosave.dirty) {
        autosave.writeDraft();
        toast("Your latest changes could not be saved yet; they are kept in this browser and offered when you reopen the image.", "warn", 8000);
      }
      return true;
    },
    dispose() {
      for (const d of disposers) d();
      autosave.dispose();
      undo.dispose();
      editor.dispose();
      if (window.inklabel && window.inklabel.store === store) delete window.inklabel;
    },
  };
}
