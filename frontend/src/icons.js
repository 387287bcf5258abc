// Line icons (24×24, stroke = currentColor), built as SVG elements: no icon font, no network.

import { svg } from "./dom.js";

const P = {
  select: ["M5 3l14 8-6 1.5L10 19z"],
  polygon: ["M4 8l7-5 9 5-3 11H7z"],
  hole: ["M3 6l9-4 9 4v12l-9 4-9-4z", "M9 10h6v5H9z"],
  brush: ["M14 4l6 6-8 8-6-6z", "M6 12c-3 1-3 5-4 8 3-1 7-1 8-4"],
  eraser: ["M15 4l5 5-10 10H5l-2-2 12-13z", "M9 19h11"],
  rect: ["M4 6h16v12H4z"],
  click: ["M9 9l10 4-4 1.5L13 19z", "M5 3v3M2 5h3M7 4l1.5 1.5"],
  box: ["M4 4h4M16 4h4v4M20 16v4h-4M8 20H4v-4M4 8V4", "M9 9c2-2 5-1 6 1s-1 5-3 5-4-3-3-6z"],
  wand: ["M4 20L16 8", "M15 4v3M18 6h3M19 10l1.5 1.5M12 5l-1.5-1.5M20 3l-1 1"],
  undo: ["M9 14L4 9l5-5", "M4 9h10a6 6 0 010 12h-3"],
  redo: ["M15 14l5-5-5-5", "M20 9H10a6 6 0 000 12h3"],
  zoomIn: ["M11 4a7 7 0 110 14 7 7 0 010-14z", "M21 21l-5-5", "M8 11h6M11 8v6"],
  zoomOut: ["M11 4a7 7 0 110 14 7 7 0 010-14z", "M21 21l-5-5", "M8 11h6"],
  fit: ["M4 9V4h5M15 4h5v5M20 15v5h-5M9 20H4v-5"],
  keyboard: ["M2 6h20v12H2z", "M6 10h1M10 10h1M14 10h1M18 10h1M7 14h10"],
  back: ["M15 18l-6-6 6-6"],
  next: ["M5 12h14", "M13 6l6 6-6 6"],
};

export function icon(name, { size = 18, title } = {}) {
  const paths = P[name] || [];
  return svg("svg", { class: "icon", width: size, height: size, viewBox: "0 0 24 24", "aria-hidden": title ? undefined : "true", focusable: "false" },
    title ? svg("title", { text: title }) : null,
    paths.map((d) => svg("path", { d })));
}
