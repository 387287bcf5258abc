"""COCO instance segmentation (`coco/{split}.json`), written in pieces and read back by the importer.

How the tool's data maps onto COCO:

- one category, `{"id": 1, "name": "tattoo"}`: the segmenter's class. A region's **style and motifs are
  attributes** of its annotation: `"attributes": {"style": "japanese" | null, "motifs": [...], "region_id": ...,
  "source": "human" | "model" | "assist"}`, so a style change never renumbers categories and unstyled regions
  still train the segmenter. The taxonomy's styles are listed under `info.styles`.
- image ids are the tool's image ids (stable across exports); annotation ids are `image_id * 100000 + n` for the
  n-th region (1-based) of the image's document, stable while the document does not change.
- `segmentation`: polygons (`[[x1, y1, x2, y2, ...], ...]`, one list per part) for regions without holes; a
  region with holes is a compressed RLE (`{"size": [h, w], "counts": "..."}`) of the tool's own rasterisation,
  since COCO polygons cannot express holes. `iscrowd` is 0 either way.
- `area` is the region's area in square pixels (holes subtracted), `bbox` is `[x, y, width, height]`.
- each image entry carries `sha256`, `file_name` (`images/{split}/<sha256>.jpg`, relative to the export root),
  and `inklabel`: `{"status", "version", "tags": {"styles", "flags"}, "original_filename"}`.
"""
from __future__ import annotations

import json
import tempfile
from itertools import chain
from typing import IO, Any, Iterator

import numpy as np
import orjson

from backend.core.geometry import DEFAULT_MAX_VERTICES

CATEGORY = {"id": 1, "name": "tattoo", "supercategory": "tattoo"}
ANNOTATION_ID_STRIDE = 100_000
COORD_DECIMALS = 3


def has_holes(geojson: dict) -> bool:
    polygons = [geojson["coordinates"]] if geojson["type"] == "Polygon" else geojson["coordinates"]
    return any(len(poly) > 1 for poly in polygons)


def polygon_segmentation(geojson: dict) -> list[list[float]]:
    """COCO polygons: the outer ring of each part, flattened, without the closing point."""
    polygons = [geojson["coordinates"]] if geojson["type"] == "Polygon" else geojson["coordinates"]
    out = []
    for poly in polygons:
        ring = poly[0]
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring = ring[:-1]
        # flattened first: numpy reads a flat list of numbers several times faster than a list of pairs
        out.append(np.round(np.fromiter(chain.from_iterable(ring), np.float64), COORD_DECIMALS).tolist())
    return out


def rle_segmentation(full_mask_fortran: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(full_mask_fortran)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def annotation_entry(image_id: int, index: int, region: dict, area: float, bbox: list[float],
                     segmentation: Any, category_id: int = 1) -> dict:
    """One annotation; `segmentation=None` (a box region) leaves the key out: a bbox-only detection label."""
    if index + 1 >= ANNOTATION_ID_STRIDE:
        raise ValueError(f"too many regions in image {image_id} for stable COCO annotation ids")
    x0, y0, x1, y1 = bbox
    entry = {
        "id": image_id * ANNOTATION_ID_STRIDE + index + 1,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": segmentation,
        "area": round(float(area), 3),
        "bbox": [round(x0, COORD_DECIMALS), round(y0, COORD_DECIMALS),
                 round(x1 - x0, COORD_DECIMALS), round(y1 - y0, COORD_DECIMALS)],
        "iscrowd": 0,
        "attributes": {
            "style": region.get("style"),
            "motifs": list(region.get("motifs") or []),
            "region_id": region.get("id"),
            "source": region.get("source", "human"),
        },
    }
    if segmentation is None:
        del entry["segmentation"]
        entry["attributes"]["kind"] = "box"
    return entry


def categories(names: list[str] | tuple[str, ...]) -> list[dict]:
    """COCO categories for the export's class list (boxes.class_names): id = class index + 1."""
    return [{"id": i + 1, "name": name, "supercategory": CATEGORY["supercategory"]} for i, name in enumerate(names)]


def image_entry(image_id: int, file_name: str, width: int, height: int, sha256: str, status: str, version: int,
                tags: dict, original_filename: str) -> dict:
    return {
        "id": image_id,
        "file_name": file_name,
        "width": width,
        "height": height,
        "sha256": sha256,
        "inklabel": {
            "status": status,
            "version": version,
            "tags": {"styles": list(tags.get("styles", [])), "flags": list(tags.get("flags", []))},
            "original_filename": original_filename,
        },
    }


def polygon_rle(geojson: dict, width: int, height: int) -> dict:
    """Compressed COCO RLE of a region, straight from its edges, without drawing a mask.

    COCO's RLE runs down the columns (Fortran order). Each edge toggles, in every column whose centre line
    x = i + 0.5 it crosses, the pixels below the crossing (centre y = j + 0.5 past it): the tool's pixel-centre rule
    (backend.core.geometry_raster.rasterize) turned on its side. Toggles at the linear positions i * height + j,
    xor-ed and sorted, are exactly the run boundaries (a run that reaches the bottom of a column goes on in the next one).
    Pixel centres lying exactly on an edge may be decided the other way than by the row-wise rasteriser.
    """
    from pycocotools import mask as mask_utils

    polygons = [geojson["coordinates"]] if geojson["type"] == "Polygon" else geojson["coordinates"]
    edges = []
    for poly in polygons:
        for ring in poly:
            pts = np.asarray(ring, dtype=np.float64)
            if len(pts) >= 3:
                edges.append(np.concatenate([pts, np.roll(pts, -1, axis=0)], axis=1))
    total = width * height
    boundaries = np.zeros(0, dtype=np.int64)
    if edges:
        x0, y0, x1, y1 = np.concatenate(edges).T
        keep = x0 != x1
        x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
        xlo, xhi = np.minimum(x0, x1), np.maximum(x0, x1)
        first = np.clip(np.floor(xlo - 0.5) + 1, 0, width).astype(np.int64)  # columns xlo < i + .5 <= xhi
        last = np.clip(np.floor(xhi - 0.5) + 1, 0, width).astype(np.int64)
        counts = last - first
        n = int(counts.sum())
        if n:
            edge = np.repeat(np.arange(len(x0)), counts)
            cols = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(n)
            yc = y0[edge] + (cols + 0.5 - x0[edge]) * (y1[edge] - y0[edge]) / (x1[edge] - x0[edge])
            rows = np.clip(np.floor(yc - 0.5) + 1, 0, height).astype(np.int64)
            positions, times = np.unique(cols * height + rows, return_counts=True)
            boundaries = positions[times % 2 == 1]
    edges_at = np.concatenate([[0], boundaries, [total]])
    runs = np.diff(edges_at).tolist()
    if len(runs) > 1 and runs[-1] == 0:
        runs.pop()
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


class CocoSplitWriter:
    """One split's COCO file, assembled from two temporary files so that memory stays flat.

    Images and annotations arrive interleaved (image by image); they are appended as JSON lines to their own
    temporary file and joined into one document by `write_to`.
    """

    def __init__(self, info: dict, categories: list[dict] | None = None):
        self.info = {k: v for k, v in info.items() if k != "tag_labels"}
        self.categories = categories or [CATEGORY]
        self._images = tempfile.TemporaryFile("w+b")
        self._annotations = tempfile.TemporaryFile("w+b")
        self.n_images = 0
        self.n_annotations = 0

    @staticmethod
    def _append(fh: IO[bytes], first: bool, item: dict) -> None:
        fh.write((b"" if first else b",\n") + orjson.dumps(item))

    def add(self, image: dict, annotations: list[dict]) -> None:
        self._append(self._images, self.n_images == 0, image)
        self.n_images += 1
        for ann in annotations:
            self._append(self._annotations, self.n_annotations == 0, ann)
            self.n_annotations += 1

    def chunks(self) -> Iterator[bytes]:
        """The whole COCO document as byte chunks (for ZipOut.write_chunks)."""
        head = {"info": self.info, "licenses": [], "categories": self.categories}
        yield json.dumps(head, separators=(",", ":"))[:-1].encode() + b',\n"images":[\n'
        for part, tail in ((self._images, b'\n],\n"annotations":[\n'), (self._annotations, b"\n]}\n")):
            part.seek(0)
            while chunk := part.read(1024 * 1024):
                yield chunk
            yield tail

    def close(self) -> None:
        self._images.close()
        self._annotations.close()


# --- reading ------------------------------------------------------------------------------------------------------


def is_coco(document: Any) -> bool:
    return (isinstance(document, dict) and isinstance(document.get("images"), list)
            and isinstance(document.get("annotations"), list))


def segmentation_to_geometries(segmentation: Any, width: int, height: int,
                               max_vertices: int = DEFAULT_MAX_VERTICES) -> list[dict]:
    """GeoJSON polygons from a COCO segmentation (polygon lists, compressed or uncompressed RLE).

    Polygon lists become one Polygon/MultiPolygon (the parts of one object); RLE is decoded and traced back to
    polygons with holes (geometry.mask_to_polygons). Raises ValueError when it is neither.
    """
    if isinstance(segmentation, list):
        parts = []
        for flat in segmentation:
            if not isinstance(flat, list) or len(flat) < 6 or len(flat) % 2:
                raise ValueError("a COCO polygon needs at least 3 points as [x1, y1, x2, y2, ...]")
            ring = [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]
            parts.append([ring + [ring[0]]])
        if not parts:
            raise ValueError("empty segmentation")
        if len(parts) == 1:
            return [{"type": "Polygon", "coordinates": parts[0]}]
        return [{"type": "MultiPolygon", "coordinates": parts}]
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        from pycocotools import mask as mask_utils

        size = segmentation["size"]
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise ValueError("RLE size must be [height, width]")
        if size != [height, width]:
            raise ValueError(f"RLE size {size} does not match the image ({height}x{width})")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        elif isinstance(counts, str):
            rle = {"size": size, "counts": counts.encode("ascii")}
        else:
            raise ValueError("RLE counts must be a string or a list of integers")
        return [mask_to_geometry(mask_utils.decode(rle), max_vertices)]
    raise ValueError("segmentation must be a list of polygons or an RLE object")


def mask_to_geometry(mask: np.ndarray, max_vertices: int = DEFAULT_MAX_VERTICES) -> dict:
    """One Polygon/MultiPolygon (holes kept) tracing a binary mask.

    First without simplification: the polygons then follow the pixel edges and rasterise back to exactly the same
    mask. Only when that needs more than `max_vertices` points is it simplified (0.5, 1, 2 ... pixels).
    """
    from backend.core.geometry import count_vertices, mask_to_polygons

    for tolerance in (0.0, 0.5, 1.0, 2.0, 4.0):
        polygons = mask_to_polygons(mask, simplify_tolerance=tolerance, min_area=1.0)
        if not polygons:
            raise ValueError("the mask is empty")
        geometry = polygons[0] if len(polygons) == 1 else \
            {"type": "MultiPolygon", "coordinates": [p["coordinates"] for p in polygons]}
        if count_vertices(geometry) <= max_vertices:
            return geometry
    raise ValueError(f"the mask needs more than {max_vertices} vertices even when simplified")


def bbox_geometry(bbox: Any) -> dict:
    """A box region's geometry from a COCO `bbox` [x, y, width, height]; ValueError when it is not one."""
    import math

    from backend.datasets.boxes import box_geometry

    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                              and math.isfinite(v) for v in bbox)):
        raise ValueError("bbox must be [x, y, width, height] numbers")
    x, y, w, h = bbox
    return box_geometry(x, y, x + w, y + h)
