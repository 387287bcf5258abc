"""Everything an export writes for one image, computed from plain data (no database, no Flask).

`render_image(task, settings)` returns the files (name, bytes) and the COCO entries and crop rows of one image;
the export runs it on worker threads (numpy, zlib, Pillow and OpenCV release the GIL) and writes the results to the
zip in order, so memory holds only the images in flight.
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from PIL import Image as PILImage

from backend.core.geometry import area_bbox
from backend.media.imaging import ImageRejected, encode_jpeg, load_rgb
from backend.datasets import coco, crops, cvat, labelme, labelstudio, yolo
from backend.datasets.boxes import box_corners, class_index, is_box
from backend.datasets.masks import RegionMask, encode_masks, region_mask
from backend.datasets.pngio import encode_gray_png

EXCLUDED_SPLIT = "excluded"
JPEG_QUALITY = 95
# A JPEG original is copied byte for byte when it is plain RGB without metadata (nothing to rotate, no EXIF/GPS
# or XMP to leak); anything else is decoded upright and re-encoded.
_METADATA_KEYS = ("exif", "xmp", "photoshop", "XML:com.adobe.xmp")


@dataclass(frozen=True)
class RenderSettings:
    formats: frozenset
    images: bool
    crop_margin: float
    crop_mask_background: bool
    trainable: frozenset
    max_pixels: int | None = None
    class_names: tuple = ("tattoo",)  # boxes.class_names: COCO categories, YOLO classes, class-index masks


@dataclass
class ImageTask:
    image_id: int
    sha256: str
    width: int
    height: int
    status: str
    version: int
    original_filename: str
    split: str
    document: dict
    original_path: str


@dataclass
class CropOut:
    style: str
    stem: str
    data: bytes
    row: dict


@dataclass
class Rendered:
    image_id: int
    sha256: str
    split: str
    version: int
    files: list[tuple[str, bytes]] = field(default_factory=list)
    coco_image: dict | None = None
    coco_annotations: list[dict] = field(default_factory=list)
    crops: list[CropOut] = field(default_factory=list)
    regions: int = 0
    styles: Counter = field(default_factory=Counter)
    crops_skipped: Counter = field(default_factory=Counter)
    cvat_element: str | None = None
    ls_task: dict | None = None
    box_rows: list[dict] = field(default_factory=list)
    model_versions: set = field(default_factory=set)
    error: str | None = None


_NO_PIXELS = RegionMask(0, 0, np.zeros((0, 0), dtype=bool))


def _class_png(masks: list[RegionMask], regions: list[dict], settings: RenderSettings, width: int,
               height: int) -> bytes:
    """uint8 class-index mask: 0 background, class index + 1 (= the COCO category id) where a region is; later
    regions win overlaps, as in the instance mask."""
    names = list(settings.class_names)
    labels = np.zeros((height, width), dtype=np.uint8)
    for rm, region in zip(masks, regions):
        h, w = rm.mask.shape
        if h and w:
            np.copyto(labels[rm.row0:rm.row0 + h, rm.col0:rm.col0 + w], np.uint8(class_index(region, names) + 1),
                      where=rm.mask)
    return encode_gray_png(labels)


def image_name(split: str, sha: str) -> str:
    return f"images/{split}/{sha}.jpg"


def _export_image(task: ImageTask, settings: RenderSettings, need_pixels: bool) -> tuple[bytes, np.ndarray | None]:
    path = Path(task.original_path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        with PILImage.open(path) as probe:
            plain = (probe.format == "JPEG" and probe.mode == "RGB" and probe.size == (task.width, task.height)
                     and not any(key in probe.info for key in _METADATA_KEYS))
        if plain:
            data = path.read_bytes()
            pixels = None
            if need_pixels:
                with PILImage.open(io.BytesIO(data)) as decoded:
                    pixels = np.asarray(decoded.convert("RGB"))
            return data, pixels
    upright = load_rgb(path, max_pixels=settings.max_pixels)
    data = encode_jpeg(upright, JPEG_QUALITY)
    return data, (np.asarray(upright) if need_pixels else None)


def render_image(task: ImageTask, settings: RenderSettings) -> Rendered:
    out = Rendered(task.image_id, task.sha256, task.split, task.version)
    try:
        _render(task, settings, out)
    except (ImageRejected, OSError, ValueError) as err:
        reason = err.message if isinstance(err, ImageRejected) else f"{type(err).__name__}: {err}"
        return Rendered(task.image_id, task.sha256, task.split, task.version, error=reason)
    return out


def _render(task: ImageTask, settings: RenderSettings, out: Rendered) -> None:
    width, height, sha, split = task.width, task.height, task.sha256, task.split
    formats = settings.formats
    training = split != EXCLUDED_SPLIT
    regions = task.document["regions"]
    tags = task.document["tags"]
    geometry_info = [area_bbox(r["geometry"]) for r in regions]

    crop_regions = []
    if "crops" in formats and training:
        for i, region in enumerate(regions):
            style = region.get("style")
            if not style:
                out.crops_skipped["no_style"] += 1
            elif style not in settings.trainable:
                out.crops_skipped["untrainable_style"] += 1
            else:
                box = crops.crop_box(geometry_info[i][1], width, height, settings.crop_margin)
                if box is None:
                    out.crops_skipped["too_small"] += 1
                else:
                    crop_regions.append((i, box))

    pixels = None
    image_bytes = None
    if settings.images:
        image_bytes, pixels = _export_image(task, settings, need_pixels=bool(crop_regions))
    elif crop_regions:
        pixels = np.asarray(load_rgb(task.original_path, max_pixels=settings.max_pixels))
    if pixels is not None and pixels.shape[:2] != (height, width):
        raise ValueError(f"the stored image is {pixels.shape[1]}x{pixels.shape[0]}, the database says {width}x{height}")

    # Rasterise only what is used: every region for the masks, cropped regions for masked crops (COCO's RLE of a
    # region with holes comes straight from its edges, coco.polygon_rle).
    wanted = set(range(len(regions))) if "masks" in formats else set()
    if settings.crop_mask_background:
        wanted |= {i for i, _ in crop_regions}
    masks: list[RegionMask] = [region_mask(r["geometry"], geometry_info[i][1], width, height) if i in wanted
                               else _NO_PIXELS for i, r in enumerate(regions)]

    if image_bytes is not None:
        out.files.append((image_name(split, sha), image_bytes))
        if "yolo" in formats and training:
            out.files.append((f"yolo/images/{split}/{sha}.jpg", image_bytes))
    outlined = [r for r in regions if not is_box(r)]  # boxes are not drawn in masks nor written as YOLO-seg
    if "masks" in formats:
        drawn = [m if not is_box(regions[i]) else _NO_PIXELS for i, m in enumerate(masks)]
        semantic, instance = encode_masks(drawn, width, height)
        out.files.append((f"masks/{split}/{sha}.png", semantic))
        out.files.append((f"masks_instance/{split}/{sha}.png", instance))
        if len(settings.class_names) > 1:
            out.files.append((f"masks_class/{split}/{sha}.png", _class_png(drawn, regions, settings, width, height)))
    if "yolo" in formats and training:
        classes = [class_index(r, list(settings.class_names)) for r in outlined]
        out.files.append((f"yolo/labels/{split}/{sha}.txt",
                          yolo.label_lines(outlined, width, height, classes).encode()))
    if "cvat" in formats:
        out.cvat_element = cvat.image_element(task.image_id, f"{sha}.jpg", width, height, regions, tags)
    if "labelstudio" in formats:
        out.ls_task = labelstudio.task(task.image_id, image_name(split, sha), width, height, regions, tags)
    for i, region in enumerate(regions):
        if is_box(region):
            x0, y0, x1, y1 = box_corners(region["geometry"])
            out.box_rows.append({"split": split, "image": sha, "image_id": task.image_id, "region_id": region["id"],
                                 "style": region.get("style") or "", "x0": round(x0, 2), "y0": round(y0, 2),
                                 "x1": round(x1, 2), "y1": round(y1, 2)})
    if "labelme" in formats:
        document = labelme.labelme_document(regions, tags, f"../../{image_name(split, sha)}", width, height)
        out.files.append((f"labelme/{split}/{sha}.json", orjson.dumps(document, option=orjson.OPT_INDENT_2)))
    if "coco" in formats:
        out.coco_image = coco.image_entry(task.image_id, image_name(split, sha), width, height, sha, task.status,
                                          task.version, tags, task.original_filename)
        for i, region in enumerate(regions):
            area, bbox = geometry_info[i]
            if is_box(region):
                segmentation = None  # a detection label: bbox only
            elif coco.has_holes(region["geometry"]):
                segmentation = coco.polygon_rle(region["geometry"], width, height)
            else:
                segmentation = coco.polygon_segmentation(region["geometry"])
            out.coco_annotations.append(coco.annotation_entry(
                task.image_id, i, region, area, bbox, segmentation,
                category_id=class_index(region, list(settings.class_names)) + 1))

    for i, box in crop_regions:
        region = regions[i]
        data = crops.crop_jpeg(pixels, box, masks[i], settings.crop_mask_background)
        x0, y0, x1, y1 = geometry_info[i][1]
        out.crops.append(CropOut(region["style"], crops.safe_stem(region["id"]), data, {
            "split": split, "region_id": region["id"], "image": sha, "image_id": task.image_id,
            "style": region["style"], "motifs": ";".join(region.get("motifs") or []),
            "x0": round(x0, 2), "y0": round(y0, 2), "x1": round(x1, 2), "y1": round(y1, 2),
        }))

    out.regions = len(regions)
    for region in regions:
        out.styles[region.get("style") or "(none)"] += 1
        if region.get("model_version") is not None:
            out.model_versions.add(int(region["model_version"]))
