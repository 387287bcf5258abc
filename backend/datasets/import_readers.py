"""Readers: the label files of a dataset -> `LabelItem`s (backend/datasets/import_items.py), one per image, for
COCO, LabelMe, YOLO boxes / YOLO-seg, CVAT for images 1.1 XML and Label Studio JSON; the item pipeline is
backend/datasets/importers.py.

Regions come from the format modules' parsed shapes (backend/datasets/coco.py, labelme.py, yolo.py, cvat.py,
labelstudio.py). Region ids: the id the file carries (an inklabel export's region id, a CVAT `region_id` attribute,
Label Studio result meta) or one derived from the image's sha256 and the shape's place, so importing the same file
again adds nothing.
"""
from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from backend.core.geometry import DEFAULT_MAX_VERTICES
from backend.datasets import coco, cvat, labelme, labelstudio, yolo
from backend.datasets.boxes import box_region
from backend.datasets.import_items import (IMAGE_SUFFIXES, MAX_COCO_JSON_BYTES, MAX_LABELME_JSON_BYTES, ImportReport,
                                           LabelItem, RegionBuilder, _find_image, _json_files, _load_json,
                                           _region_id, _source, _strings, _Vocabulary, derived_id, json_documents)

# --- COCO ---------------------------------------------------------------------------------------------------------


def read_coco(root: Path, files: list[Path] | None, vocab: _Vocabulary, report: ImportReport) -> Iterator[LabelItem]:
    candidates = files or [p for p in _json_files(root)
                           if p.parent == root or p.parent.name in ("coco", "annotations")] or _json_files(root)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    found = False
    for jf in candidates:
        try:
            document = _load_json(jf, MAX_COCO_JSON_BYTES)
        except (OSError, ValueError) as err:
            report.skip(str(jf.relative_to(root)), f"not readable JSON: {err}"[:300])
            continue
        if not coco.is_coco(document):
            if files:
                report.skip(jf.name, "not a COCO file (needs 'images' and 'annotations' lists)")
            continue
        found = True
        categories = {c.get("id"): c.get("name") for c in document.get("categories") or [] if isinstance(c, dict)}
        by_image: dict = defaultdict(list)
        for ann in document["annotations"]:
            if isinstance(ann, dict):
                by_image[ann.get("image_id")].append(ann)
        bases = [jf.parent, jf.parent.parent, root, root / "images", *subdirs]
        rel = jf.relative_to(root)
        for entry in document["images"]:
            if not isinstance(entry, dict):
                continue
            name = f"{rel}:{entry.get('file_name')}"
            extra = entry.get("inklabel") if isinstance(entry.get("inklabel"), dict) else {}
            extra_tags = extra.get("tags") if isinstance(extra.get("tags"), dict) else {}
            item = LabelItem(name=name, image_file=None, build=_coco_builder(by_image.get(entry.get("id"), []),
                                                                             categories, vocab),
                             tags=vocab.tags(extra_tags.get("styles"), extra_tags.get("flags")))
            width, height = entry.get("width"), entry.get("height")
            if isinstance(width, int) and isinstance(height, int):
                item.expect_size = (width, height)
            try:
                item.image_file = _find_image(root, bases, entry.get("file_name"))
            except ValueError as err:
                item.problem = str(err)
            yield item
    if not found:
        report.skip(str(root.name), "no COCO file found (a JSON file with 'images' and 'annotations' lists)")


def _coco_builder(annotations: list[dict], categories: dict, vocab: _Vocabulary) -> RegionBuilder:
    def build(width: int, height: int, sha: str) -> tuple[list[dict], list[str]]:
        regions, problems = [], []
        for ann in annotations:
            segmentation = ann.get("segmentation")
            try:
                if segmentation in (None, []) and "bbox" in ann:  # a detection label: a box region
                    geometries = [coco.bbox_geometry(ann.get("bbox"))]
                else:
                    geometries = coco.segmentation_to_geometries(segmentation, width, height,
                                                                 current_app.config.get("MAX_REGION_VERTICES",
                                                                                        DEFAULT_MAX_VERTICES))
            except (ValueError, TypeError, KeyError) as err:
                problems.append(f"annotation {ann.get('id')}: {err}")
                continue
            attributes = ann.get("attributes") if isinstance(ann.get("attributes"), dict) else {}
            style = attributes.get("style")
            style = vocab.style(style) if style is not None else vocab.style(categories.get(ann.get("category_id")))
            for k, geometry in enumerate(geometries):
                region = {
                    "id": _region_id(attributes.get("region_id"), "coco", sha, f"{ann.get('id')}:{k}"),
                    "geometry": geometry,
                    "style": style,
                    "motifs": _strings(attributes.get("motifs")),
                    "source": _source(attributes.get("source")),
                }
                regions.append(box_region(region) if segmentation in (None, []) else region)
        return regions, problems

    return build


# --- LabelMe ------------------------------------------------------------------------------------------------------

def read_labelme(root: Path, files: list[Path] | None, vocab: _Vocabulary, report: ImportReport) -> Iterator[LabelItem]:
    found = False
    for jf, rel, document in json_documents(root, files, MAX_LABELME_JSON_BYTES, labelme.is_labelme,
                                            "not a LabelMe file (needs 'shapes' and 'imagePath')", report):
        found = True
        flags = document.get("flags") if isinstance(document.get("flags"), dict) else {}
        on = [k for k, v in flags.items() if v is True]
        item = LabelItem(name=rel, image_file=None, build=_labelme_builder(document.get("shapes"), vocab),
                         tags=vocab.tags(on, on))
        width, height = document.get("imageWidth"), document.get("imageHeight")
        if isinstance(width, int) and isinstance(height, int):
            item.expect_size = (width, height)
        try:
            item.image_file = _find_image(root, [jf.parent], document.get("imagePath"))
        except ValueError as err:
            data = document.get("imageData")
            if isinstance(data, str) and data:
                try:
                    item.image_data = base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    item.problem = "imageData is not valid base64"
            else:
                item.problem = str(err)
        yield item
    if not found:
        report.skip(str(root.name), "no LabelMe file found (JSON with 'shapes' and 'imagePath')")


def _labelme_builder(shapes, vocab: _Vocabulary) -> RegionBuilder:
    def build(width: int, height: int, sha: str) -> tuple[list[dict], list[str]]:
        found, problems = labelme.instances(shapes)
        regions = []
        for instance in found:
            first = instance["shapes"][0]
            flags = {}
            for shape in instance["shapes"]:
                flags.update(shape.get("flags") if isinstance(shape.get("flags"), dict) else {})
            key = instance["key"]
            region = {
                "id": _region_id(first.get("region_id"), "labelme", sha,
                                 f"shape:{key[1]}" if key[0] == "shape" else f"group:{key[1]}:{key[0]}"),
                "geometry": instance["geometry"],
                "style": vocab.style(instance["label"]),
                "motifs": [k for k, v in flags.items() if v is True],
                "source": _source(first.get("source")),
            }
            regions.append(box_region(region) if instance["kind"] == "box" else region)
        return regions, problems

    return build


# --- YOLO ---------------------------------------------------------------------------------------------------------


def _label_file(image: Path) -> Path | None:
    beside = image.with_suffix(".txt")
    if beside.is_file():
        return beside
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):  # the last "images" folder -> "labels" (Ultralytics' rule)
        if parts[i] == "images":
            candidate = Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
            return candidate if candidate.is_file() else None
    return None


def _class_names(root: Path, folder: Path, cache: dict) -> list[str] | None:
    current = folder
    while True:
        if current not in cache:
            cache[current] = yolo.read_class_names(current)
        if cache[current] is not None or current == root or root not in current.parents:
            return cache[current]
        current = current.parent


def read_yolo(root: Path, vocab: _Vocabulary, report: ImportReport, segmentation: bool) -> Iterator[LabelItem]:
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                    and not p.is_symlink())
    labelled_dirs = set()
    pairs = []
    for image in images:
        label = _label_file(image)
        pairs.append((image, label))
        if label is not None:
            labelled_dirs.add(image.parent)
    if not labelled_dirs:
        report.skip(root.name, "no YOLO label files found (<image>.txt beside the image, or labels/ beside images/)")
        return
    names_cache: dict = {}
    for image, label in pairs:
        if label is None and image.parent not in labelled_dirs:
            continue  # an image outside the labelled folders (e.g. a preview)
        names = _class_names(root, (label or image).parent, names_cache)
        yield LabelItem(name=str(image.relative_to(root)), image_file=image,
                        build=_yolo_builder(label, names, vocab, segmentation))


def _yolo_builder(label: Path | None, names: list[str] | None, vocab: _Vocabulary, segmentation: bool) -> RegionBuilder:
    def build(width: int, height: int, sha: str) -> tuple[list[dict], list[str]]:
        if label is None:
            return [], []
        regions, problems = [], []
        try:
            text = label.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            return [], [f"{label.name}: {err}"]
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                cls, values = yolo.parse_line(line)
                if segmentation:
                    if len(values) == 4:
                        raise ValueError("a box line in a YOLO-seg file (import it with --format yolo)")
                    geometry = yolo.polygon_geometry(values, width, height)
                else:
                    if len(values) != 4:
                        raise ValueError("a polygon line in a box file (import it with --format yolo-seg)")
                    geometry = yolo.box_geometry(values, width, height)
            except ValueError as err:
                problems.append(f"{label.name} line {number}: {err}")
                continue
            class_name = names[cls] if names and cls < len(names) else None
            kind = "yolo-seg" if segmentation else "yolo-box"
            region = {
                "id": derived_id(kind, sha, f"{number}:{line.strip()}"),
                "geometry": geometry,
                "style": vocab.style(class_name) if class_name is not None else None,
                "motifs": [],
                "source": "human",
            }
            regions.append(region if segmentation else box_region(region))
        return regions, problems

    return build


MAX_CVAT_XML_BYTES = 512 * 1024**2
MAX_LS_JSON_BYTES = 512 * 1024**2


class _ImageIndex:
    """Image files of the dataset by lower-case file name, for label files that name images by name only."""

    def __init__(self, root: Path):
        self.root = root
        self._by_name: dict[str, list[Path]] | None = None

    def find(self, bases: list[Path], name: str) -> Path:
        bases = [b for b in bases if b == self.root or self.root in b.parents]  # a label file at the root
        try:
            return _find_image(self.root, bases, name)
        except ValueError as err:
            if "not found" not in str(err):
                raise
            first = err
        if self._by_name is None:
            self._by_name = {}
            for p in sorted(self.root.rglob("*")):
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.is_symlink():
                    self._by_name.setdefault(p.name.lower(), []).append(p)
        base = PurePosixPath(name.replace("\\", "/")).name.lower()
        candidates = self._by_name.get(base) or []
        if not candidates and "-" in base:  # Label Studio's upload names: <8 hex>-<original name>
            candidates = self._by_name.get(base.split("-", 1)[1]) or []
        if len(candidates) == 1 or (1 < len(candidates) <= 8 and _same_bytes(candidates)):
            return candidates[0]
        if len(candidates) > 1:
            raise ValueError(f"image file name {base!r} is ambiguous: {len(candidates)} files have it")
        raise first


def _same_bytes(paths: list[Path]) -> bool:
    first = paths[0].read_bytes()
    return all(p.stat().st_size == len(first) and p.read_bytes() == first for p in paths[1:])


def _shapes_builder(shapes: list[dict], tag: str, vocab: _Vocabulary) -> RegionBuilder:
    """Regions from parsed shapes {"kind", "geometry", "label", "style", "motifs", "region_id", "source", "group"}:
    shapes sharing a group (or a region id) become one region; raster shapes are traced."""
    def build(width: int, height: int, sha: str) -> tuple[list[dict], list[str]]:
        from shapely.geometry import shape as to_shapely
        from shapely.ops import unary_union

        from backend.datasets.coco import mask_to_geometry
        from backend.datasets.labelme import _polygonal, to_geojson

        groups: dict = {}
        problems = []
        for index, shape in enumerate(shapes):
            geometry = shape["geometry"]
            try:
                if shape["kind"] == "raster":
                    traced = mask_to_geometry(geometry["raster"])
                    polygons = [traced["coordinates"]] if traced["type"] == "Polygon" else traced["coordinates"]
                    geometry = {"type": "MultiPolygon", "coordinates": [
                        [[[x + geometry["left"], y + geometry["top"]] for x, y in ring] for ring in poly]
                        for poly in polygons]}
            except ValueError as err:
                problems.append(f"shape {index}: {err}")
                continue
            key = shape.get("group") or shape.get("region_id") or ("shape", index)
            group = groups.setdefault(key, {"first": shape, "index": index, "parts": [], "geometries": []})
            group["parts"].append(shape)
            group["geometries"].append(geometry)
        regions = []
        for key, group in groups.items():
            first = group["first"]
            if len(group["geometries"]) == 1:
                geometry = group["geometries"][0]
            else:
                geometry = to_geojson(unary_union([_polygonal(to_shapely(g)) for g in group["geometries"]]))
            style = first.get("style")
            if style is None:
                style = first.get("label") if first.get("label") in vocab.styles else None
                if style is None:
                    vocab.style(first.get("label"))  # counted as ignored unless it is "tattoo"
            region = {
                "id": _region_id(first.get("region_id"), tag, sha, f"{group['index']}"),
                "geometry": geometry,
                "style": vocab.style(style),
                "motifs": [m for m in first.get("motifs") or [] if isinstance(m, str) and m],
                "source": _source(first.get("source")),
            }
            single_box = first["kind"] == "box" and len(group["parts"]) == 1
            regions.append(box_region(region) if single_box else region)
        return regions, problems

    return build


# --- CVAT ---------------------------------------------------------------------------------------------------------


def read_cvat(root: Path, files: list[Path] | None, vocab: _Vocabulary, report: ImportReport) -> Iterator[LabelItem]:
    candidates = files or sorted(p for p in root.rglob("*.xml") if p.is_file() and not p.is_symlink())
    index = _ImageIndex(root)
    found = False
    for xf in candidates:
        rel = str(xf.relative_to(root))
        try:
            if xf.stat().st_size > MAX_CVAT_XML_BYTES:
                raise ValueError(f"larger than {MAX_CVAT_XML_BYTES:,} bytes")
            data = xf.read_bytes()
            if not cvat.is_cvat(data):
                if files:
                    report.skip(rel, "not a CVAT for images file (no <annotations> root)")
                continue
            images = cvat.read_document(data)
        except (OSError, ValueError) as err:
            report.skip(rel, f"not readable: {err}"[:300])
            continue
        found = True
        for image in images:
            yield _cvat_item(root, xf, rel, image, index, vocab, report)
    if not found:
        report.skip(root.name, "no CVAT for images XML found (export the task as 'CVAT for images 1.1')")


def _cvat_item(root: Path, xf: Path, rel: str, image: cvat.CvatImage, index: _ImageIndex, vocab: _Vocabulary,
               report: ImportReport) -> LabelItem:
    for name in image.ignored:
        report.ignored_names[name] += 1
    shapes = []
    for shape in sorted(image.shapes, key=lambda s: s["z"]):  # stable: document order within one z_order
        if shape["occluded"]:
            report.ignored_names["occluded"] += 1
        attributes = shape["attributes"]
        motifs = [m.strip() for m in (attributes.get("motifs") or "").replace(",", ";").split(";") if m.strip()]
        shapes.append({"kind": shape["kind"], "geometry": shape["geometry"], "label": shape["label"],
                       "style": attributes.get("style") or None, "motifs": motifs,
                       "region_id": attributes.get("region_id") or None, "source": attributes.get("source"),
                       "group": ("group", shape["group"]) if shape["group"] is not None else None})
    return _item(f"{rel}:{image.name}", _shapes_builder(shapes, "cvat", vocab), vocab.tags(image.tags, image.tags),
                 image.problems, (image.width, image.height), image.name, index,
                 [xf.parent, xf.parent.parent, root, root / "images" / xf.stem, root / "images"])


# --- Label Studio -------------------------------------------------------------------------------------------------


def _ls_image_name(reference: str) -> str:
    """The dataset path a Label Studio image reference stands for (never fetched: no downloads)."""
    parts = urlsplit(reference)
    if parts.path.endswith("/data/local-files/") or parts.path == "/data/local-files":
        return unquote((parse_qs(parts.query).get("d") or [""])[0])
    if parts.scheme or reference.startswith("/"):
        return PurePosixPath(unquote(parts.path)).name  # found by file name only
    return reference


def read_labelstudio(root: Path, files: list[Path] | None, vocab: _Vocabulary,
                     report: ImportReport) -> Iterator[LabelItem]:
    index = _ImageIndex(root)
    found = False
    for jf, rel, document in json_documents(root, files, MAX_LS_JSON_BYTES, labelstudio.is_labelstudio,
                                            "not a Label Studio export (a list of tasks with 'data')", report):
        found = True
        for task in labelstudio.read_tasks(document):
            yield _ls_item(root, jf, rel, task, index, vocab, report)
    if not found:
        report.skip(root.name, "no Label Studio JSON found (a list of tasks with 'data' and 'annotations')")


def _ls_item(root: Path, jf: Path, rel: str, task: labelstudio.LsTask, index: _ImageIndex, vocab: _Vocabulary,
             report: ImportReport) -> LabelItem:
    for name in task.ignored:
        report.ignored_names[name] += 1
    shapes = []
    for shape in task.shapes:
        meta = shape["meta"]
        region_id = meta.get("region_id") if isinstance(meta.get("region_id"), str) else None
        choices = task.choices.get(region_id or shape["id"], {})
        styles = choices.get("style") or []
        shapes.append({"kind": shape["kind"], "geometry": shape["geometry"], "label": shape["label"],
                       "style": styles[0] if styles else None, "motifs": choices.get("motifs") or [],
                       "region_id": region_id or (shape["id"] if isinstance(shape["id"], str) else None),
                       "source": meta.get("source"), "group": None})
    problems = task.problems if task.image else [*task.problems, "the task has no data.image"]
    return _item(f"{rel}:{task.name}", _shapes_builder(shapes, "ls", vocab),
                 vocab.tags(task.image_choices, task.image_choices), problems, (task.width, task.height),
                 _ls_image_name(task.image or ""), index, [jf.parent, jf.parent.parent, root, root / "images"])


def _item(name: str, build: RegionBuilder, tags: dict, problems: list[str], size: tuple, image_name: str,
          index: _ImageIndex, bases: list[Path]) -> LabelItem:
    """A LabelItem, refused as a whole when its file already showed problems; its image found in the dataset."""
    item = LabelItem(name=name, image_file=None, build=build, tags=tags)
    if problems:
        item.problem = "labels refused, image not imported: " + "; ".join(problems)[:1500]
        return item
    if size[0] and size[1]:
        item.expect_size = size
    try:
        item.image_file = index.find(bases, image_name)
    except ValueError as err:
        item.problem = str(err)
    return item
