"""Reading a dataset export (the zip the datasets module writes, or that zip extracted) for training.

Layout used here (see DESIGN.md):
    manifest.json
    images/{train,val,test}/<sha256>.jpg
    masks/{train,val,test}/<sha256>.png            0 background, 255 tattoo (mask regions only)
    boxes/labels.csv                               box regions: split, image (sha256), x0, y0, x1, y1, ... in
                                                   image pixels (weak labels; see backend/ml/boxsup.py)
    crops/{train,val,test}/<style>/<region_id>.jpg + crops/labels.csv

    with open_export("workspace/exports/<id>.zip") as data:
        data.segmentation_samples("train")   # [SegSample]
        data.crop_samples("val")             # [CropSample]
"""
from __future__ import annotations

import contextlib
import csv
import json
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from backend.ml.boxsup import augment_boxed, known_map, lab_of, letterbox_boxes, pack_boxes
from backend.ml.transforms import augment_crop, augment_pair, letterbox, letterbox_mask

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_EXTRACT_BYTES = 50 * 1024**3


class ExportError(ValueError):
    """The export cannot be used for this training (missing folders, nothing to learn from, unsafe zip)."""


@dataclass(frozen=True)
class SegSample:
    split: str
    key: str
    image: Path
    mask: Path | None  # None: no mask file, i.e. no tattoo in this image
    boxes: tuple = ()  # box regions (x0, y0, x1, y1) in image pixels: the mask is unknown inside them


@dataclass(frozen=True)
class CropSample:
    split: str
    region_id: str
    style: str
    path: Path


class ExportData:
    def __init__(self, root: Path):
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        self.manifest: dict = json.loads(manifest.read_text()) if manifest.is_file() else {}

    @property
    def export_id(self) -> str | None:
        value = self.manifest.get("export_id") or self.manifest.get("id")
        return str(value) if value else None

    def crop_settings(self) -> dict:
        """How the export cut its crops (manifest options.crops): the pre-fill must cut the same way."""
        crops = (self.manifest.get("options") or {}).get("crops") or {}
        return {"crop_margin": float(crops.get("margin", 0.1)),
                "crop_mask_background": bool(crops.get("mask_background", False))}

    def has_masks(self) -> bool:
        return (self.root / "masks").is_dir()

    def box_table(self) -> dict[tuple[str, str], list[tuple[float, float, float, float]]]:
        """(split, image key) -> its box regions, from boxes/labels.csv (empty when the export has no boxes)."""
        path = self.root / "boxes" / "labels.csv"
        table: dict[tuple[str, str], list] = {}
        if not path.is_file():
            return table
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    box = tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1"))
                except (KeyError, TypeError, ValueError):
                    raise ExportError("boxes/labels.csv: every row needs numeric x0, y0, x1, y1") from None
                if box[2] > box[0] and box[3] > box[1]:
                    table.setdefault((row.get("split", ""), row.get("image", "")), []).append(box)
        return table

    def has_boxes(self) -> bool:
        return (self.root / "boxes" / "labels.csv").is_file()

    def has_crops(self) -> bool:
        return (self.root / "crops").is_dir()

    def segmentation_samples(self, split: str) -> list[SegSample]:
        folder = self.root / "images" / split
        if not folder.is_dir():
            return []
        boxes = self.box_table()
        out = []
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            mask = self.root / "masks" / split / f"{path.stem}.png"
            out.append(SegSample(split, path.stem, path, mask if mask.is_file() else None,
                                 tuple(boxes.get((split, path.stem), ()))))
        return out

    def crop_samples(self, split: str) -> list[CropSample]:
        folder = self.root / "crops" / split
        if not folder.is_dir():
            return []
        out = []
        for style_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for path in sorted(style_dir.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                    out.append(CropSample(split, path.stem, style_dir.name, path))
        return out

    def crop_labels(self) -> list[dict]:
        path = self.root / "crops" / "labels.csv"
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


def _safe_extract(zip_path: Path, target: Path, limit: int = MAX_EXTRACT_BYTES) -> None:
    total = 0
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir():
                continue
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise ExportError(f"unsafe path in export zip: {info.filename!r}")
            mode = info.external_attr >> 16
            if mode and not stat.S_ISREG(mode):
                continue  # links and devices are never extracted
            total += info.file_size
            if total > limit:
                raise ExportError("export zip expands beyond the extraction limit")
            dest = target.joinpath(*name.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


@contextlib.contextmanager
def open_export(path: str | Path, tmp_dir: str | Path | None = None) -> Iterator[ExportData]:
    """An export zip (extracted to a temporary folder for the duration) or an already extracted folder."""
    path = Path(path)
    if path.is_dir():
        yield ExportData(path)
        return
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise ExportError(f"{path}: neither an export folder nor an export zip")
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inklabel-export-", dir=tmp_dir) as tmp:
        _safe_extract(path, Path(tmp))
        yield ExportData(Path(tmp))


def read_rgb(path: Path) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ExportError(f"{path.name}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path | None, shape: tuple[int, int]) -> np.ndarray:
    if path is None:
        return np.zeros(shape, np.uint8)
    mask = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ExportError(f"{path.name}: not a readable mask")
    if mask.shape != shape:
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.where(mask > 127, 255, 0).astype(np.uint8)


class SegmentationDataset(Dataset):
    """(uint8 HWC letterboxed image, uint8 HW mask 0/1) pairs; letterboxed arrays are cached in memory.

    With `boxed=True` (training on box labels too, see boxsup.py) each item is (image, mask, known 0/1, Lab image
    float32 CHW, boxes (MAX_BOXES, 4) in canvas pixels, -1 rows after the last)."""

    def __init__(self, samples: list[SegSample], size: int, augment: bool = False, seed: int = 0, cache: bool = True,
                 boxed: bool = False):
        self.samples, self.size, self.augment, self.cache, self.boxed = samples, size, augment, cache, boxed
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._boxes: dict[int, list] = {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._cache:
            return self._cache[index]
        sample = self.samples[index]
        rgb = read_rgb(sample.image)
        mask = read_mask(sample.mask, rgb.shape[:2])
        image, lb = letterbox(rgb, self.size)
        item = (image, letterbox_mask(mask, lb))
        self._boxes[index] = letterbox_boxes(sample.boxes, lb)
        if self.cache:
            self._cache[index] = item
        return item

    def __getitem__(self, index: int):
        image, mask = self.load(index)
        if self.boxed:
            return self._boxed_item(image, mask, self._boxes[index])
        if self.augment:
            image, mask = augment_pair(self.rng, image, mask)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy((mask > 127).astype(np.uint8))


    def _boxed_item(self, image: np.ndarray, mask: np.ndarray, boxes: list):
        mask = (mask > 127).astype(np.uint8)
        known = known_map(mask, boxes)
        if self.augment:
            image, mask, known, boxes = augment_boxed(self.rng, image, mask, known, boxes)
        lab = torch.from_numpy(np.ascontiguousarray(lab_of(image).transpose(2, 0, 1)))
        return (torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(mask)),
                torch.from_numpy(np.ascontiguousarray(known)), lab, pack_boxes(boxes))


class CropDataset(Dataset):
    """(uint8 HWC letterboxed crop, class index)."""

    def __init__(self, samples: list[CropSample], classes: list[str], size: int, augment: bool = False,
                 seed: int = 0, cache: bool = True):
        index = {c: i for i, c in enumerate(classes)}
        self.samples = [s for s in samples if s.style in index]
        self.labels = [index[s.style] for s in self.samples]
        self.size, self.augment, self.cache = size, augment, cache
        self._cache: dict[int, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = self._cache.get(index)
        if image is None:
            image, _ = letterbox(read_rgb(self.samples[index].path), self.size)
            if self.cache:
                self._cache[index] = image
        if self.augment:
            image = augment_crop(self.rng, image)
        return torch.from_numpy(np.ascontiguousarray(image)), self.labels[index]


def worker_init(worker_id: int) -> None:
    """DataLoader workers get their own augmentation stream."""
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(info.seed % (2**32))
