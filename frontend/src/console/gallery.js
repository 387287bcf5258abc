// Low-concentration and flagged review: photos by predicted tattoo concentration (lowest first) or flagged first,
// paged; tick photos (shift-click ticks a range) and flag them as bad training examples / not tattoos, or send
// them back to the annotation queue.

import { h, toast } from "../dom.js";
import { query } from "../api.js";
import { pager, pct, select } from "./common.js";

const PER_PAGE = 60;
const ACTIONS = [
  ["bad_example", "Mark bad training example"],
  ["not_tattoo", "Mark not a tattoo"],
  ["requeue", "Send back to the queue"],
];

export async function render({ main, app, params, go }) {
  const { api, taxonomy } = app;
  const page = Math.max(1, parseInt(params.page || "1", 10) || 1);
  const below = params.below !== undefined && params.below !== "" ? Number(params.below) : null;
  const order = params.order === "flag" ? "flag" : "concentration";
  const selected = new Set();
  let lastIndex = null;

  const orderSel = select("order", [["concentration", "Lowest concentration first"], ["flag", "Flagged first"]], order);
  const flagSel = select("flag", [["", "Any flag or none"], ...taxonomy.flags.map((f) => [f.key, f.label])], params.flag || "");
  const lowOnly = h("input", { type: "checkbox", checked: below !== null, "data-testid": "below-only" });
  orderSel.setAttribute("aria-label", "Order");
  flagSel.setAttribute("aria-label", "Flag");
  const refilter = () => go({ order: orderSel.value, flag: flagSel.value, below: lowOnly.checked ? (below ?? 0.25) : "" });
  for (const el of [orderSel, flagSel, lowOnly]) el.addEventListener("change", refilter);

  const count = h("span", { class: "muted small", "data-testid": "selected-count", text: "0 selected" });
  const buttons = ACTIONS.map(([action, label]) => h("button", { type: "button", class: action === "requeue" ? "btn" : "btn btn-danger-quiet", disabled: true, "data-action": action }, label));
  const grid = h("ul", { class: "g-grid", "data-testid": "gallery", "aria-label": "Photos by concentration" });
  const pagerHost = h("div", {});
  const summary = h("p", { class: "muted small" });

  const updateSelection = () => {
    count.textContent = `${selected.size} selected`;
    for (const b of buttons) b.disabled = !selected.size;
    for (const li of grid.querySelectorAll("li[data-image-id]")) {
      const on = selected.has(Number(li.dataset.imageId));
      li.classList.toggle("selected", on);
      li.querySelector("input").checked = on;
    }
  };

  let items = [];
  const load = async () => {
    const data = await api.get("/dataset/concentration" + query({ order, below: below ?? "", flag: params.flag, page, per_page: PER_PAGE }));
    items = data.items;
    summary.textContent = `${data.total.toLocaleString()} photos${below !== null ? ` under ${Math.round(below * 100)} % tattoo` : ""}${params.flag ? ` flagged ${taxonomy.flagLabel(params.flag)}` : ""}; the search demotes photos under ${Math.round(data.threshold * 100)} %.`;
    grid.replaceChildren(...(items.length ? items.map((img, index) => {
      const box = h("input", { type: "checkbox", "aria-label": `Select image ${img.id}` });
      const li = h("li", { class: "g-card", "data-image-id": img.id },
        h("a", { class: "g-thumb", href: `#/image/${img.id}`, title: img.original_filename || `Image ${img.id}` },
          h("img", { src: img.thumb_url, alt: "", loading: "lazy", width: 256, height: 192 }),
          h("span", { class: "g-conc", text: img.concentration === null ? "no prediction" : `${pct(img.concentration)} tattoo` })),
        h("label", { class: "g-pick" }, box),
        h("div", { class: "g-meta" }, h("span", { class: "badge", "data-status": img.status, text: img.status.replace("_", " ") }),
          img.flags.map((f) => h("span", { class: "chip small flag", text: taxonomy.flagLabel(f) }))));
      box.addEventListener("click", (ev) => {
        const on = box.checked;
        const range = ev.shiftKey && lastIndex !== null ? items.slice(Math.min(lastIndex, index), Math.max(lastIndex, index) + 1) : [img];
        for (const it of range) on ? selected.add(it.id) : selected.delete(it.id);
        lastIndex = index;
        updateSelection();
      });
      return li;
    }) : [h("li", { class: "empty-state" }, h("p", { text: below !== null || params.flag ? "No photos match: clear the filters, or pre-fill the pool so photos get a concentration." : "No images yet." }))]));
    pagerHost.replaceChildren(pager({ page, perPage: PER_PAGE, total: data.total, onPage: (p) => go({ ...params, page: p }) }));
    updateSelection();
  };

  for (const b of buttons) {
    b.addEventListener("click", async () => {
      const ids = [...selected];
      for (const x of buttons) x.disabled = true;
      try {
        const r = await api.post("/dataset/bulk", { image_ids: ids, action: b.dataset.action });
        toast(`${r.changed.length} changed${r.unchanged.length ? `, ${r.unchanged.length} already so` : ""}.`, "ok");
        selected.clear();
        await load();
      } catch (err) {
        toast(`Could not apply: ${err.message}`, "error");
        updateSelection();
      }
    });
  }
  const selectPage = h("button", { type: "button", class: "btn btn-small", on: { click: () => {
    const all = items.every((i) => selected.has(i.id));
    for (const i of items) all ? selected.delete(i.id) : selected.add(i.id);
    updateSelection();
  } } }, "Select page");

  main.append(h("div", { class: "c-head" }, h("h1", { text: "Low concentration and flagged" }),
    h("div", { class: "inline" }, h("label", { class: "check" }, lowOnly, h("span", { text: "under the threshold only" })), orderSel, flagSel)),
  summary,
  h("div", { class: "bulkbar", role: "toolbar", "aria-label": "Bulk actions" }, selectPage, count, h("div", { class: "spacer" }), buttons),
  grid, pagerHost);
  await load();
  return () => {};
}
