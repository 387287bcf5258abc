// Validation overlays of a segmenter: a few validation images with the predicted mask (cyan) over the true one
// (yellow), from GET /models/<id>/samples (the model runs on the server; this only draws).

import { h, svg } from "../dom.js";
import { fmtNum } from "./common.js";

/** SVG path data of a GeoJSON Polygon / MultiPolygon (holes as inner rings; fill-rule evenodd). */
export function geoPath(geometry) {
  if (!geometry) return "";
  const polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
  return polys.map((rings) => rings.map((ring) => "M" + ring.map(([x, y]) => `${x} ${y}`).join("L") + "Z").join("")).join("");
}

function sample(item) {
  const view = svg("svg", { viewBox: `0 0 ${item.width} ${item.height}`, class: "ov-svg", preserveAspectRatio: "xMidYMid meet" },
    svg("image", { href: item.display_url, x: 0, y: 0, width: item.width, height: item.height }),
    item.truth.map((g) => svg("path", { d: geoPath(g), class: "ov-truth", "fill-rule": "evenodd" })),
    item.predicted ? svg("path", { d: geoPath(item.predicted), class: "ov-pred", "fill-rule": "evenodd" }) : null);
  return h("figure", { class: "ov-figure", "data-testid": "overlay" }, view,
    h("figcaption", { class: "small" }, h("a", { href: `#/image/${item.image_id}`, text: `image ${item.image_id}` }), ` · IoU ${fmtNum(item.iou)}`));
}

export function overlayGallery(api, model) {
  const host = h("div", { class: "overlays" }, h("p", { class: "muted small", text: "Running the model on validation images…" }));
  api.get(`/models/${model.id}/samples?limit=4`).then((data) => {
    host.replaceChildren(...(data.items.length ? data.items.map(sample) : [h("p", { class: "muted small", text: `No validation images to show: ${data.note || "none found"}.` })]));
  }).catch((err) => host.replaceChildren(h("p", { class: "form-error", text: `Could not load the overlays: ${err.message}` })));
  return host;
}
