// Brightness, contrast and gamma of the photo only (regions keep their colours): one SVG filter on the <image>,
// so fine line on dark skin can be seen without touching the file.

import { svg } from "../dom.js";

export function photoFilter() {
  const channels = (cls, attrs) => ["feFuncR", "feFuncG", "feFuncB"].map((f) => svg(f, { class: cls, ...attrs }));
  return svg("filter", { id: `photo-filter-${Math.random().toString(36).slice(2, 8)}`, "color-interpolation-filters": "sRGB" },
    svg("feComponentTransfer", {}, channels("lin", { type: "linear", slope: 1, intercept: 0 })),
    svg("feComponentTransfer", {}, channels("gam", { type: "gamma", amplitude: 1, exponent: 1, offset: 0 })));
}

/** out = ((in − 0.5) · contrast + 0.5) · brightness, then ^(1 / gamma); no filter at all when all are 1. */
export function applyPhotoFilter(filter, imageEl, { brightness, contrast, gamma }) {
  if (brightness === 1 && contrast === 1 && gamma === 1) {
    imageEl.removeAttribute("filter");
    return;
  }
  const slope = contrast * brightness, intercept = (0.5 - 0.5 * contrast) * brightness;
  for (const f of filter.querySelectorAll(".lin")) {
    f.setAttribute("slope", String(slope));
    f.setAttribute("intercept", String(intercept));
  }
  for (const f of filter.querySelectorAll(".gam")) f.setAttribute("exponent", String(1 / gamma));
  imageEl.setAttribute("filter", `url(#${filter.id})`);
}
