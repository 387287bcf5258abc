"""CVAT for images 1.1 XML (`cvat/{split}.xml`), written in pieces for the export and read back by the importer.

How the tool's data maps onto CVAT:

- one `<image id name width height>` per image; `name` is `<sha256>.jpg`, the file in `images/{split}/` (CVAT
  matches annotations to a task's images by file name);
- a region is a `<polygon label="tattoo">` per part (all parts of a region share a `group_id`), a box region is a
  `<box>`; `z_order` is the region's place in the document (later regions are drawn over earlier ones, as in the
  instance masks); `occluded="0"`, `source="manual"` (`"auto"` for model regions);
- the region's style, motifs (`;`-separated), id and source are the shape's `<attribute>`s, declared on the label
  `tattoo` in `<meta>` so CVAT offers the styles as a select;
- image styles and flags are `<tag label="...">` (each declared as a label);
- **holes**: CVAT polygons have none, so a polygon with holes is one bridged ring (see backend/datasets/yolo.py).

Reading accepts what CVAT writes: `<polygon>`, `<box>` (rotation 0 -> a box region; rotated -> a polygon),
`<ellipse>`, `<mask>` (CVAT's run-length mask in its box), `<tag>`; a shape's label that is a style key is its
style unless a `style` attribute says otherwise; shapes sharing a `group_id` form one region; regions are ordered
by `z_order`. `polyline`, `points`, skeletons and cuboids are not areas and are counted as ignored. `occluded` has
no place in the tool's regions and is counted (`ignored_names["occluded"]`).
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from typing import IO, Iterator
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from backend.datasets.boxes import DEFAULT_CLASS, box_corners, box_geometry, is_box
from backend.datasets.yolo import geometry_rings

NOT_AREAS = ("polyline", "points", "skeleton", "cuboid")
_A = quoteattr


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def image_element(index: int, name: str, width: int, height: int, regions: list[dict], tags: dict) -> str:
    """One `<image>` element (its text) with the image's shapes and tags."""
    out = [f'  <image id="{index}" name={_A(name)} width="{width}" height="{height}">\n']
    for z, region in enumerate(regions):
        attributes = "".join(
            f"      <attribute name={_A(key)}>{escape(str(value))}</attribute>\n" for key, value in (
                ("style", region.get("style") or ""), ("motifs", ";".join(region.get("motifs") or [])),
                ("region_id", region.get("id") or ""), ("source", region.get("source", "human"))))
        source = "auto" if region.get("source") == "model" else "manual"
        common = f'label="{DEFAULT_CLASS}" source="{source}" occluded="0" z_order="{z}"'
        if is_box(region):
            x0, y0, x1, y1 = box_corners(region["geometry"])
            out.append(f'    <box {common} xtl="{_num(x0)}" ytl="{_num(y0)}" xbr="{_num(x1)}" ybr="{_num(y1)}">\n'
                       f"{attributes}    </box>\n")
            continue
        for ring in geometry_rings(region["geometry"]):
            points = ";".join(f"{_num(x)},{_num(y)}" for x, y in ring)
            out.append(f'    <polygon {common} group_id="{z + 1}" points="{points}">\n{attributes}    </polygon>\n')
    for label in list(tags.get("styles", [])) + list(tags.get("flags", [])):
        out.append(f'    <tag label={_A(label)} source="manual"/>\n')
    out.append("  </image>\n")
    return "".join(out)


def meta_element(size: int, styles: list[str], tag_labels: list[str]) -> str:
    values = escape("\n".join([""] + list(styles)))
    attributes = (
        "<attributes>"
        f"<attribute><name>style</name><mutable>False</mutable><input_type>select</input_type>"
        f"<default_value></default_value><values>{values}</values></attribute>"
        "<attribute><name>motifs</name><mutable>False</mutable><input_type>text</input_type>"
        "<default_value></default_value><values></values></attribute>"
        "<attribute><name>region_id</name><mutable>False</mutable><input_type>text</input_type>"
        "<default_value></default_value><values></values></attribute>"
        "<attribute><name>source</name><mutable>False</mutable><input_type>select</input_type>"
        "<default_value>human</default_value><values>human\nmodel\nassist</values></attribute>"
        "</attributes>"
    )
    labels = [f"<label><name>{DEFAULT_CLASS}</name><type>any</type>{attributes}</label>"]
    labels += [f"<label><name>{escape(t)}</name><type>tag</type><attributes></attributes></label>" for t in tag_labels]
    return (f"  <meta><task><name>inklabel export</name><size>{size}</size><mode>annotation</mode>"
            f"<labels>{''.join(labels)}</labels></task></meta>\n")


class CvatSplitWriter:
    """One split's XML file, with the `<image>` elements kept in a temporary file until the end."""

    def __init__(self, styles: list[str], tag_labels: list[str]):
        self.styles = styles
        self.tag_labels = tag_labels
        self._images: IO[bytes] = tempfile.TemporaryFile("w+b")
        self.count = 0

    def add(self, element: str) -> None:
        self._images.write(element.encode())
        self.count += 1

    def chunks(self) -> Iterator[bytes]:
        yield (b'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
               + meta_element(self.count, self.styles, self.tag_labels).encode())
        self._images.seek(0)
        while chunk := self._images.read(1024 * 1024):
            yield chunk
        yield b"</annotations>\n"

    def close(self) -> None:
        self._images.close()


# --- reading ------------------------------------------------------------------------------------------------------


@dataclass
class CvatImage:
    name: str
    width: int | None
    height: int | None
    shapes: list[dict] = field(default_factory=list)  # {"kind", "label", "geometry", "attributes", "z", "group"}
    tags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _float(element, name: str) -> float:
    value = float(element.get(name))
    if not math.isfinite(value):
        raise ValueError(f"{name} is not a finite number")
    return value


def _points(text: str | None) -> list[list[float]]:
    if not text:
        raise ValueError("no points")
    ring = []
    for pair in text.split(";"):
        x, y = pair.split(",")
        ring.append([float(x), float(y)])
    if not all(math.isfinite(v) for p in ring for v in p):
        raise ValueError("points must be finite numbers")
    if len(ring) < 3:
        raise ValueError("a polygon needs at least 3 points")
    return ring + [ring[0]]


def _rotated(x0, y0, x1, y1, degrees: float) -> dict:
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a = math.radians(degrees)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    ring = [[cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a), cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a)]
            for x, y in corners]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def ellipse_geometry(cx, cy, rx, ry, degrees: float, n: int = 64) -> dict:
    a = math.radians(degrees)
    ring = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        ring.append([cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)])
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def mask_from_rle(rle: str, width: int, height: int) -> np.ndarray:
    """CVAT's `<mask rle>`: run lengths over the box, row by row, starting with a run of zeros."""
    counts = [int(v) for v in rle.split(",") if v.strip()]
    if any(c < 0 for c in counts) or sum(counts) != width * height:
        raise ValueError(f"the mask's run lengths cover {sum(counts)} pixels, its box {width * height}")
    flat = np.zeros(width * height, dtype=np.uint8)
    position, value = 0, 0
    for count in counts:
        if value:
            flat[position:position + count] = 1
        position += count
        value ^= 1
    return flat.reshape(height, width)


def _shape(element) -> dict:
    tag = element.tag
    rotation = float(element.get("rotation") or 0)
    if tag == "polygon":
        geometry, kind = {"type": "Polygon", "coordinates": [_points(element.get("points"))]}, "mask"
    elif tag == "box":
        x0, y0, x1, y1 = (_float(element, k) for k in ("xtl", "ytl", "xbr", "ybr"))
        if rotation % 360:
            geometry, kind = _rotated(x0, y0, x1, y1, rotation), "mask"
        else:
            geometry, kind = box_geometry(x0, y0, x1, y1), "box"
    elif tag == "ellipse":
        cx, cy, rx, ry = (_float(element, k) for k in ("cx", "cy", "rx", "ry"))
        if rx <= 0 or ry <= 0:
            raise ValueError("an ellipse needs positive radii")
        geometry, kind = ellipse_geometry(cx, cy, rx, ry, rotation), "mask"
    elif tag == "mask":
        left, top, width, height = (int(_float(element, k)) for k in ("left", "top", "width", "height"))
        if width <= 0 or height <= 0 or width * height > 100_000_000:
            raise ValueError("the mask's box has no size or is too large")
        geometry, kind = {"raster": mask_from_rle(element.get("rle") or "", width, height), "left": left,
                          "top": top}, "raster"
    else:
        raise ValueError(f"unknown shape <{tag}>")
    attributes = {a.get("name"): (a.text or "") for a in element.findall("attribute")}
    group = element.get("group_id")
    return {"kind": kind, "label": element.get("label"), "geometry": geometry, "attributes": attributes,
            "z": int(float(element.get("z_order") or 0)), "group": int(group) if group and group != "0" else None,
            "occluded": element.get("occluded") == "1"}


def read_document(data: bytes) -> list[CvatImage]:
    """The images of a CVAT for images 1.1 file; ValueError when it is not one. DTDs and entities are refused."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as err:
        raise ValueError(f"refused XML: {type(err).__name__}") from None
    except Exception as err:  # ParseError and its kin
        raise ValueError(f"not well-formed XML: {err}") from None
    if root.tag != "annotations":
        raise ValueError("not a CVAT for images file (the root element is not <annotations>)")
    if root.find("track") is not None:
        raise ValueError("this is CVAT for video (tracks); export the task as 'CVAT for images 1.1'")
    images = []
    for position, element in enumerate(root.iter("image")):
        name = element.get("name") or ""
        try:
            width, height = int(element.get("width")), int(element.get("height"))
        except (TypeError, ValueError):
            width = height = None
        image = CvatImage(name=name or f"image #{position}", width=width, height=height)
        for child in element:
            if child.tag == "tag":
                image.tags.append(child.get("label") or "")
            elif child.tag in NOT_AREAS:
                image.ignored.append(f"<{child.tag}>")
            else:
                try:
                    image.shapes.append(_shape(child))
                except (ValueError, TypeError) as err:
                    image.problems.append(f"<{child.tag}> label {child.get('label')!r}: {err}")
        images.append(image)
    return images


def is_cvat(data: bytes) -> bool:
    head = data[:4096].lstrip()
    return b"<annotations" in head


__all__ = ["CvatImage", "CvatSplitWriter", "image_element", "is_cvat", "read_document", "mask_from_rle"]
