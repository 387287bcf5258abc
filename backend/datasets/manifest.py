"""manifest.json and README.md of an export.

The manifest records what the export is and how to check it:

    format, format_version          "inklabel-export", 1
    export_id, created_at, created_by
    options                         the normalised ExportOptions (formats, filter, split, crops, ...)
    filter, split                   statuses exported; seed, fractions, near-duplicate distance, the near-duplicate
                                    groups (sha256 lists) and how many images had no perceptual hash
    taxonomy                        its version, sha256, styles, trainable styles, flags excluded from training
    counts                          images / regions / crops per split, regions per style per split, crops skipped
                                    (no style, untrainable style, too small), excluded and skipped images
    excluded                        images left out of the training sets, with their flags and why
    skipped                         images that could not be exported (unreadable file, deleted meanwhile), with why
    model_versions                  the models whose predictions are among the exported regions
    images                          {id, sha256, split, version} per exported image: the pinned snapshot
    files                           {path: {sha256, size}} of every other file in the zip

Everything except created_at, export_id and created_by is a function of the data and the options: two exports of
the same data with the same options have the same files with the same hashes. The database keeps the manifest
without `images` and `files` (Export.manifest); the zip has all of it.
"""
from __future__ import annotations

import json
from typing import IO, Iterator

FORMAT = "inklabel-export"
FORMAT_VERSION = 1


def manifest_chunks(head: dict, images_jsonl: IO[str], files: Iterator[tuple[str, str, int]]) -> Iterator[bytes]:
    """manifest.json as chunks: `head`, then the images (one JSON object per line of `images_jsonl`) and files."""
    text = json.dumps(head, indent=2)
    yield (text[:-2] + ',\n  "images": [').encode()
    images_jsonl.seek(0)
    first = True
    for line in images_jsonl:
        line = line.strip()
        if line:
            yield (("\n    " if first else ",\n    ") + line).encode()
            first = False
    yield b'\n  ],\n  "files": {'
    first = True
    for name, digest, size in files:
        entry = json.dumps(name) + ": " + json.dumps({"sha256": digest, "size": size})
        yield (("\n    " if first else ",\n    ") + entry).encode()
        first = False
    yield b"\n  }\n}\n"


def readme_text(formats: list[str], images: bool, include_excluded: bool, categories: str = "tattoo") -> str:
    lines = [
        "# inklabel export",
        "",
        "manifest.json: export id, time, options, split seed and near-duplicate groups, taxonomy, counts,",
        "model versions, the pinned annotation version of every image and the sha256 of every file.",
        "Splits are train / val / test; near-duplicate images (perceptual hash) are always in the same split.",
        "Images flagged out of training (not a tattoo, bad example, store front, ...) are not in these splits"
        + (" but in the separate 'excluded' split." if include_excluded else "; manifest.json lists them."),
        "",
        "Coordinates are pixels of the upright (EXIF-transposed) image, x right, y down.",
        "",
    ]
    if images:
        lines.append("images/{split}/<sha256>.jpg          the photos")
    if "coco" in formats:
        lines.append("coco/{split}.json                    COCO instances: category 'tattoo'; style and motifs in "
                     "annotation['attributes']; polygons, RLE for regions with holes")
    if "masks" in formats:
        lines.append("masks/{split}/<sha256>.png           semantic masks: 0 background, 255 tattoo")
        lines.append("masks_instance/{split}/<sha256>.png  16-bit instance masks: 0 background, n = n-th region")
    if "crops" in formats:
        lines.append("crops/{split}/{style}/<region>.jpg   one crop per region with a trainable style")
        lines.append("crops/labels.csv                     path, split, region_id, image, image_id, style, motifs, "
                     "x0, y0, x1, y1")
    if "yolo" in formats:
        lines.append("yolo/data.yaml, yolo/images, yolo/labels  YOLO-seg (class 0 = tattoo); holes as bridged rings")
    if "labelme" in formats:
        lines.append("labelme/{split}/<sha256>.json        LabelMe 5 JSON; label = style; holes as bridged rings")
    if "cvat" in formats:
        lines.append("cvat/{split}.xml                     CVAT for images 1.1: polygons, boxes, style/motifs as "
                     "attributes, image styles/flags as tags")
    if "labelstudio" in formats:
        lines.append("labelstudio/{split}.json, config.xml  Label Studio tasks (percent coordinates) and the "
                     "labelling interface they fit")
    lines += [
        "",
        "Box regions (detection labels) are COCO annotations with a bbox and no segmentation, CVAT boxes, Label",
        "Studio rectangles and LabelMe rectangles, and are listed in boxes/labels.csv (when there are any); they",
        "are not drawn in the masks nor written to YOLO-seg (a box is not an outline).",
    ]
    if categories == "styles":
        lines += [
            "",
            "Categories per style: class 0 'tattoo' (no or an untrainable style), then one class per trainable",
            "style. COCO category id = class + 1 = the value in masks_class/{split}/<sha256>.png",
            "(legend in masks_class/legend.json); YOLO class index = class (yolo/data.yaml names).",
        ]
    return "\n".join(lines) + "\n"
