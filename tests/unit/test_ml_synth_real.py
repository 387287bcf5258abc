"""Composites on real skin (backend/ml/synth_real.py): windows come only from outside the human boxes, masks are
exact, results are deterministic by seed; the held-out split of the real photos is fixed."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from backend.commands.real_photos import HELD_OUT_EVERY, real_photo_split
from backend.ml.skin import skin_mask
from backend.ml.synth_real import RealBackgrounds, free_area, generate_on_real, yolo_boxes

SKIN = (205, 150, 120)
INK = (0, 255, 0)  # the photos' own "tattoos": pure green, never produced by the composites


def _photo_folder(tmp_path, n=3):
    folder = tmp_path / "real"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.empty((450, 600, 3), np.uint8)
        img[:] = SKIN
        img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
        img[100:180, 150:260] = INK
        cv2.imwrite(str(folder / "images" / f"p{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        # box around the green patch: cx, cy, w, h relative
        (folder / "images" / f"p{i}.txt").write_text(f"0 {205 / 600} {140 / 450} {110 / 600} {80 / 450}\n")
    (folder / "images" / "unlabelled.jpg").write_bytes((folder / "images" / "p0.jpg").read_bytes())
    return folder


def test_windows_never_hold_the_photos_own_tattoos(tmp_path):
    source = RealBackgrounds.from_folder(_photo_folder(tmp_path))
    assert len(source.photos) == 3  # the unlabelled photo is not used: its tattoos are unknown
    rng = np.random.default_rng(1)
    windows = [w for w in (source.window(rng, 1.2) for _ in range(30)) if w is not None]
    assert len(windows) >= 10  # (a window that finds no room without a tattoo is None)
    for window in windows:
        green = (window[..., 1] > 200) & (window[..., 0] < 80)
        assert not green.any()


def test_composites_have_exact_masks_and_are_deterministic(tmp_path):
    source = RealBackgrounds.from_folder(_photo_folder(tmp_path))
    samples = [generate_on_real(seed, source, width=200, height=160, n_tattoos=1) for seed in range(6)]
    inked = [s for s in samples if s.tattoos]
    assert len(inked) >= 4
    for sample in inked:
        union = np.zeros(sample.mask.shape, bool)
        for tattoo in sample.tattoos:
            union |= tattoo.mask
        assert np.array_equal(union, sample.mask > 0)
        # the ink changed the photo where the mask is, and the skin elsewhere kept its colour
        diff = np.abs(sample.image.astype(int) - np.array(SKIN)).sum(axis=2)
        assert np.median(diff[sample.mask > 0]) > 3 * np.median(diff[sample.mask == 0])
    again = generate_on_real(inked[0].seed, source, width=200, height=160, n_tattoos=1)
    assert np.array_equal(again.image, inked[0].image) and np.array_equal(again.mask, inked[0].mask)


def test_yolo_boxes_and_free_area(tmp_path):
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.2 0.4\nbad line\n1 x 0.5 0.1 0.1\n")
    assert yolo_boxes(label, 100, 50) == [(40.0, 15.0, 60.0, 35.0)]
    free = free_area((50, 100), [(40, 15, 60, 35)])
    assert not free[25, 50] and free[2, 2]


def test_skin_mask_finds_skin_not_green():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, :20] = SKIN
    img[:, 20:] = INK
    mask = skin_mask(img)
    assert mask[:, 2:18].mean() > 0.9 and mask[:, 22:].mean() < 0.1


def test_real_photo_split_is_fixed_by_name(tmp_path):
    folder = _photo_folder(tmp_path, n=8)
    train, held = real_photo_split(folder)
    assert held == [f"p{i}.jpg" for i in range(8) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    assert sorted(train + held) == [f"p{i}.jpg" for i in range(8)] and not set(train) & set(held)
