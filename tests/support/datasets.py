"""Helpers for the dataset tests: small images, regions with holes, annotated images in a workspace."""
from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import update

from backend.core.annotations import save_document
from backend.db.extensions import db
from backend.core.geometry_raster import rasterize
from backend.core.ingest import ingest_bytes
from backend.db.models import Image as ImageRow


def ring(cx: float, cy: float, r: float, n: int = 48, clockwise: bool = False) -> list[list[float]]:
    pts = [[round(cx + r * math.cos(2 * math.pi * k / n), 3), round(cy + r * math.sin(2 * math.pi * k / n), 3)]
           for k in range(n)]
    if clockwise:
        pts = pts[::-1]
    return pts + [pts[0]]


def donut(cx, cy, r_out, r_in) -> dict:
    return {"type": "Polygon", "coordinates": [ring(cx, cy, r_out), ring(cx, cy, r_in, clockwise=True)]}


def disc(cx, cy, r) -> dict:
    return {"type": "Polygon", "coordinates": [ring(cx, cy, r)]}


def smooth_image(seed: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A photo-like RGB image: a random low-resolution colour field smoothly upscaled (distinct pHash per seed)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC))


def jpeg(array: np.ndarray, quality: int = 90, exif_orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(array)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def near_duplicate(array: np.ndarray) -> bytes:
    """The same picture, slightly brighter and recompressed: another sha256, (almost) the same pHash."""
    return jpeg(np.clip(array.astype(np.int16) + 6, 0, 255).astype(np.uint8), quality=70)


def add_image(data: bytes, regions: list[dict] | None = None, tags: dict | None = None, status: str = "accepted",
              name: str = "photo.jpg") -> int:
    """Ingest an image, save its document (if any) and set its status. Needs an app context. Returns the id."""
    result = ingest_bytes(data, name, source="test")
    image_id = result.image.id
    if regions or tags:
        save_document(image_id, None, 0, regions or [], tags or {"styles": [], "flags": []}, allow_frozen=True)
    db.session.execute(update(ImageRow).where(ImageRow.id == image_id).values(status=status))
    db.session.commit()
    return image_id


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def region_raster(geometry: dict, width: int, height: int) -> np.ndarray:
    return rasterize([geometry], width, height) > 0


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def run_lengths(flat) -> list[int]:
    """Run lengths of a flat 0/1 sequence, starting with a run of zeros (COCO's and CVAT's uncompressed RLE)."""
    runs, value, count = [], 0, 0
    for pixel in flat:
        if pixel == value:
            count += 1
        else:
            runs.append(count)
            value, count = pixel, 1
    runs.append(count)
    return runs



def annotated_images(app, n=4) -> list[int]:
    """n accepted images with two regions each (one with a hole), in their export's order."""
    with app.app_context():
        return [add_image(jpeg(smooth_image(k)), [
            {"id": f"r{k}", "geometry": donut(60, 60, 40, 15), "style": "japanese", "motifs": ["rose"]},
            {"id": f"s{k}", "geometry": disc(120, 40, 20), "style": None, "motifs": []}]) for k in range(n)]


# LabelMe 5's file format (labelme/label_file.py: LabelFile.load reads exactly these keys).
LABELME_SCHEMA = {
    "type": "object",
    "required": ["version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"],
    "properties": {
        "version": {"type": "string"},
        "flags": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "imagePath": {"type": "string"},
        "imageData": {"type": ["string", "null"]},
        "imageHeight": {"type": "integer", "minimum": 1},
        "imageWidth": {"type": "integer", "minimum": 1},
        "shapes": {"type": "array", "items": {
            "type": "object",
            "required": ["label", "points", "group_id", "shape_type", "flags"],
            "properties": {
                "label": {"type": "string", "minLength": 1},
                "points": {"type": "array", "minItems": 3, "items": {
                    "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}},
                "group_id": {"type": ["integer", "null"]},
                "shape_type": {"enum": ["polygon", "rectangle", "circle", "line", "point", "linestrip", "points",
                                        "mask"]},
                "flags": {"type": "object", "additionalProperties": {"type": "boolean"}},
                "description": {"type": ["string", "null"]},
            },
        }},
    },
}
