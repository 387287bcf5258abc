// The review's diff overlay: the `then` regions dashed (removed red, changed orange, unchanged faint), the regions
// added since drawn solid green; above the regions, never hit by the pointer.

import { svg, clear } from "../dom.js";
import { pathData } from "../geometry.js";

export function drawCompare(layer, cmp) {
  clear(layer);
  if (!cmp) return;
  for (const r of cmp.then) {
    if (!r.geometry) continue;
    const k = cmp.diff.removed.includes(r.id) ? "removed" : cmp.diff.changed.includes(r.id) ? "changed" : "same";
    layer.append(svg("path", { class: `cmp cmp-${k}`, d: pathData(r.geometry), "data-kind": k }));
  }
  for (const r of cmp.now) {
    if (cmp.diff.added.includes(r.id)) layer.append(svg("path", { class: "cmp cmp-added", d: pathData(r.geometry), "data-kind": "added" }));
  }
}
