"""What an import is made of, whatever the format: the report (counts and skipped items with reasons), a LabelItem
per image (its file and how to build its regions once its size is known), the taxonomy vocabulary, derived region
ids, and locating and reading label files inside the dataset (backend/datasets/importers.py runs the import)."""
from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from backend.core.document_checks import REGION_ID
from backend.core.taxonomy import flag_keys, style_keys
from backend.db.models import REGION_SOURCES

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
