"""Training loops for the segmenter and the style classifier, reading an export (backend/ml/data.py).

    with open_export(zip_path) as data:
        result = train_model(data, TrainOptions(kind="segmenter", epochs=20), progress=callback)
    save_bundle(result.model, result.sidecar, models_dir, name)

Both loops: augmentation, validation after every epoch, the best epoch's weights kept, a final evaluation of
those weights on the validation (and test) split through the same inference code the pre-fill uses. No Flask here;
`progress(done, total, message)` is how callers (tqdm in the CLI, the job's progress in the API) follow along.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from backend.ml.data import (
    CropDataset,
    CropSample,
    ExportData,
    ExportError,
    SegmentationDataset,
    SegSample,
    read_mask,
    read_rgb,
    worker_init,
)
from backend.ml.boxsup import PAIRWISE_WEIGHT, box_fill_iou, box_supervised_loss
from backend.ml.device import autocast, cpu_count, is_cuda, prepare_model, resolve_device, to_device
from backend.ml.infer import ClassifierRunner, SegmenterRunner
from backend.ml.metrics import MaskCounts, classification_report
from backend.ml.defaults import CLASSIFIER_BACKBONE, SEGMENTER_ENCODER
from backend.ml.nets import IMAGENET_MEAN, IMAGENET_STD, build_classifier, build_segmenter
from backend.ml.packaged_weights import packaged_file
from backend.ml.prefill import PrefillSettings, work_size
from backend.ml.prefill_calibration import MIN_BOXED_IMAGES, PREFILL_FIT_KEYS, BoxedImage, calibrate_prefill
from backend.ml.transforms import normalize

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
EpochHook = Callable[[dict], None]  # called with each epoch's history entry as soon as it is known (live curves)

DEFAULTS = {
    "segmenter": {"epochs": 30, "batch_size": 8, "input_size": 512, "lr": 2e-3},
    "classifier": {"epochs": 20, "batch_size": 32, "input_size": 128, "lr": 2e-3},
}


@dataclass
class TrainOptions:
    kind: str = "segmenter"
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    input_size: Optional[int] = None
    lr: Optional[float] = None
    weight_decay: float = 1e-4
    arch: str = "Unet"
    encoder: str = SEGMENTER_ENCODER
    decoder_channels: Optional[list[int]] = None
    backbone: str = CLASSIFIER_BACKBONE
    # "imagenet" or "none"; by default ImageNet where its weights come installed (packaged_weights.py), else none
    encoder_weights: Optional[str] = None
    device: str = "auto"
    workers: Optional[int] = None  # DataLoader workers; default 0 on CPU, up to 8 on CUDA
    seed: int = 0
    val_fraction: float = 0.15  # carved from train when the export has no val split
    time_limit: Optional[float] = None  # seconds; the schedule anneals by then and training stops there
    classes: Optional[list[str]] = None  # classifier: allowed styles in order (the taxonomy's trainable ones)
    threshold: float = 0.5

    def resolved(self) -> "TrainOptions":
        if self.kind not in DEFAULTS:
            raise ValueError(f"kind must be segmenter or classifier, not {self.kind!r}")
        out = copy.copy(self)
        for key, value in DEFAULTS[self.kind].items():
            if getattr(out, key) is None:
                setattr(out, key, value)
        if out.encoder_weights is None:
            network = out.encoder.removeprefix("tu-") if out.kind == "segmenter" else out.backbone
            out.encoder_weights = "imagenet" if packaged_file(network) is not None else "none"
        if out.epochs < 1 or out.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if out.kind == "segmenter" and out.input_size % 32:
            raise ValueError("the segmenter input size must be a multiple of 32")
        if not 32 <= out.input_size <= 2048:
            raise ValueError("input size must be between 32 and 2048")
        return out

    def public(self) -> dict:
        keys = ["epochs", "batch_size", "input_size", "lr", "weight_decay", "encoder_weights", "seed", "threshold",
                "val_fraction"]
        keys += ["arch", "encoder", "decoder_channels"] if self.kind == "segmenter" else ["backbone"]
        return {k: getattr(self, k) for k in keys}


@dataclass
class TrainResult:
    model: torch.nn.Module
    sidecar: dict
    metrics: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def headline(self) -> float | None:
        """The number promote-if-better compares: validation IoU (segmenter) or accuracy (classifier)."""
        key = "iou" if self.sidecar["kind"] == "segmenter" else "accuracy"
        return (self.metrics.get("val") or {}).get(key)


def _hash_fraction(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _carve(items: list, key: Callable, fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic validation split by key hash (items with one key stay together)."""
    train = [it for it in items if _hash_fraction(key(it), seed) >= fraction]
    val = [it for it in items if _hash_fraction(key(it), seed) < fraction]
    if not val and len(items) > 1:
        val, train = items[-1:], items[:-1]
    return train, val


def _loader(dataset, batch_size: int, shuffle: bool, device: torch.device, workers: Optional[int], seed: int):
    if workers is None:
        workers = min(8, max(0, cpu_count() - 1)) if is_cuda(device) else 0
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      pin_memory=is_cuda(device), drop_last=shuffle and len(dataset) > batch_size,
                      persistent_workers=workers > 0, worker_init_fn=worker_init, generator=g)


def _dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    denom = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return (1 - (2 * inter + 1) / (denom + 1)).mean()


PCT_START, DIV_FACTOR, FINAL_DIV_FACTOR = 0.15, 10.0, 100.0  # lr/10 → lr over 15 % of the run → lr/1000
BETA1 = (0.95, 0.85)  # Adam's first moment decay: high while the rate is low, low at its peak (as OneCycleLR)


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0))) / 2


class BudgetSchedule:
    """One-cycle learning rate and momentum (OneCycleLR's shape) over the time budget: progress is the share of the
    planned steps done or of the budget spent, whichever is further along.

    A run its time limit stops part-way through a step-based one-cycle ends near the peak learning rate, never
    annealed (the demo on a busy machine at epoch 3 of 12); measuring progress by time as well makes a stopped run
    anneal by the time it stops."""

    def __init__(self, optimizer, lr: float, total_steps: int, time_limit: float,
                 clock: Callable[[], float] = time.monotonic):
        self.optimizer, self.lr, self.total = optimizer, lr, max(1, total_steps)
        self.time_limit, self.clock, self.started = time_limit, clock, clock()
        self.initial, self.final = lr / DIV_FACTOR, lr / DIV_FACTOR / FINAL_DIV_FACTOR
        self.steps = 0
        self._apply()

    @property
    def progress(self) -> float:
        """How far through the run, 0..1."""
        return min(1.0, max(self.steps / self.total, (self.clock() - self.started) / self.time_limit))

    @property
    def out_of_time(self) -> bool:
        return self.clock() - self.started >= self.time_limit

    def _apply(self) -> None:
        t = self.progress
        if t < PCT_START:
            lr, beta1 = _cosine(self.initial, self.lr, t / PCT_START), _cosine(*BETA1, t / PCT_START)
        else:
            fraction = (t - PCT_START) / (1 - PCT_START)
            lr, beta1 = _cosine(self.lr, self.final, fraction), _cosine(BETA1[1], BETA1[0], fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
            if "betas" in group:
                group["betas"] = (beta1, group["betas"][1])

    def step(self) -> None:
        self.steps += 1
        self._apply()


class StepSchedule(torch.optim.lr_scheduler.OneCycleLR):
    """The one-cycle of a run without a time limit: by steps only, deterministic."""

    def __init__(self, optimizer, lr: float, total_steps: int):
        super().__init__(optimizer, max_lr=[lr * g.get("lr_scale", 1.0) for g in optimizer.param_groups],
                         total_steps=max(1, total_steps), pct_start=PCT_START,
                         div_factor=DIV_FACTOR, final_div_factor=FINAL_DIV_FACTOR)

    @property
    def progress(self) -> float:
        return min(1.0, self.last_epoch / self.total_steps)

    out_of_time = False


PRETRAINED_LR_SCALE = 0.1


def _optimizer(model: torch.nn.Module, pretrained: Optional[torch.nn.Module], opts: TrainOptions):
    """AdamW. With `pretrained` (the part that came with ImageNet weights) its parameters learn at a tenth of the
    rate of the new layers, so the large early updates a randomly initialised decoder or head asks for do not wash
    out the features the encoder brought."""
    own = {id(p) for p in pretrained.parameters()} if pretrained is not None else set()
    groups = [{"params": [p for p in model.parameters() if id(p) in own], "lr_scale": PRETRAINED_LR_SCALE},
              {"params": [p for p in model.parameters() if id(p) not in own], "lr_scale": 1.0}]
    groups = [dict(g, lr=opts.lr * g["lr_scale"]) for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=opts.lr, weight_decay=opts.weight_decay)


def _backbone_only(model: torch.nn.Module) -> torch.nn.Module:
    """A timm classifier's parameters less its head, as one module for _optimizer."""
    head = {id(p) for p in model.get_classifier().parameters()}
    return torch.nn.ParameterList([p for p in model.parameters() if id(p) not in head])


def _schedule(optimizer, lr: float, total_steps: int, time_limit: Optional[float] = None):
    if time_limit:
        return BudgetSchedule(optimizer, lr, total_steps, time_limit)
    return StepSchedule(optimizer, lr, total_steps)


class _Clock:
    def __init__(self, total: int, progress: Optional[Progress]):
        self.total, self.done, self.progress = total, 0, progress

    def tick(self, message: str) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, message)


def train_model(data: ExportData, options: TrainOptions, progress: Optional[Progress] = None,
                on_epoch: Optional[EpochHook] = None) -> TrainResult:
    opts = options.resolved()
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed % 2**32)
    if opts.kind == "segmenter":
        return _train_segmenter(data, opts, progress, on_epoch)
    return _train_classifier(data, opts, progress, on_epoch)


# --- segmenter ---------------------------------------------------------------------------------------------------

def _seg_splits(data: ExportData, opts: TrainOptions) -> tuple[list[SegSample], list[SegSample], str]:
    if not data.has_masks() and not data.has_boxes():
        raise ExportError("the export has no masks/ folder and no boxes: make an export that includes the 'masks' "
                          "format")
    train = data.segmentation_samples("train")
    val = data.segmentation_samples("val")
    source = "export"
    if not val:
        train, val = _carve(train, lambda s: s.key, opts.val_fraction, opts.seed)
        source = "carved from train"
    if len(train) < 2:
        raise ExportError(f"the export has {len(train)} training image(s); label and accept more images first")
    return train, val, source


CALIBRATION_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(12))  # 0.30 … 0.85
MIN_CALIBRATION_IMAGES = 8


def evaluate_segmenter(runner: SegmenterRunner, samples: list[SegSample], batch_size: int = 8,
                       thresholds: tuple[float, ...] = ()) -> dict:
    """Dataset-level IoU / Dice at each image's own resolution, through the pre-fill's inference path, at the
    runner's threshold; with `thresholds`, also the IoU at each of them (`iou_by_threshold`)."""
    counts = MaskCounts()
    by_threshold = {t: [0, 0] for t in thresholds}
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        images = [read_rgb(s.image) for s in chunk]
        probs, _ = runner.predict(images)
        for s, im, prob in zip(chunk, images, probs):
            truth = read_mask(s.mask, im.shape[:2]) > 0
            counts.add(prob >= runner.threshold, truth)
            for t, acc in by_threshold.items():
                pred = prob >= t
                acc[0] += int(np.count_nonzero(pred & truth))
                acc[1] += int(np.count_nonzero(pred | truth))
    out = counts.summary()
    if thresholds:
        out["iou_by_threshold"] = {f"{t:.2f}": round(i / u, 4) if u else 1.0 for t, (i, u) in by_threshold.items()}
    return out


def calibrate_threshold(runner: SegmenterRunner, samples: list[SegSample]) -> tuple[float, dict]:
    """The probability cut with the best validation IoU (0.5 when there are too few validation images to say)."""
    if len(samples) < MIN_CALIBRATION_IMAGES:
        return runner.threshold, {}
    report = evaluate_segmenter(runner, samples, thresholds=CALIBRATION_THRESHOLDS)
    scores = report["iou_by_threshold"]
    best = max(scores, key=lambda k: (scores[k], -abs(float(k) - 0.5)))
    return float(best), scores


def fit_prefill(runner: SegmenterRunner, samples: list[SegSample], batch_size: int = 8) -> dict | None:
    """prefill_calibration.calibrate_prefill on the box-labelled samples (train and validation alike, see its
    docstring), each seen as the pre-fill sees a photo: at its working resolution, through the runner, with the
    on-body gate on (the default; INKLABEL_PREFILL_ON_BODY=0 serves without it); None with too few of them. The
    probability cut the runner already has is the candidate that wins ties."""
    boxed = [s for s in samples if s.boxes]
    if len(boxed) < MIN_BOXED_IMAGES:
        return None
    max_side = max(PrefillSettings.work_max_side, runner.input_size)
    items = []
    for i in range(0, len(boxed), batch_size):
        chunk = boxed[i:i + batch_size]
        images, factors = [], []
        for s in chunk:
            rgb = read_rgb(s.image)
            w, h, _ = work_size(rgb.shape[1], rgb.shape[0], max_side)
            factors.append(w / rgb.shape[1])
            images.append(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if w != rgb.shape[1] else rgb)
        probs, _ = runner.predict(images)
        items += [BoxedImage(prob, rgb, [[v * f for v in box] for box in s.boxes])
                  for s, rgb, prob, f in zip(chunk, images, probs, factors)]
    return calibrate_prefill(items, PrefillSettings(threshold=runner.threshold))


def _epoch_val_segmenter(model, loader, device, boxes: bool = False) -> dict:
    """Validation IoU/Dice on masks; with `boxes`, the box-fill IoU of box-labelled images (boxsup.box_fill_iou)
    reported as "iou" so that the best epoch is chosen the same way."""
    model.eval()
    counts = MaskCounts()
    inter = union = 0
    with torch.inference_mode():
        for batch in loader:
            x = to_device(normalize(batch[0].to(device)), device)
            with autocast(device):
                logits = model(x)
            pred = (logits.float() > 0)[:, 0].cpu().numpy()
            if boxes:
                for p, b in zip(pred, batch[4].tolist()):
                    i, u = box_fill_iou(p, [box for box in b if box[0] >= 0])
                    inter, union = inter + i, union + u
            else:
                for p, m in zip(pred, batch[1].numpy()):
                    counts.add(p, m > 0)
    if boxes:
        iou = round(inter / union, 4) if union else 1.0
        return {"iou": iou, "dice": round(2 * iou / (1 + iou), 4), "measure": "box_fill_iou"}
    return counts.summary()


def _train_segmenter(data: ExportData, opts: TrainOptions, progress: Optional[Progress],
                      on_epoch: Optional[EpochHook] = None) -> TrainResult:
    device = resolve_device(opts.device)
    train_s, val_all, val_source = _seg_splits(data, opts)
    # Box-labelled images (boxsup.py) train with the box losses; they are validated on their boxes, the others on
    # their masks (the headline IoU when there are any).
    boxed = any(s.boxes for s in train_s)
    val_s = [s for s in val_all if not s.boxes]
    val_boxed = [s for s in val_all if s.boxes]
    train_ds = SegmentationDataset(train_s, opts.input_size, augment=True, seed=opts.seed, boxed=boxed)
    val_dl = _loader(SegmentationDataset(val_s or val_boxed, opts.input_size, augment=False, boxed=not val_s),
                     opts.batch_size, False, device, opts.workers, opts.seed)
    train_dl = _loader(train_ds, opts.batch_size, True, device, opts.workers, opts.seed)

    model, notes = build_segmenter(opts.arch, opts.encoder, opts.encoder_weights, opts.decoder_channels)
    model = prepare_model(model, device, train=True)
    optimizer = _optimizer(model, model.encoder if notes["pretrained"] else None, opts)
    steps = opts.epochs * len(train_dl)
    scheduler = _schedule(optimizer, opts.lr, steps, opts.time_limit)
    clock = _Clock(steps, progress)

    history, best, best_state, best_epoch = [], -1.0, None, 0
    started = time.monotonic()
    for epoch in range(1, opts.epochs + 1):
        model.train()
        losses = []
        for batch in train_dl:
            x = to_device(normalize(batch[0].to(device, non_blocking=True)), device)
            y = batch[1].to(device, non_blocking=True).float().unsqueeze(1)
            with autocast(device):
                logits = model(x)
            logits = logits.float()
            if boxed:
                known, lab, boxes = (t.to(device, non_blocking=True) for t in batch[2:])
                ramp = min(1.0, scheduler.progress / 0.2)  # BoxInst warms the pairwise term up
                loss, _ = box_supervised_loss(logits, y, known.float().unsqueeze(1), boxes, lab,
                                              pairwise_weight=PAIRWISE_WEIGHT * ramp)
            else:
                loss = F.binary_cross_entropy_with_logits(logits, y) + _dice_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            clock.tick(f"epoch {epoch}/{opts.epochs} loss {losses[-1]:.3f}")
            if scheduler.out_of_time:  # annealed: the rest of the epoch would train at the final rate
                break
        val = _epoch_val_segmenter(model, val_dl, device, boxes=not val_s)
        entry = {"epoch": epoch, "train_loss": round(float(np.mean(losses)), 4), "val_iou": val["iou"],
                 "val_dice": val["dice"], "seconds": round(time.monotonic() - started, 1)}
        history.append(entry)
        if on_epoch:
            on_epoch(dict(entry))
        log.info("segmenter epoch %d: %s", epoch, entry)
        if progress:
            progress(clock.done, clock.total, f"epoch {epoch}/{opts.epochs} val IoU {val['iou']:.3f}")
        if val["iou"] > best:
            best, best_epoch = val["iou"], epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if scheduler.out_of_time and epoch < opts.epochs:
            notes.setdefault("stopped", f"time limit {opts.time_limit:.0f}s reached in epoch {epoch}")
            break
    train_seconds = time.monotonic() - started

    model = model.to("cpu", memory_format=torch.contiguous_format)
    model.load_state_dict(best_state)
    model.eval()
    runner = SegmenterRunner(model, opts.input_size, IMAGENET_MEAN, IMAGENET_STD, device, opts.threshold)
    threshold, by_threshold = calibrate_threshold(runner, val_s)
    runner.threshold = threshold
    if progress and any(s.boxes for s in train_s + val_all):
        progress(clock.done, clock.total, "fitting the pre-fill to the boxes")
    prefill_fit = fit_prefill(runner, train_s + val_all)
    metrics = {
        "val": evaluate_segmenter(runner, val_s) if val_s else {"iou": best, "measure": "box_fill_iou"},
        "threshold": threshold,
        "val_iou_by_threshold": by_threshold,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "history": history,
        "train_seconds": round(train_seconds, 1),
        "train_images": len(train_s),
        "train_box_images": sum(1 for s in train_s if s.boxes),
        "val_images": len(val_s) + len(val_boxed),
        "val_source": val_source,
        "device": str(device),
        "pretrained": notes["pretrained"],
        "first_loss": history[0]["train_loss"] if history else None,
    }
    if prefill_fit is not None:
        metrics["prefill_fit"] = prefill_fit
    test_s = [s for s in data.segmentation_samples("test") if not s.boxes]
    if test_s:
        metrics["test"] = evaluate_segmenter(runner, test_s)
    model = runner.model.to("cpu", memory_format=torch.contiguous_format)
    sidecar = {
        "kind": "segmenter",
        "architecture": notes["architecture"],
        "classes": ["tattoo"],
        "input_size": opts.input_size,
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "export_id": data.export_id,
        "metrics": metrics,
        "training": {**opts.public(), "threshold": threshold, "pretrained": notes["pretrained"],
                     **({"prefill": {k: prefill_fit[k] for k in PREFILL_FIT_KEYS}} if prefill_fit else {}),
                     "device": str(device), **({"stopped": notes["stopped"]} if "stopped" in notes else {})},
    }
    return TrainResult(model, sidecar, metrics, [notes["warning"]] if "warning" in notes else [])


# --- classifier --------------------------------------------------------------------------------------------------

def _cls_splits(data: ExportData, opts: TrainOptions) -> tuple[list[CropSample], list[CropSample], list[str], str]:
    if not data.has_crops():
        raise ExportError("the export has no crops/ folder: make an export that includes the 'crops' format")
    train = data.crop_samples("train")
    present = {s.style for s in train}
    order = list(opts.classes) if opts.classes is not None else sorted(present)
    classes = [c for c in order if c in present]
    if len(classes) < 2:
        raise ExportError(f"the export has training crops of {len(classes)} trainable style(s) "
                          f"({', '.join(classes) or 'none'}); the classifier needs at least two")
    val = [s for s in data.crop_samples("val") if s.style in classes]
    source = "export"
    if not val:
        image_of = {row.get("region_id"): row.get("image") or row.get("region_id") for row in data.crop_labels()}
        train, val = _carve(train, lambda s: image_of.get(s.region_id) or s.region_id, opts.val_fraction, opts.seed)
        source = "carved from train"
    return [s for s in train if s.style in classes], val, classes, source


def evaluate_classifier(runner: ClassifierRunner, samples: list[CropSample]) -> dict:
    index = {c: i for i, c in enumerate(runner.classes)}
    samples = [s for s in samples if s.style in index]
    probs = runner.predict([read_rgb(s.path) for s in samples])
    y_pred = probs.argmax(axis=1) if len(samples) else np.zeros(0, int)
    return classification_report([index[s.style] for s in samples], y_pred, runner.classes)


def _train_classifier(data: ExportData, opts: TrainOptions, progress: Optional[Progress],
                       on_epoch: Optional[EpochHook] = None) -> TrainResult:
    device = resolve_device(opts.device)
    train_s, val_s, classes, val_source = _cls_splits(data, opts)
    train_ds = CropDataset(train_s, classes, opts.input_size, augment=True, seed=opts.seed)
    val_ds = CropDataset(val_s, classes, opts.input_size, augment=False)
    train_dl = _loader(train_ds, opts.batch_size, True, device, opts.workers, opts.seed)
    val_dl = _loader(val_ds, opts.batch_size, False, device, opts.workers, opts.seed)

    counts = np.bincount(train_ds.labels, minlength=len(classes)).astype(np.float64)
    weights = torch.tensor(1.0 / np.sqrt(np.maximum(counts, 1)), dtype=torch.float32)
    weights = (weights / weights.mean()).to(device)

    model, notes = build_classifier(opts.backbone, len(classes), opts.encoder_weights)
    model = prepare_model(model, device, train=True)
    optimizer = _optimizer(model, _backbone_only(model) if notes["pretrained"] else None, opts)
    steps = opts.epochs * len(train_dl)
    scheduler = _schedule(optimizer, opts.lr, steps, opts.time_limit)
    clock = _Clock(steps, progress)

    history, best, best_state, best_epoch = [], (-1.0, -1.0), None, 0
    started = time.monotonic()
    for epoch in range(1, opts.epochs + 1):
        model.train()
        losses = []
        for images, labels in train_dl:
            x = to_device(normalize(images.to(device, non_blocking=True)), device)
            y = labels.to(device, non_blocking=True)
            with autocast(device):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, weight=weights, label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            clock.tick(f"epoch {epoch}/{opts.epochs} loss {losses[-1]:.3f}")
            if scheduler.out_of_time:  # annealed: the rest of the epoch would train at the final rate
                break
        model.eval()
        y_true, y_pred = [], []
        with torch.inference_mode():
            for images, labels in val_dl:
                x = to_device(normalize(images.to(device)), device)
                with autocast(device):
                    y_pred += model(x).float().argmax(dim=1).cpu().tolist()
                y_true += labels.tolist()
        report = classification_report(y_true, y_pred, classes)
        acc, f1 = report["accuracy"] or 0.0, report["macro_f1"] or 0.0
        entry = {"epoch": epoch, "train_loss": round(float(np.mean(losses)), 4), "val_accuracy": acc,
                 "val_macro_f1": f1, "seconds": round(time.monotonic() - started, 1)}
        history.append(entry)
        if on_epoch:
            on_epoch(dict(entry))
        log.info("classifier epoch %d: %s", epoch, entry)
        if progress:
            progress(clock.done, clock.total, f"epoch {epoch}/{opts.epochs} val accuracy {acc:.3f}")
        if (acc, f1) > best:
            best, best_epoch = (acc, f1), epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if scheduler.out_of_time and epoch < opts.epochs:
            notes.setdefault("stopped", f"time limit {opts.time_limit:.0f}s reached in epoch {epoch}")
            break
    train_seconds = time.monotonic() - started

    model = model.to("cpu", memory_format=torch.contiguous_format)
    model.load_state_dict(best_state)
    model.eval()
    runner = ClassifierRunner(model, opts.input_size, IMAGENET_MEAN, IMAGENET_STD, device, classes)
    metrics = {
        "val": evaluate_classifier(runner, val_s),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "history": history,
        "train_seconds": round(train_seconds, 1),
        "train_crops": len(train_s),
        "val_crops": len(val_s),
        "val_source": val_source,
        "device": str(device),
        "pretrained": notes["pretrained"],
        "first_loss": history[0]["train_loss"] if history else None,
    }
    test_s = [s for s in data.crop_samples("test") if s.style in classes]
    if test_s:
        metrics["test"] = evaluate_classifier(runner, test_s)
    model = runner.model.to("cpu", memory_format=torch.contiguous_format)
    sidecar = {
        "kind": "classifier",
        "architecture": notes["architecture"],
        "classes": classes,
        "input_size": opts.input_size,
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "export_id": data.export_id,
        "metrics": metrics,
        "training": {**opts.public(), **data.crop_settings(), "pretrained": notes["pretrained"],
                     "device": str(device), **({"stopped": notes["stopped"]} if "stopped" in notes else {})},
    }
    return TrainResult(model, sidecar, metrics, [notes["warning"]] if "warning" in notes else [])

