// The box tool (issue 21's weak labels, drawn fast): drag a rectangle and it becomes a region of kind "box".
// M on a selected box turns it into a mask with box assist (page.js); its corners drag as a rectangle (select.js).

import { BoxAssistTool } from "./assist.js";
import { boxGeometry } from "../../boxes.js";

export class BoxRegionTool extends BoxAssistTool {
  finish([x0, y0, x1, y1]) {
    const e = this.editor;
    const region = e.store.create({ kind: "box", geometry: boxGeometry(x0, y0, x1, y1), style: null, motifs: [], source: "human" });
    e.select(region.id);
  }
}
