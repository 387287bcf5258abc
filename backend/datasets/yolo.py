"""YOLO: segmentation labels out (YOLO-seg, `yolo/`), box and polygon labels in.

Export layout (what Ultralytics reads; pass it the absolute path of `yolo/data.yaml`):

    yolo/data.yaml                      train/val/test folders and the class names (one class: tattoo)
    yolo/images/{split}/<sha256>.jpg    the same bytes as images/{split}/ (YOLO finds labels by path)
    yolo/labels/{split}/<sha256>.txt    one line per polygon part: `0 x1 y1 x2 y2 ...`, coordinates / image size

**Holes.** A YOLO-seg line is a single ring, so a polygon with holes is written as one *bridged* ring: the outer
ring, a zero-width cut to each hole, the hole walked the other way round, and back along the cut. Filling it with
either the even-odd or the non-zero rule (OpenCV's fillPoly, as Ultralytics does) leaves the holes empty; only the
one-pixel line of the cut may be drawn. The importer turns such rings back into polygons with holes (geometry's
repair). A MultiPolygon region becomes one line per part. Styles are not YOLO classes (see COCO / LabelMe for
them).

Import reads both YOLO boxes (`class cx cy w h`) and YOLO-seg lines (`class x1 y1 ...`), all relative to the image
size (0..1); class names come from `data.yaml` (names), `classes.txt` or `obj.names` when present.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

CLASS_NAMES = ("tattoo",)
DECIMALS = 6


def _signed_area(ring: list) -> float:
    pts = np.asarray(ring, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _open_ring(ring: list) -> list[list[float]]:
    ring = [list(map(float, p)) for p in ring]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    return ring


def bridged_ring(polygon: list) -> list[list[float]]:
    """One ring (not closed) for a GeoJSON polygon [outer, hole, ...]: holes joined to the outline by cuts.

    Holes are walked against the outer ring's direction, so the cut edges cancel and the holes stay empty.
    Each hole is joined at its left-most vertex to the nearest vertex of the ring built so far.
    """
    ring = _open_ring(polygon[0])
    outer_sign = math.copysign(1.0, _signed_area(ring))
    for raw_hole in polygon[1:]:
        hole = _open_ring(raw_hole)
        if len(hole) < 3:
            continue
        if math.copysign(1.0, _signed_area(hole)) == outer_sign:
            hole = hole[::-1]
        hole_pts = np.asarray(hole)
        j = int(np.argmin(hole_pts[:, 0]))
        ring_pts = np.asarray(ring)
        i = int(np.argmin(((ring_pts - hole_pts[j]) ** 2).sum(axis=1)))
        ring = ring[:i + 1] + hole[j:] + hole[:j + 1] + ring[i:]
    return ring


def geometry_rings(geojson: dict) -> list[list[list[float]]]:
    """One bridged ring per polygon part of a region."""
    polygons = [geojson["coordinates"]] if geojson["type"] == "Polygon" else geojson["coordinates"]
    return [bridged_ring(poly) for poly in polygons]


def _fmt(value: float) -> str:
    text = f"{min(max(value, 0.0), 1.0):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return text or "0"


def label_lines(regions: list[dict], width: int, height: int, classes: list[int] | None = None) -> str:
    lines = []
    for k, region in enumerate(regions):
        cls = classes[k] if classes else 0
        for ring in geometry_rings(region["geometry"]):
            coords = " ".join(f"{_fmt(x / width)} {_fmt(y / height)}" for x, y in ring)
            lines.append(f"{cls} {coords}")
    return "\n".join(lines) + ("\n" if lines else "")


def data_yaml(splits: list[str], names: list[str] | tuple[str, ...] = CLASS_NAMES) -> str:
    lines = [
        "# inklabel export, YOLO-seg. Polygons with holes are bridged rings (see the export's README in",
        "# backend/datasets/yolo.py). Train with e.g. `yolo segment train data=/abs/path/to/yolo/data.yaml`.",
    ]
    for split in ("train", "val", "test"):
        if split in splits:
            lines.append(f"{split}: images/{split}")
    lines.append("names:")
    lines += [f"  {i}: {name}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


# --- reading ------------------------------------------------------------------------------------------------------


def read_class_names(folder: Path) -> list[str] | None:
    """Class names from data.yaml / dataset.yaml (names: list or {index: name}), classes.txt or obj.names."""
    for name in ("data.yaml", "dataset.yaml"):
        path = folder / name
        if path.is_file() and path.stat().st_size < 1024 * 1024:
            import yaml

            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
            except yaml.YAMLError:
                continue
            names = data.get("names") if isinstance(data, dict) else None
            if isinstance(names, list):
                return [str(n) for n in names]
            if isinstance(names, dict):
                try:
                    return [str(names[k]) for k in sorted(names, key=int)]
                except (TypeError, ValueError):
                    continue
    for name in ("classes.txt", "obj.names"):
        path = folder / name
        if path.is_file() and path.stat().st_size < 1024 * 1024:
            return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return None


def parse_line(line: str) -> tuple[int, list[float]]:
    """(class index, numbers) of one label line; ValueError when it is not one."""
    parts = line.split()
    if len(parts) < 5:
        raise ValueError(f"expected 'class cx cy w h' or 'class x1 y1 x2 y2 ...', got {len(parts)} fields")
    try:
        cls = int(parts[0])
        numbers = [float(p) for p in parts[1:]]
    except ValueError:
        raise ValueError("fields must be numbers") from None
    if cls < 0:
        raise ValueError("negative class index")
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("coordinates must be finite numbers")
    if any(v < -0.01 or v > 1.01 for v in numbers):
        raise ValueError("coordinates must be relative to the image size (0..1)")
    return cls, numbers


def box_geometry(numbers: list[float], width: int, height: int) -> dict:
    cx, cy, w, h = numbers
    if w <= 0 or h <= 0:
        raise ValueError("box with no width or height")
    x0, x1 = (cx - w / 2) * width, (cx + w / 2) * width
    y0, y1 = (cy - h / 2) * height, (cy + h / 2) * height
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def polygon_geometry(numbers: list[float], width: int, height: int) -> dict:
    if len(numbers) % 2 or len(numbers) < 6:
        raise ValueError("a polygon needs an even number of coordinates, at least 3 points")
    ring = [[numbers[i] * width, numbers[i + 1] * height] for i in range(0, len(numbers), 2)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
