"""Import labelled datasets: COCO (polygons, RLE, bbox-only), LabelMe JSON, YOLO boxes and YOLO-seg polygons, CVAT
for images 1.1 XML and Label Studio JSON (the last two read in backend/datasets/import_readers.py).

    report = import_path("data/set.zip", "coco", source="import", user_id=None, progress=None)
    report.to_dict()   # counts + skipped items with reasons

`PATH` is a folder, a zip archive (checked by backend/datasets/archive.py before anything is extracted: zip slip,
absolute names, links, bombs are refused with ArchiveRefused) or one label file (COCO, LabelMe, Label Studio .json;
CVAT .xml). Every image goes through backend.core.ingest (same checks as uploads; the same bytes are stored once) and
every annotation through backend.core.annotations.save_document (same validation as the editor), so an import cannot
store anything the tool itself would refuse.

- **All or nothing per image.** An image's labels are checked in full (geometry, sizes, styles) before the image is
  stored: when any of them is refused the image is not imported at all and every reason is reported, so there is
  never an image without its labels nor half of its labels. A malformed label file (bad JSON, nested too deeply,
  not the format) is reported by name and its siblings are imported as usual.
- **Idempotent.** Region ids are derived from the image's sha256 and the label's place in its file (or kept from an
  inklabel export), so importing the same data again finds them present and adds nothing. An image that already
  has a different annotation is left alone and reported (nothing is merged into human work).
- **Skipped, with reasons**: unreadable or refused images, labels for a missing image, label files naming a path
  outside the dataset (absolute, or `..` leading out of it), regions that are not areas, geometries that cannot be
  repaired, labels drawn on an image of another size.
- **Boxes** (YOLO boxes, COCO annotations with a bbox and no segmentation, CVAT `<box>`, Label Studio rectangles,
  LabelMe rectangles) become box regions (`"kind": "box"`, backend/core/boxes.py). An image whose labels are all boxes
  stays `new`, in the queue for its outlines, unless `status` says otherwise.
- **LabelMe** as LabelMe's own converters read it: shapes with the same (label, group_id) are one instance, later
  shapes cover earlier instances, `__ignore__` shapes cover but are no region, and every shape type is an area
  (backend/datasets/labelme.py).
- Other images become `submitted` for review unless `status` says otherwise (e.g. `accepted` for trusted data);
  regions are human-drawn (source `human`, unless an inklabel export says otherwise).
- Styles: a COCO annotation's `attributes.style`, a CVAT `style` attribute, a Label Studio per-region `style`
  choice, or a category / label / class name that is a style key of the taxonomy; motifs from `attributes.motifs`,
  LabelMe shape flags, CVAT `motifs`, Label Studio `motifs`; image tags from an inklabel export's `inklabel.tags`,
  LabelMe's file flags, CVAT `<tag>`s or Label Studio image-level choices. Names that are not in the taxonomy are
  ignored (and counted).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import uuid
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from flask import current_app
from sqlalchemy import update

from backend.core.annotations import current_document, save_document
from backend.core.document_checks import REGION_ID, clean_region
from backend.core.errors import DomainError
from backend.db.extensions import db
from backend.core.geometry import DEFAULT_MAX_VERTICES
from backend.media.imaging import ImageRejected
from backend.core.ingest import ingest_bytes
from backend.db.models import IMAGE_STATUSES, REGION_SOURCES, Image, User, utcnow
from backend.core.taxonomy import flag_keys, load_taxonomy, style_keys
from backend.datasets import coco, labelme, yolo
from backend.datasets.boxes import box_region
from backend.datasets.archive import ArchiveLimits, ArchiveRefused, extract_zip

log = logging.getLogger(__name__)

FORMATS = ("coco", "labelme", "yolo", "yolo-seg", "cvat", "labelstudio")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_COCO_JSON_BYTES = 1024**3
MAX_LABELME_JSON_BYTES = 64 * 1024**2
MAX_LISTED_SKIPS = 1000
_NAMESPACE = uuid.UUID("6f1c9a52-3b7e-4a43-9a52-1c1d3f0e6a10")

RegionBuilder = Callable[[int, int, str], tuple[list[dict], list[str]]]


@dataclass
class ImportReport:
    format: str
    source: str
    images_added: int = 0
    images_existing: int = 0
    documents_written: int = 0
    regions_added: int = 0
    already_imported: int = 0
    without_labels: int = 0
    skipped_count: int = 0
    skipped: list[dict] = field(default_factory=list)
    ignored_names: Counter = field(default_factory=Counter)  # class / label names that are not styles

    def skip(self, item: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append({"item": item, "reason": reason})

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "source": self.source,
            "images_added": self.images_added,
            "images_existing": self.images_existing,
            "documents_written": self.documents_written,
            "regions_added": self.regions_added,
            "already_imported": self.already_imported,
            "without_labels": self.without_labels,
            "skipped_count": self.skipped_count,
            "skipped": self.skipped,
            "ignored_names": dict(sorted(self.ignored_names.items())),
        }

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        return (f"{self.images_added} images added, {self.images_existing} already present; "
                f"{self.documents_written} annotations written ({self.regions_added} regions), "
                f"{self.already_imported} already imported, {self.without_labels} without labels; "
                f"{self.skipped_count} skipped")


@dataclass
class LabelItem:
    """One image of a dataset and how to build its regions once its stored (upright) size is known."""

    name: str  # where it came from, for the report
    image_file: Path | None
    build: RegionBuilder
    tags: dict = field(default_factory=lambda: {"styles": [], "flags": []})
    image_data: bytes | None = None
    expect_size: tuple[int, int] | None = None  # (width, height) the labels were drawn on
    problem: str | None = None  # the item cannot be imported at all


class _Vocabulary:
    def __init__(self, taxonomy: dict, report: ImportReport):
        self.styles = style_keys(taxonomy)
        self.flags = flag_keys(taxonomy)
        self.report = report

    def style(self, name) -> str | None:
        if isinstance(name, str) and name in self.styles:
            return name
        if name not in (None, "", "tattoo"):
            self.report.ignored_names[str(name)[:64]] += 1
        return None

    def tags(self, styles, flags) -> dict:
        return {"styles": [s for s in _strings(styles) if s in self.styles],
                "flags": [f for f in _strings(flags) if f in self.flags]}


def _strings(values) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def derived_id(kind: str, sha: str, key: str) -> str:
    return f"{kind}-{uuid.uuid5(_NAMESPACE, f'{kind}:{sha}:{key}').hex[:24]}"


def _region_id(given, kind: str, sha: str, key: str) -> str:
    if isinstance(given, str) and REGION_ID.match(given):
        return given
    return derived_id(kind, sha, key)


def _source(value, default: str = "human") -> str:
    return value if value in REGION_SOURCES else default


# --- locating files -----------------------------------------------------------------------------------------------


def resolve_inside(root: Path, base: Path, name) -> Path:
    """`name` (from a label file) relative to `base`, refused when absolute or leading outside `root`."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no image file name")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", name):
        raise ValueError(f"the image path {name!r} is a URL; images are read from the dataset only, never downloaded")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"the image path {name!r} is absolute; only paths inside the dataset are read")
    target = (base / name.replace("\\", "/")).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"the image path {name!r} leads outside the dataset folder ('..'); refused")
    return target


def _find_image(root: Path, bases: list[Path], name) -> Path:
    """The first existing file `name` under one of `bases`; a refusal (absolute, outside) wins over 'not found'."""
    refusals = []
    for base in bases:
        try:
            candidate = resolve_inside(root, base, name)
        except ValueError as err:
            refusals.append(err)
            continue
        if candidate.is_file():
            return candidate
    if refusals:
        raise refusals[0]
    raise ValueError(f"image file {name!r} not found in the dataset")


def _json_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if p.is_file() and not p.is_symlink() and p.name != "manifest.json")


def _load_json(path: Path, limit: int):
    if path.stat().st_size > limit:
        raise ValueError(f"{path.name} is larger than {limit:,} bytes")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply to be a label file") from None


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


def json_documents(root: Path, files: list[Path] | None, limit: int, accepts: Callable, refusal: str,
                   report: ImportReport) -> Iterator[tuple[Path, str, object]]:
    """(file, its name in the dataset, document) of the JSON label files that `accepts`; unreadable ones are
    reported (their siblings go on), and so are other JSON files when they were named explicitly."""
    for jf in files or _json_files(root):
        rel = str(jf.relative_to(root))
        try:
            document = _load_json(jf, limit)
        except (OSError, ValueError) as err:
            report.skip(rel, f"not readable JSON: {err}"[:300])
            continue
        if accepts(document):
            yield jf, rel, document
        elif files:
            report.skip(rel, refusal)


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


# --- the import ---------------------------------------------------------------------------------------------------


def _prepare(path: Path, fmt: str, workdir: Path, limits: ArchiveLimits) -> tuple[Path, list[Path] | None]:
    """The folder to read (extracting a zip first) and, for a single JSON file, that file."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        return path.resolve(), None
    if zipfile.is_zipfile(path):
        return extract_zip(path, workdir, limits), None
    if (path.suffix.lower() == ".json" and fmt in ("coco", "labelme", "labelstudio")) or \
            (path.suffix.lower() == ".xml" and fmt == "cvat"):
        root = path.resolve().parent
        if fmt == "coco" and root.name in ("annotations", "coco"):
            root = root.parent
        return root, [path.resolve()]
    raise ValueError(f"{path.name}: expected a folder, a .zip archive, (COCO, LabelMe, Label Studio) a .json file "
                     "or (CVAT) an .xml file")


def import_path(path, fmt: str, source: str = "import", user_id: int | None = None,
                progress: Callable[..., None] | None = None, *, status: str | None = None,
                limits: ArchiveLimits | None = None) -> ImportReport:
    """Import a dataset (see the module docstring); needs an app context. Returns an ImportReport.

    Raises ValueError for an unknown format or status, FileNotFoundError for a missing path and ArchiveRefused
    for an archive that is refused before extraction. Everything else is reported per item.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if status is not None and status not in IMAGE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(IMAGE_STATUSES)}")
    config = current_app.config
    limits = limits or ArchiveLimits.from_config(config)
    report = ImportReport(format=fmt, source=source)
    vocab = _Vocabulary(load_taxonomy(config["WORKSPACE"]), report)
    user = db.session.get(User, user_id) if user_id is not None else None
    db.session.commit()
    workdir = Path(config["WORKSPACE"]) / "tmp" / f"import-{uuid.uuid4().hex}"
    try:
        root, files = _prepare(Path(path), fmt, workdir, limits)
        if fmt == "coco":
            items = list(read_coco(root, files, vocab, report))
        elif fmt == "labelme":
            items = list(read_labelme(root, files, vocab, report))
        elif fmt in ("cvat", "labelstudio"):
            from backend.datasets.import_readers import read_cvat, read_labelstudio

            reader = read_cvat if fmt == "cvat" else read_labelstudio
            items = list(reader(root, files, vocab, report))
        else:
            items = list(read_yolo(root, vocab, report, segmentation=fmt == "yolo-seg"))
        total = len(items)
        if progress:
            progress(0, total, f"importing {total} images")
        for done, item in enumerate(items, start=1):
            _import_item(item, root, report, vocab, source, user, status, config)
            if progress:
                progress(done, total, "importing")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("import %s from %s: %s", fmt, path, report.summary())
    return report


def _read_image(item: LabelItem, limit: int) -> bytes:
    if item.image_data is not None:
        data = item.image_data
    else:
        size = item.image_file.stat().st_size
        if size > limit:
            raise ImageRejected("file_too_large", f"The file is {size:,} bytes; the limit is {limit:,} bytes.", 413)
        data = item.image_file.read_bytes()
    return data


def _upright_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) after the EXIF orientation, from the header only; None when Pillow cannot tell."""
    import io

    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112)
    except Exception:  # anything unreadable is refused by ingest with its own reason
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _checked_regions(item: LabelItem, width: int, height: int, sha: str, vocab: _Vocabulary,
                     config) -> tuple[list[dict], list[str]]:
    raw_regions, problems = item.build(width, height, sha)
    problems = list(problems)
    regions, seen = [], set()
    for index, raw in enumerate(raw_regions):
        try:
            region = clean_region(index, raw, width, height, vocab.styles,
                                  config.get("MAX_REGION_VERTICES", DEFAULT_MAX_VERTICES))
        except DomainError as err:
            problems.append(err.message)
            continue
        if region["id"] in seen:
            continue
        seen.add(region["id"])
        regions.append(region)
    return regions, problems


def _import_item(item: LabelItem, root: Path, report: ImportReport, vocab: _Vocabulary, source: str,
                 user: User | None, status: str | None, config) -> None:
    """One image and its labels, all or nothing: labels that cannot be imported in full refuse the item before
    its image is stored (no image without its labels), with every reason in the report."""
    if item.problem:
        report.skip(item.name, item.problem)
        return
    try:
        data = _read_image(item, config["MAX_UPLOAD_BYTES"])
    except ImageRejected as err:
        report.skip(item.name, err.message)
        return
    except OSError as err:
        report.skip(item.name, f"could not read the image: {err}")
        return
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    size = _upright_size(data)
    if size is not None:
        if item.expect_size is not None and item.expect_size != size:
            report.skip(item.name, f"the labels are for a {item.expect_size[0]}x{item.expect_size[1]} image but the "
                                   f"image is {size[0]}x{size[1]} (upright); nothing imported")
            return
        regions, problems = _checked_regions(item, size[0], size[1], sha, vocab, config)
        if problems:
            report.skip(item.name, "labels refused, image not imported: " + "; ".join(problems)[:1500])
            return
    filename = item.image_file.name if item.image_file is not None else Path(item.name).with_suffix("").name
    try:
        result = ingest_bytes(data, filename, source=source, user_id=user.id if user else None)
    except ImageRejected as err:
        report.skip(item.name, err.message)
        return
    image = result.image
    image_id, width, height = image.id, image.width, image.height
    if size != (width, height):  # the header did not tell (or told otherwise): check with the stored size
        if item.expect_size is not None and item.expect_size != (width, height):
            problems = [f"the labels are for a {item.expect_size[0]}x{item.expect_size[1]} image but the stored "
                        f"(upright) image is {width}x{height}"]
        else:
            regions, problems = _checked_regions(item, width, height, sha, vocab, config)
        if problems:
            _forget_new_image(result)
            report.skip(item.name, "labels refused, image not imported: " + "; ".join(problems)[:1500])
            return
    if result.duplicate:
        report.images_existing += 1
    else:
        report.images_added += 1
    tags = item.tags
    if not regions and not tags["styles"] and not tags["flags"]:
        report.without_labels += 1
        return

    current = current_document(image_id)
    db.session.commit()
    if current["regions"] or current["tags"]["styles"] or current["tags"]["flags"]:
        existing = {r["id"] for r in current["regions"]}
        if all(r["id"] in existing for r in regions) and set(tags["flags"]) <= set(current["tags"]["flags"]):
            report.already_imported += 1
        else:
            report.skip(item.name, f"the image already has an annotation (version {current['version']}); "
                                   "the imported labels were not merged into it")
        return
    try:
        save_document(image_id, user, current["version"], regions, tags)
    except DomainError as err:
        report.skip(item.name, err.message)
        return
    report.documents_written += 1
    report.regions_added += len(regions)
    # Boxes only: weak labels, the image stays in the queue for its outlines unless a status was asked for.
    new_status = status or ("new" if all(r["kind"] == "box" for r in regions) else "submitted")
    db.session.execute(
        update(Image).where(Image.id == image_id, Image.status.in_(("new", "in_progress")))
        .values(status=new_status, updated_at=utcnow()).execution_options(synchronize_session=False)
    )
    db.session.commit()


def _forget_new_image(result) -> None:
    """Remove an image this import just added (its labels were refused), so that no orphan stays behind."""
    if result.duplicate:
        return
    from sqlalchemy import delete

    from backend.db.models import Annotation

    db.session.execute(delete(Annotation).where(Annotation.image_id == result.image.id))
    db.session.execute(delete(Image).where(Image.id == result.image.id))
    db.session.commit()


__all__ = ["FORMATS", "ArchiveRefused", "ImportReport", "import_path"]
