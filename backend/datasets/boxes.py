"""Box regions in formats out and in, and the class list shared by every format of one export.

**Boxes.** A region may carry `"kind": "box"` (default `"mask"`): its geometry is a GeoJSON Polygon whose single
ring is the axis-aligned rectangle [[x0,y0],[x1,y0],[x1,y1],[x0,y1],[x0,y0]] in image pixels. Importers of box
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

from ..annotations import REGION_KEYS

BOX = "box"
MASK = "mask"
BOX_CSV_COLUMNS = ("split", "image", "image_id", "region_id", "style", "x0", "y0", "x1", "y1")
DEFAULT_CLASS = "tattoo"


def is_box(region: dict) -> bool:
    return region.get("kind", MASK) == BOX


def kind_supported() -> bool:
    """Whether the data model stores `kind` (the box-regions change); without it box regions are saved as masks."""
    return "kind" in REGION_KEYS


def box_geometry(x0: float, y0: float, x1: float, y1: float) -> dict:
    x0, x1 = sorted((float(x0), float(x1)))
    y0, y1 = sorted((float(y0), float(y1)))
    if not (x1 > x0 and y1 > y0):
        raise ValueError("a box needs a width and a height")
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def box_region(region: dict) -> dict:
    """`region` marked as a box when the data model knows the kind."""
    if kind_supported():
        region["kind"] = BOX
    return region


def box_corners(geometry: dict) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a box region's rectangle (or of any geometry's outer rings)."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    xs = [p[0] for poly in polygons for p in poly[0]]
    ys = [p[1] for poly in polygons for p in poly[0]]
    return min(xs), min(ys), max(xs), max(ys)


def class_names(mode: str, trainable: list[str] | tuple[str, ...]) -> list[str]:
    return [DEFAULT_CLASS] + ([s for s in trainable if s != DEFAULT_CLASS] if mode == "styles" else [])


def class_index(region: dict, names: list[str]) -> int:
    style = region.get("style")
    return names.index(style) if style and style in names[1:] else 0
