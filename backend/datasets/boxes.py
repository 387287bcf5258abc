"""Box regions in formats out and in, and the class list shared by every format of one export.

**Boxes** (the data model: backend/core/boxes.py). A region may carry `"kind": "box"` (default `"mask"`): its geometry
is the axis-aligned rectangle [[x0,y0],[x1,y0],[x1,y1],[x0,y1],[x0,y0]] in image pixels. Importers of box
formats (YOLO boxes, COCO bbox-only annotations, CVAT `<box>`, Label Studio `rectanglelabels`) make box regions;
exports write them as the format's box (COCO bbox without segmentation, CVAT `<box>`, Label Studio rectangle,
LabelMe `rectangle`), list them in `boxes/labels.csv`, and leave them out of the masks and YOLO-seg labels (a box
is not an outline; drawn as a mask it would teach the segmenter rectangles). Crops use them as any region.

**Classes.** `class_names(mode, trainable)`: with `categories="tattoo"` (the default) one class, `tattoo`; with
`categories="styles"` class 0 is `tattoo` (no style, or a style that is not trainable) and then one class per
trainable style. COCO category id = class index + 1 = the value in the class-index mask PNG; YOLO's class index is
the class index itself.
"""
from __future__ import annotations

from backend.core.boxes import box_corners, is_box
from backend.core.boxes import box_geometry as _canonical

BOX_CSV_COLUMNS = ("split", "image", "image_id", "region_id", "style", "x0", "y0", "x1", "y1")
DEFAULT_CLASS = "tattoo"


def box_geometry(x0: float, y0: float, x1: float, y1: float) -> dict:
    """The canonical rectangle (backend/core/boxes.py) from two corners in any order; ValueError when it is flat."""
    x0, x1 = sorted((float(x0), float(x1)))
    y0, y1 = sorted((float(y0), float(y1)))
    if not (x1 > x0 and y1 > y0):
        raise ValueError("a box needs a width and a height")
    return _canonical(x0, y0, x1, y1)


def box_region(region: dict) -> dict:
    region["kind"] = "box"
    return region


def class_names(mode: str, trainable: list[str] | tuple[str, ...]) -> list[str]:
    return [DEFAULT_CLASS] + ([s for s in trainable if s != DEFAULT_CLASS] if mode == "styles" else [])


def class_index(region: dict, names: list[str]) -> int:
    style = region.get("style")
    return names.index(style) if style and style in names[1:] else 0
