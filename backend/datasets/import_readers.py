"""Importers for CVAT for images 1.1 XML and Label Studio JSON (the item pipeline is backend/datasets/importers.py).

Both produce `LabelItem`s whose regions come from the format modules' parsed shapes (backend/datasets/cvat.py,
labelstudio.py). Region ids: the id the file carries (an inklabel export's `region_id` attribute / result meta) or
one derived from the image's sha256 and the shape's place, so importing the same file again adds nothing.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from backend.datasets import cvat, labelstudio
from backend.datasets.boxes import box_region
from backend.datasets.importers import (IMAGE_SUFFIXES, ImportReport, LabelItem, RegionBuilder, _find_image, _region_id, _source,
                        _Vocabulary, json_documents)

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
