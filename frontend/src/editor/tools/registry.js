// Every tool of the editor, in one place. The tool bar, the key map and the "Tools" part of the shortcut sheet
// are built from this list; a tool is made by `create(ctx)` with the narrow context of tools/context.js, never
// the whole editor. `edits: true` tools change the document and are off in a read-only editor.

import { SelectTool } from "./select.js";
import { PolygonTool } from "./polygon.js";
import { BrushTool } from "./brush.js";
import { BoxAssistTool, WandTool } from "./assist.js";
import { BoxRegionTool } from "./boxregion.js";
import { ClickSegmentTool } from "./clickseg.js";

export const TOOL_REGISTRY = [
  { name: "select", label: "Select", key: "Esc", icon: "select", edits: false,
    hint: "Click a region to select it; drag a vertex to move it; click an edge to add a vertex; Alt-click or Delete removes one. Drag the background to pan.",
    sheet: "Select / edit tool (and cancel what is being drawn)",
    create: (ctx) => new SelectTool(ctx) },
  { name: "polygon", label: "Polygon", key: "P", icon: "polygon", edits: true,
    hint: "Click to add vertices; double-click, Enter or click the first vertex to close. Backspace or Ctrl+Z removes the last vertex, Esc cancels. Shift+Enter adds the shape as another part of the selected region.",
    sheet: "Polygon: click vertices; double-click, Enter or first vertex closes",
    create: (ctx) => new PolygonTool(ctx, { hole: false }) },
  { name: "hole", label: "Hole", key: "H", icon: "hole", edits: true,
    hint: "Draw a hole inside the selected region, like a polygon.",
    sheet: "Hole in the selected region",
    create: (ctx) => new PolygonTool(ctx, { hole: true }) },
  { name: "brush", label: "Brush", key: "B", icon: "brush", edits: true,
    hint: "Paint onto the selected region (or paint a new one). [ and ] change the size.",
    sheet: "Brush onto the selected region (or a new one)",
    create: (ctx) => new BrushTool(ctx, { erase: false }) },
  { name: "eraser", label: "Eraser", key: "E", icon: "eraser", edits: true,
    hint: "Erase from the selected region (or the one you start on). [ and ] change the size.",
    sheet: "Eraser on the selected region",
    create: (ctx) => new BrushTool(ctx, { erase: true }) },
  { name: "rect", label: "Box", key: "N", icon: "rect", edits: true,
    hint: "Drag a rectangle: a box region, the fast first pass (a weak label). M turns the selected box into a mask with box assist.",
    sheet: "Box region: drag a rectangle (M turns a selected box into a mask)",
    create: (ctx) => new BoxRegionTool(ctx) },
  { name: "box", label: "Box assist", key: "X", icon: "box", edits: true,
    hint: "Drag a box around a tattoo: the server finds the ink inside it and makes a region.",
    sheet: "Box assist: drag a box round a tattoo",
    create: (ctx) => new BoxAssistTool(ctx) },
  { name: "click", label: "Click", key: "C", icon: "click", edits: true,
    hint: "Click on the tattoo (Shift+click on what is not): the server segments it and refines with each click. Enter keeps the region, Esc drops it, Backspace takes the last click back.",
    sheet: "Click-to-segment: click on the tattoo, Shift+click off it; Enter keeps",
    create: (ctx) => new ClickSegmentTool(ctx) },
  { name: "wand", label: "Wand", key: "W", icon: "wand", edits: true,
    hint: "Click on ink: the server grows a region from that point.",
    sheet: "Wand: click on ink",
    create: (ctx) => new WandTool(ctx) },
];

export const TOOLS = Object.fromEntries(TOOL_REGISTRY.map((t) => [t.name, t]));

/** The tool a plain letter key picks (P, H, B, …), or null. */
export function toolForKey(key) {
  if (typeof key !== "string" || key.length !== 1) return null;
  const upper = key.toUpperCase();
  const t = TOOL_REGISTRY.find((tool) => tool.key === upper);
  return t ? t.name : null;
}

/** The sheet's rows for the tools: [[key, what], …]. */
export function toolSheetRows() {
  return TOOL_REGISTRY.map((t) => [t.key, t.sheet || t.label]);
}
