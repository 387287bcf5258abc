"""Metrics: IoU / Dice / pixel accuracy for masks, box AP50 for detections, accuracy / per-class F1 / confusion matrix
for styles."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MaskCounts:
    """Accumulates pixel counts over a dataset: IoU and Dice are dataset-level (sum of intersections over sum of
    unions), and the per-image IoUs are kept for the mean."""

    intersection: int = 0
    union: int = 0
    predicted: int = 0
    target: int = 0
    correct: int = 0
    pixels: int = 0
    background: int = 0
    per_image: list[float] = field(default_factory=list)

    def add(self, pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> None:
        pred, target = np.asarray(pred, bool), np.asarray(target, bool)
        if valid is not None:
            pred, target = pred[valid], target[valid]
        inter = int(np.count_nonzero(pred & target))
        union = int(np.count_nonzero(pred | target))
        self.intersection += inter
        self.union += union
        self.predicted += int(np.count_nonzero(pred))
        self.target += int(np.count_nonzero(target))
        self.correct += int(np.count_nonzero(pred == target))
        self.pixels += int(pred.size)
        self.background += int(pred.size - np.count_nonzero(target))
        self.per_image.append(inter / union if union else 1.0)

    def summary(self) -> dict:
        iou = self.intersection / self.union if self.union else 1.0
        dice = 2 * self.intersection / (self.predicted + self.target) if (self.predicted + self.target) else 1.0
        return {
            "iou": round(iou, 4),
            "dice": round(dice, 4),
            "mean_image_iou": round(float(np.mean(self.per_image)), 4) if self.per_image else None,
            "pixel_accuracy": round(self.correct / self.pixels, 4) if self.pixels else None,
            "baseline_pixel_accuracy": round(self.background / self.pixels, 4) if self.pixels else None,
            "images": len(self.per_image),
        }


def classification_report(y_true: list[int] | np.ndarray, y_pred: list[int] | np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    k = len(classes)
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    matrix = np.zeros((k, k), int)
    np.add.at(matrix, (y_true, y_pred), 1)
    per: dict[str, dict] = {}
    f1s = []
    for i, name in enumerate(classes):
        tp = matrix[i, i]
        fp = matrix[:, i].sum() - tp
        fn = matrix[i, :].sum() - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        support = int(matrix[i, :].sum())
        per[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                     "f1": round(float(f1), 4), "support": support}
        if support:
            f1s.append(f1)
    total = int(matrix.sum())
    return {
        "accuracy": round(float(np.trace(matrix) / total), 4) if total else None,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else None,
        "per_style": per,
        "confusion": {"classes": list(classes), "matrix": matrix.tolist()},
        "samples": total,
    }


def box_ap50(truth: dict, detections: dict) -> tuple[float, float]:
    """pycocotools' bbox AP at IoU 0.5 and recall at IoU 0.5 (100 detections an image, one class). `truth`: image
    key → boxes (x0, y0, x1, y1); `detections`: image key → (box, score) pairs. (0, 0) when nothing is detected."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {key: i + 1 for i, key in enumerate(truth)}
    gt = [{"id": n + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": [x0, y0, x1 - x0, y1 - y0],
           "area": (x1 - x0) * (y1 - y0)}
          for n, (image_id, (x0, y0, x1, y1)) in enumerate((ids[k], b) for k, boxes in truth.items() for b in boxes)]
    dets = [{"image_id": ids[k], "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)}
            for k, found in detections.items() if k in ids for (x0, y0, x1, y1), score in found]
    if not dets or not gt:
        return 0.0, 0.0
    coco = COCO()
    coco.dataset = {"images": [{"id": i} for i in ids.values()], "annotations": gt,
                    "categories": [{"id": 1, "name": "tattoo"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, 0, 0, 2]  # IoU 0.5, all recall points, the one class, all areas, 100 dets
    ap50 = float(np.mean(precision[precision > -1])) if (precision > -1).any() else 0.0
    return ap50, float(max(ev.eval["recall"][0, 0, 0, 2], 0.0))
