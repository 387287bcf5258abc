// The shortcut sheet (?): every key the editor answers to, styles from the taxonomy included.

import { h, dialog } from "../dom.js";
import { toolSheetRows } from "../editor/tools/registry.js";

export const SHORTCUTS = [
  ["Tools", [...toolSheetRows(), ["[ / ]", "Brush smaller / larger"]]],
  ["Drawing and editing", [
    ["Backspace / Ctrl+Z", "While drawing: remove the last vertex (Ctrl+Shift+Z puts it back)"],
    ["Shift+Enter", "Close the polygon as another part of the selected region"],
    ["Drag vertex", "Move it"],
    ["Click edge", "Insert a vertex"],
    ["Alt+click / Delete", "Remove a vertex"],
    ["Delete", "Delete the selected region (no vertex selected)"],
    ["Tab / Shift+Tab", "Next / previous region; past the last one Tab moves on to the panels"],
    ["A / Shift+A", "Accept the selected suggestion / all suggestions"],
    ["R", "Reject the selected suggestion"],
    ["M", "Turn the selected box into a mask (box assist)"],
  ]],
  ["View", [
    ["Wheel / pinch", "Zoom around the cursor"],
    ["+ / −", "Zoom in / out"],
    ["0", "Fit the image to the window"],
    ["Space+drag, middle drag", "Pan (or drag the background with the select tool)"],
    ["V", "Hide / show all regions"],
    ["L", "Region labels on the canvas"],
  ]],
  ["Document", [
    ["Ctrl+Z", "Undo"],
    ["Ctrl+Shift+Z / Ctrl+Y", "Redo"],
    ["Ctrl+S", "Save now (autosave runs anyway)"],
    ["Ctrl+C / Ctrl+V", "Copy the selected region / paste it (also on another image)"],
    ["Ctrl+Enter", "Submit and open the next image"],
    ["?", "This sheet"],
  ]],
];

export function showShortcutSheet(taxonomy) {
  const groups = SHORTCUTS.map(([title, rows]) => section(title, rows));
  const styleRows = taxonomy.styles
    .filter((s) => taxonomy.shortcutText(s.key))
    .map((s) => [taxonomy.shortcutText(s.key), s.label + (s.trainable === false ? " (not used for training)" : "")]);
  groups.push(section("Style of the selected region", styleRows, "styles"));
  return dialog({
    title: "Keyboard shortcuts",
    className: "shortcut-sheet",
    body: [h("div", { class: "sheet-grid" }, groups)],
    buttons: [{ label: "Close", value: true, kind: "primary" }],
  });
}

function section(title, rows, kind = "") {
  return h("section", { class: ["sheet-group", kind] },
    h("h3", { text: title }),
    h("dl", {}, rows.map(([keys, what]) => [
      h("dt", {}, keys.split(" / ").map((k, i) => [i ? " / " : null, h("kbd", { text: k })])),
      h("dd", { text: what }),
    ])));
}
