// The region list: select, hide/show, lock, delete; colour by style; global opacity; hide all (V).
// It is virtual: only the rows in view exist (fixed row height), re-rendered on the next frame after a
// change, so a 1,000-region image costs the same as a 10-region one. One delegated click listener.

import { h, clear } from "../dom.js";

const ROW_H = 30; // px, matches .region-row in app.css
const OVERSCAN = 6;

export function regionsPanel({ editor, store, taxonomy }) {
  const inner = h("div", { class: "region-list-inner" });
  const list = h("ul", { class: "region-list", "data-testid": "region-list", "aria-label": "Regions (arrow keys choose, Delete removes)", role: "listbox", tabindex: "0" }, inner);
  const count = h("span", { class: "count" });
  const opacity = h("input", { type: "range", min: 0, max: 100, value: Math.round(editor.opacity * 100), "aria-label": "Fill opacity", title: "Fill opacity of all regions" });
  opacity.addEventListener("input", () => editor.setOpacity(Number(opacity.value) / 100));
  const hideAll = h("button", { type: "button", class: "btn btn-small", title: "Hide / show all regions (V)" }, "Hide all");
  hideAll.addEventListener("click", () => editor.toggleAllHidden());
  let frame = 0;

  function rowFor(r, index) {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = taxonomy.color(r.style);
    const name = r.style ? taxonomy.label(r.style) : "No style";
    const hidden = editor.view.hidden.has(r.id);
    const locked = editor.isLocked(r.id);
    const eyeTitle = hidden ? "Show region" : "Hide region";
    const lockTitle = locked ? "Unlock region" : "Lock region (no edits until unlocked)";
    const li = h("li", {
      class: ["region-row", editor.selectedId === r.id && "selected", r.suggested && "suggested", !r.style && "unstyled", hidden && "is-hidden", locked && "is-locked"],
      "data-id": r.id, role: "option", "aria-selected": String(editor.selectedId === r.id),
    },
    swatch,
    h("span", { class: "name", text: `${index + 1}. ${name}${r.kind === "box" ? " · box" : ""}${r.suggested ? " · suggested" : ""}${r.motifs.length ? " · " + r.motifs.join(", ") : ""}` }),
    h("button", { type: "button", class: "icon-btn eye", "data-act": "eye", title: eyeTitle, "aria-label": eyeTitle, "aria-pressed": String(hidden) }, h("span", { class: hidden ? "i i-eye-off" : "i i-eye" })),
    h("button", { type: "button", class: "icon-btn lock", "data-act": "lock", title: lockTitle, "aria-label": lockTitle, "aria-pressed": String(locked) }, h("span", { class: locked ? "i i-lock" : "i i-unlock" })),
    h("button", { type: "button", class: "icon-btn del", "data-act": "del", title: "Delete region", "aria-label": "Delete region" }, h("span", { class: "i i-trash" })));
    li.style.top = `${index * ROW_H}px`;
    return li;
  }

  function render() {
    frame = 0;
    const n = store.size;
    inner.style.height = `${n * ROW_H}px`;
    list.style.height = `${Math.max(2, n) * ROW_H + 2}px`; // capped by max-height in CSS, then it scrolls
    const viewH = list.clientHeight || 10 * ROW_H;
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(n, Math.ceil((list.scrollTop + viewH) / ROW_H) + OVERSCAN);
    clear(inner);
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.append(rowFor(store.byId.get(store.order[i]), i));
    inner.append(frag);
    const all = store.all();
    const sug = all.filter((r) => r.suggested).length;
    count.textContent = `${all.length - sug}${sug ? ` + ${sug} suggested` : ""}`;
    list.classList.toggle("empty", n === 0);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  /** Render now (tests and the first paint read the rows synchronously after an edit). */
  function renderNow() {
    if (frame) cancelAnimationFrame(frame);
    render();
  }

  list.addEventListener("scroll", schedule, { passive: true });
  // reachable with Tab: arrow keys move the selection through the list, Home/End jump
  list.addEventListener("keydown", (ev) => {
    if (ev.target !== list || !store.size) return;
    const order = store.order;
    const i = order.indexOf(editor.selectedId);
    const to = { ArrowDown: i + 1, ArrowUp: i < 0 ? order.length - 1 : i - 1, Home: 0, End: order.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    ev.stopPropagation();
    editor.select(order[Math.max(0, Math.min(order.length - 1, to))], { reveal: true });
  });
  list.addEventListener("click", (ev) => {
    const li = ev.target.closest("li.region-row");
    if (!li) return;
    const id = li.dataset.id;
    const button = ev.target.closest("button");
    const act = button ? button.dataset.act : null;
    if (act === "eye") editor.setHidden(id, !editor.view.hidden.has(id));
    else if (act === "lock") editor.setLocked(id, !editor.isLocked(id));
    else if (act === "del") store.remove(id);
    else editor.select(id, { reveal: true });
  });

  store.subscribe((cs) => (cs.reset || cs.created.length || cs.deleted.length || store.size < 200 ? renderNow() : schedule()));
  editor.on("select", (id) => {
    if (id) {
      const top = store.indexOf(id) * ROW_H;
      if (top < list.scrollTop || top + ROW_H > list.scrollTop + list.clientHeight) list.scrollTop = top - list.clientHeight / 2;
    }
    renderNow();
  });
  editor.on("visibility", () => {
    hideAll.textContent = editor.allHidden ? "Show all" : "Hide all";
    hideAll.setAttribute("aria-pressed", String(editor.allHidden));
    renderNow();
  });
  editor.on("opacity", (v) => { opacity.value = String(Math.round(v * 100)); });
  requestAnimationFrame(render);
  render();
  return h("section", { class: "panel panel-grow", "aria-labelledby": "regions-title" },
    h("h2", { id: "regions-title" }, "Regions ", count),
    h("div", { class: "row tight" }, h("label", { class: "inline" }, "Opacity ", opacity), hideAll),
    list,
    h("p", { class: "muted small empty-note", text: "No regions yet." }));
}
