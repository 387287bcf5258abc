"""Box-supervised segmentation (backend/ml/boxsup.py): the BoxInst terms reward what they should, box labels
travel through augmentation, and an export with box-only images trains through train_model."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from backend.ml.boxsup import (
    augment_boxed,
    box_fill_iou,
    box_supervised_loss,
    known_map,
    lab_of,
    pack_boxes,
    pairwise_loss,
    projection_loss,
)
from backend.ml.data import SegmentationDataset, open_export
from backend.ml.prefill_calibration import MIN_BOXED_IMAGES
from backend.ml.synth import write_export_folder
from backend.ml.train import TrainOptions, train_model

from ..support.models import TINY_DECODER


def _logits(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.where(mask, 6.0, -6.0).astype(np.float32))[None, None]


def test_projection_term_wants_every_row_and_column_of_the_box_touched():
    box = pack_boxes([(10, 10, 30, 30)])[None]
    ring = np.zeros((40, 40), bool)
    ring[10:30, 10] = ring[10, 10:30] = True  # an L touching every row and column of the box
    dot = np.zeros((40, 40), bool)
    dot[18:22, 18:22] = True
    touched = float(projection_loss(torch.sigmoid(_logits(ring)), box))
    assert touched < 0.02
    assert float(projection_loss(torch.sigmoid(_logits(dot)), box)) > 0.5 > touched
    assert float(projection_loss(torch.sigmoid(_logits(dot)), pack_boxes([])[None])) == 0.0


def test_pairwise_term_prefers_masks_that_follow_the_colour_edges():
    image = np.full((64, 64, 3), 200, np.uint8)
    image[20:44, 20:44] = 30  # dark ink square inside a light box region
    lab = torch.from_numpy(lab_of(image).transpose(2, 0, 1).copy())[None]
    in_box = torch.zeros(1, 1, 64, 64)
    in_box[..., 10:54, 10:54] = 1
    follows = np.zeros((64, 64), bool)
    follows[20:44, 20:44] = True
    half = np.zeros((64, 64), bool)
    half[10:54, 10:32] = True  # cuts through both the ink and the skin
    assert float(pairwise_loss(_logits(follows), lab, in_box)) < float(pairwise_loss(_logits(half), lab, in_box))


def test_known_map_and_whole_loss_treat_outside_boxes_as_background():
    mask = np.zeros((32, 32), np.uint8)
    known = known_map(mask, [(8, 8, 24, 24)])
    assert known[8:24, 8:24].sum() == 0 and known.sum() == 32 * 32 - 16 * 16
    image = np.full((32, 32, 3), 180, np.uint8)
    lab = torch.from_numpy(lab_of(image).transpose(2, 0, 1).copy())[None]
    target = torch.zeros(1, 1, 32, 32)
    k = torch.from_numpy(known).float()[None, None]
    boxes = pack_boxes([(8, 8, 24, 24)])[None]
    inside = np.zeros((32, 32), bool)
    inside[8:24, 8:24] = True
    spill = np.ones((32, 32), bool)
    good, parts = box_supervised_loss(_logits(inside), target, k, boxes, lab)
    bad, _ = box_supervised_loss(_logits(spill), target, k, boxes, lab)
    assert set(parts) == {"mask", "projection", "pairwise"}
    assert float(good) < float(bad)


def test_boxes_follow_the_augmentation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        image = np.zeros((64, 64, 3), np.uint8)
        image[10:30, 20:50] = 255
        mask = np.zeros((64, 64), np.uint8)
        known = known_map(mask, [(20, 10, 50, 30)])
        out, _, out_known, boxes = augment_boxed(rng, image, mask, known, [(20, 10, 50, 30)])
        if not boxes:
            continue
        (x0, y0, x1, y1), = boxes
        bright = out.max(axis=2) > 128
        assert bright[y0:y1, x0:x1].mean() > 0.9
        assert not out_known[y0:y1, x0:x1].any()


def _to_box_only(export, every: int = 2) -> int:
    """Turn every `every`-th training image of a procedural export into a box-only image (mask deleted, the
    tattoos' bounding boxes listed in boxes/labels.csv as helper exports do). Returns how many."""
    rows = []
    for k, path in enumerate(sorted((export / "masks" / "train").glob("*.png"))):
        if k % every:
            continue
        mask = np.asarray(PILImage.open(path)) > 0
        ys, xs = np.nonzero(mask)
        if len(xs):
            rows.append({"split": "train", "image": path.stem, "x0": xs.min(), "y0": ys.min(), "x1": xs.max() + 1,
                         "y1": ys.max() + 1})
            PILImage.fromarray(np.zeros(mask.shape, np.uint8)).save(path)
    (export / "boxes").mkdir()
    with open(export / "boxes" / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["split", "image", "x0", "y0", "x1", "y1"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


@pytest.mark.slow  # trains a tiny model (~30 s on a loaded 2-core machine)
def test_box_and_mask_labelled_images_train_together(tmp_path):
    export = tmp_path / "export"
    write_export_folder(export, 24, seed=5, width=96, height=96, p_empty=0.0, n_tattoos=1)
    boxed = _to_box_only(export)
    assert boxed >= MIN_BOXED_IMAGES
    with open_export(export) as data:
        samples = data.segmentation_samples("train")
        assert sum(1 for s in samples if s.boxes) == boxed
        item = SegmentationDataset(samples, 64, boxed=True)[next(i for i, s in enumerate(samples) if s.boxes)]
        assert len(item) == 5 and int((item[4][:, 0] >= 0).sum()) == 1 and int(item[2].sum()) < 64 * 64
        result = train_model(data, TrainOptions(kind="segmenter", epochs=5, input_size=64, batch_size=8, lr=1e-2,
                                                decoder_channels=TINY_DECODER, device="cpu"))
    assert result.metrics["train_box_images"] == boxed
    assert all(np.isfinite(h["train_loss"]) for h in result.metrics["history"])
    # the pre-fill is fitted to the boxes (train.fit_prefill), and the model file says how
    fit = result.metrics["prefill_fit"]
    assert fit["images"] == boxed and fit["measure"] == "box_ap50" and 0 <= fit["ap50"] <= 1
    assert result.sidecar["training"]["prefill"] == {k: fit[k] for k in ("threshold", "group_gap", "min_score")}


def test_a_small_net_learns_shapes_tighter_than_their_boxes_from_boxes_alone():
    """Box labels only (no mask anywhere): the learned masks fit the ink better than the boxes themselves do."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images, truths, boxes = [], [], []
    for _ in range(8):
        img = np.full((48, 48, 3), (200, 150, 125), np.float32) + rng.normal(0, 3, (48, 48, 3))
        truth = np.zeros((48, 48), np.uint8)
        cx, cy = rng.integers(16, 32, 2)
        cv2.ellipse(truth, (int(cx), int(cy)), (int(rng.integers(6, 12)), int(rng.integers(6, 12))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        img[truth > 0] = (40, 40, 50)
        ys, xs = np.nonzero(truth)
        box = (int(xs.min()) - 2, int(ys.min()) - 2, int(xs.max()) + 3, int(ys.max()) + 3)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        truths.append(truth)
        boxes.append(box)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    lab = torch.from_numpy(np.stack([lab_of(im).transpose(2, 0, 1) for im in images]))
    known = torch.from_numpy(np.stack([known_map(np.zeros((48, 48), np.uint8), [b]) for b in boxes])).float()[:, None]
    packed = torch.stack([pack_boxes([b]) for b in boxes])
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 1, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        loss, _ = box_supervised_loss(net(x), torch.zeros(8, 1, 48, 48), known, packed, lab)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = (net(x)[:, 0] > 0).numpy()
    learned = np.mean([(p & (t > 0)).sum() / max(1, (p | (t > 0)).sum()) for p, t in zip(pred, truths)])
    box_iou = np.mean([t.sum() / ((b[2] - b[0]) * (b[3] - b[1])) for t, b in zip(truths, boxes)])
    assert learned > 0.85 > box_iou, (learned, box_iou)


def test_box_fill_iou():
    pred = np.zeros((20, 20), bool)
    pred[2:6, 2:6] = True
    assert box_fill_iou(pred, [(2, 2, 6, 6)]) == (16, 16)
    assert box_fill_iou(pred, [(10, 10, 14, 14)]) == (0, 32)
