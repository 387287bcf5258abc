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



def test_the_batch_tracing_keeps_regions_on_the_body():
    """The pool's pre-fill hands each work image to the tracing, so its regions stay on the body as the one-image
    pre-fill's do (PrefillSettings.on_body); with the setting off both shapes are kept."""
    from backend.jobs.predictions import CurrentModels
    from backend.jobs.prefill import _trace_batch
    from backend.ml.letterbox import letterbox_geometry
    from backend.ml.prefill import PrefillSettings

    img = np.full((200, 300, 3), (40, 150, 60), np.uint8)  # green background
    img[50:150, :] = (224, 172, 140)  # an arm across the photo
    img[60:90, 100:140] = 20  # the tattoo
    lb = letterbox_geometry(300, 200, 300)  # a canvas as large as the image: no scaling, 50 px padding
    canvas = np.zeros((300, 300), np.float32)
    canvas[lb.pad_y + 60:lb.pad_y + 90, 100:140] = 0.95
    canvas[lb.pad_y + 5:lb.pad_y + 35, 200:260] = 0.95  # on the background
    item = {"rgb": img, "lb": lb, "work_size": (300, 200), "scale": 1.0, "size": (300, 200)}
    for on_body, expected in ((True, 1), (False, 2)):
        models = CurrentModels(1, None, None, None, PrefillSettings(on_body=on_body))
        (traced,) = _trace_batch(models, [item], canvas[None])
        assert len(traced.regions) == expected
