"""The batch pre-fill's batches (backend/jobs/prefill.py): decoded images as stacked canvases with their work
images, undecodable files reported apart; the embedding's rounding. (The benchmark's stubbed-model mode, which runs
the whole pool path: tests/ops/test_bench_prefill.py.)"""
import numpy as np
import pytest
from PIL import Image

from backend.ml.transforms import letterbox
from backend.jobs.prefill import _batches, _DecodeDataset
from backend.jobs.predictions import _prediction_values, _rounded


class _FakeStore:
    """BlobStore.open_rgb for _DecodeDataset: the image of a row is looked up by its sha256."""

    def __init__(self, images: dict):
        self.images = images

    def open_rgb(self, row, max_side=None):
        if row.sha256 not in self.images:
            raise FileNotFoundError(row.sha256)
        return Image.fromarray(self.images[row.sha256])


def test_batches_carry_stacked_canvases_and_the_work_image():
    rng = np.random.default_rng(0)
    images = {"in": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),  # long side = input size
              "small": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),  # scaled up into the canvas
              "big": rng.integers(0, 255, (96, 72, 3), dtype=np.uint8)}  # scaled down
    rows = [(1, "in", "png", 64, 48), (2, "gone", "png", 10, 10), (3, "small", "png", 40, 30),
            (4, "big", "png", 72, 96), (5, "gone", "png", 10, 10)]
    dataset = _DecodeDataset(rows, _FakeStore(images), max_side=512, input_size=64)
    (good, bad, canvases), (good2, bad2, canvases2) = _batches(dataset, 4)
    assert [item["id"] for item in bad] == [2] and [item["id"] for item in good] == [1, 3, 4]
    assert "FileNotFoundError" in bad[0]["error"]
    assert canvases.shape == (3, 64, 64, 3) and canvases.dtype == np.uint8
    for item, canvas, key in zip(good, canvases, ["in", "small", "big"]):
        assert "canvas" not in item
        assert np.array_equal(item["rgb"], images[key])
        assert np.array_equal(canvas, letterbox(images[key], 64)[0])
    assert good2 == [] and [item["id"] for item in bad2] == [5] and canvases2 is None  # a batch of failures only


def test_rounded_embeddings_are_pythons_round():
    rng = np.random.default_rng(2)
    values = np.concatenate([(rng.normal(size=50_000) * scale).astype(np.float32)
                             for scale in (1e-5, 1e-3, 0.05, 1, 100)]
                            + [(np.arange(-20_000, 20_000) / 2**17).astype(np.float32)])  # ties: x·10⁵ = k + ½
    assert _rounded(values) == [round(float(v), 5) for v in values]
    assert _rounded(values.astype(np.float64)[:100]) == [round(float(v), 5) for v in values[:100]]
    result = {"regions": [], "details": [], "style_probs": {}, "concentration": 0.0, "uncertainty": {}}
    assert _prediction_values(result, values[:512])["embedding"] == [round(float(v), 5) for v in values[:512]]

