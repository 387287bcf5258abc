"""The batch pre-fill's hand-overs between processes (backend/jobs/prefill.py): canvases from the decode workers as
one shared-memory tensor a batch (or through the pipe when /dev/shm has no room), the work image as a view of its
canvas, the uint8 maps to the tracing processes through a shared map file, the embedding's rounding. (The
benchmark's stubbed-model mode, which runs the whole pool path: tests/ops/test_bench_prefill.py.)"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.ml.prefill import PrefillSettings, trace_mapped, trace_mapped_many, trace_prefill
from backend.ml.synth import generate_image
from backend.ml.letterbox import unletterbox
from backend.ml.transforms import letterbox
from backend.ml.map_file import MapRing
from backend.jobs.prefill import _batch_items, _Collate, _DecodeDataset, _loader_plan
from backend.jobs.predictions import _prediction_values, _rounded


class _FakeStore:
    """BlobStore.open_rgb for _DecodeDataset: the image of a row is looked up by its sha256."""

    def __init__(self, images: dict):
        self.images = images

    def open_rgb(self, row, max_side=None):
        if row.sha256 not in self.images:
            raise FileNotFoundError(row.sha256)
        return Image.fromarray(self.images[row.sha256])


@pytest.mark.parametrize("shared", [True, False])
def test_batches_carry_stacked_canvases_and_the_work_image(shared):
    rng = np.random.default_rng(0)
    images = {"in": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),  # long side = input size: inside the canvas
              "small": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),  # scaled up into the canvas
              "big": rng.integers(0, 255, (96, 72, 3), dtype=np.uint8)}  # scaled down
    rows = [(1, "in", "png", 64, 48), (2, "gone", "png", 10, 10), (3, "small", "png", 40, 30),
            (4, "big", "png", 72, 96)]
    dataset = _DecodeDataset(rows, _FakeStore(images), max_side=512, input_size=64, keep_rgb=True)
    items = [dataset[i] for i in range(len(rows))]
    assert items[0]["rgb"] is None  # not sent: the canvas holds it
    assert items[2]["rgb"] is not None
    good, bad, canvases = _batch_items(_Collate(shared)(items), keep_rgb=True)
    assert [item["id"] for item in bad] == [2] and [item["id"] for item in good] == [1, 3, 4]
    assert canvases.shape == (3, 64, 64, 3) and canvases.dtype == np.uint8
    for item, canvas, key in zip(good, canvases, ["in", "small", "big"]):
        assert "canvas" not in item
        assert np.array_equal(item["rgb"], images[key])
        assert np.array_equal(canvas, letterbox(images[key], 64)[0])
    assert np.shares_memory(good[0]["rgb"], canvases)
    # without a classifier no work image comes along at all
    plain = _DecodeDataset(rows, _FakeStore(images), 512, 64, keep_rgb=False)
    good, _, _ = _batch_items(_Collate(shared)([plain[0], plain[2]]), keep_rgb=False)
    assert all(item["rgb"] is None for item in good)
    assert _batch_items(_Collate(shared)([dataset[1]]), keep_rgb=True)[2] is None  # a batch of failures only


def test_loader_plan_needs_room_in_shared_memory():
    mb = 1 << 20
    batch = 64 * 512 * 512 * 3  # 48 MiB of canvases a batch
    assert _loader_plan(0, 64, 512, 10**12) == (None, False)  # no workers: nothing crosses a process boundary
    assert _loader_plan(8, 64, 512, 64 * mb) == (4, False)  # Docker's default /dev/shm: through the pipe
    assert _loader_plan(8, 64, 512, int(1.25 * batch * (8 * 2 + 4)) + 1) == (2, True)
    assert _loader_plan(8, 64, 512, int(1.25 * batch * (8 * 4 + 4)) + 1) == (4, True)


def test_a_map_from_the_ring_traces_as_the_unletterboxed_one():
    """The tracing process cuts its map out of the shared file exactly as unletterbox did in the parent (with and
    without the bilinear resize to the working size); one failing map in a task is that image's alone."""
    import cv2

    side = 128
    sample = next(s for s in (generate_image(seed, width=200, height=150) for seed in range(11, 40)) if s.tattoos)
    _, lb = letterbox(np.zeros((150, 200, 3), np.uint8), side)
    canvas = np.full((side, side), 5, np.uint8)  # the model's map of the letterbox, padding included
    nw, nh = lb.inner
    small = cv2.resize((sample.mask > 0).astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    canvas[lb.pad_y:lb.pad_y + nh, lb.pad_x:lb.pad_x + nw] = np.round((small * 0.9 + 0.05) * 255)
    settings = PrefillSettings()
    ring = MapRing(3, 4, side)
    try:
        ring.slot(4, 2)[1] = canvas  # batch 4 → slot 1
        for work_size in [lb.inner, (200, 150)]:
            expected = trace_prefill(unletterbox(canvas, lb, *work_size), settings, 1.5, (300, 225))
            got = trace_mapped(ring.path, ring.shape, 1, 1, lb, work_size, settings, 1.5, (300, 225))
            assert got == expected and len(got.regions) >= 1
        many = trace_mapped_many(ring.path, ring.shape, 1, [(1, lb, (200, 150), 1.5, (300, 225)),
                                                            (1, lb, (-1, 150), 1.5, (300, 225))], settings)
        assert many[0] == expected and isinstance(many[1], Exception)
    finally:
        ring.close()
    assert not Path(ring.path).exists()


def test_rounded_embeddings_are_pythons_round():
    rng = np.random.default_rng(2)
    values = np.concatenate([(rng.normal(size=50_000) * scale).astype(np.float32)
                             for scale in (1e-5, 1e-3, 0.05, 1, 100)]
                            + [(np.arange(-20_000, 20_000) / 2**17).astype(np.float32)])  # ties: x·10⁵ = k + ½
    assert _rounded(values) == [round(float(v), 5) for v in values]
    assert _rounded(values.astype(np.float64)[:100]) == [round(float(v), 5) for v in values[:100]]
    result = {"regions": [], "details": [], "style_probs": {}, "concentration": 0.0, "uncertainty": {}}
    assert _prediction_values(result, values[:512])["embedding"] == [round(float(v), 5) for v in values[:512]]
