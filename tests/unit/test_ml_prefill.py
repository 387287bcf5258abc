"""From a probability map to pre-fill regions: valid geometry inside the image, holes, grouping, specks dropped,
concentration and its flags, uncertainty, and a classifier's style suggestions."""
import cv2
import numpy as np
import pytest

from backend.core.geometry import validate_geometry
from backend.core.geometry_raster import rasterize
from backend.ml.cache import ModelCache
from backend.ml.prefill import PrefillSettings, build_prefill, split_instances, work_size
from backend.ml.synth import generate_image


def _prob_from_mask(mask):
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.7) * 0.96 + 0.02


class FakeClassifier:
    classes = ["tribal", "japanese"]

    def predict(self, crops):
        # "japanese" when the crop is blue-ish: enough to check the wiring from regions to suggestions
        out = []
        for crop in crops:
            blue = ((crop[..., 2].astype(int) - crop[..., 0]) > 40).mean() > 0.1
            out.append([0.2, 0.8] if blue else [0.9, 0.1])
        return np.array(out)


def test_regions_from_a_probability_map():
    sample = next(s for s in (generate_image(seed, width=300, height=240, styles=["japanese", "tribal"])
                              for seed in range(50)) if len(s.tattoos) == 2)
    prob = _prob_from_mask(sample.mask > 0)
    result = build_prefill(sample.image, prob, FakeClassifier(), PrefillSettings(), segmenter_version=7,
                           classifier_version=8)
    assert len(result["regions"]) == len(sample.tattoos) == 2
    for region, detail in zip(result["regions"], result["details"]):
        assert set(region) == {"id", "geometry", "style", "motifs", "source", "model_version", "confidence"}
        assert region["source"] == "model" and region["model_version"] == 7 and detail["id"] == region["id"]
        assert validate_geometry(region["geometry"], 300, 240)  # valid, inside the image
        assert region["style"] in FakeClassifier.classes and 0 <= region["confidence"] <= 1
        assert set(detail["style_probs"]) == set(FakeClassifier.classes)
    styles = {r["style"] for r in result["regions"]}
    assert styles == {"japanese", "tribal"}
    back = rasterize([r["geometry"] for r in result["regions"]], 300, 240) > 0
    truth = sample.mask > 0
    assert (back & truth).sum() / (back | truth).sum() >= 0.95
    assert result["concentration"] == pytest.approx(truth.mean(), abs=0.01)
    assert result["low_concentration"] is bool(truth.mean() < 0.25)
    assert 0 <= result["uncertainty"]["score"] <= 1 and result["uncertainty"]["regions"] == 2
    assert result["suggested_flags"] == []
    assert abs(sum(result["style_probs"].values()) - 1) < 0.01


def test_strokes_of_one_drawing_stay_one_region_and_specks_are_dropped():
    mask = np.zeros((200, 200), bool)
    for x in range(40, 160, 12):  # ten separate strokes, close together: one tattoo
        mask[60:140, x:x + 3] = True
    mask[190:192, 5:7] = True  # a 4-pixel speck
    result = build_prefill(np.zeros((200, 200, 3), np.uint8), _prob_from_mask(mask), None, PrefillSettings())
    assert len(result["regions"]) == 1
    assert result["regions"][0]["geometry"]["type"] == "MultiPolygon"
    assert result["regions"][0]["style"] is None and result["regions"][0]["confidence"] is None


def test_holes_survive_and_scale_maps_to_original_pixels():
    mask = np.zeros((100, 100), np.uint8)
    cv2.circle(mask, (50, 50), 30, 1, -1)
    cv2.circle(mask, (50, 50), 12, 0, -1)
    result = build_prefill(np.zeros((100, 100, 3), np.uint8), _prob_from_mask(mask > 0), None, scale=4.0)
    geometry = result["regions"][0]["geometry"]
    assert geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 2  # outer ring + the hole
    assert validate_geometry(geometry, 400, 400)
    back = rasterize([geometry], 400, 400)
    assert back[200, 200] == 0 and back[200, 200 + 4 * 20] == 255


def test_blank_image_suggests_not_tattoo():
    result = build_prefill(np.zeros((64, 64, 3), np.uint8), np.full((64, 64), 0.03, np.float32), None)
    assert result["regions"] == [] and result["concentration"] == 0
    assert result["low_concentration"] is True and result["suggested_flags"] == ["not_tattoo"]
    assert result["uncertainty"]["score"] < 0.1


def test_work_size_and_instances():
    assert work_size(4000, 3000, 1024) == (1024, 768, pytest.approx(4000 / 1024))
    assert work_size(640, 480, 1024) == (640, 480, 1.0)
    mask = np.zeros((50, 50), bool)
    mask[5:10, 5:10] = mask[40:45, 40:45] = True
    assert len(split_instances(mask, 2, 4)) == 2 and len(split_instances(mask, 30, 4)) == 1


def test_model_cache_loads_once_and_evicts():
    cache, calls = ModelCache(max_items=2), []

    def loader(key):
        return lambda: calls.append(key) or key

    assert cache.get("a", loader("a")) == "a" and cache.get("a", loader("a")) == "a"
    cache.get("b", loader("b"))
    cache.get("c", loader("c"))
    assert calls == ["a", "b", "c"] and len(cache) == 2
    cache.get("a", loader("a"))
    assert calls[-1] == "a"


def test_fast_tracing_keeps_the_mask_and_its_holes():
    from backend.core.geometry_raster import rasterize
    from backend.ml.prefill import mask_geometry

    ious = {True: [], False: []}  # exact hand-made masks
    for seed in range(6):
        truth = generate_image(300 + seed, width=320, height=256).mask > 0
        for fast in (True, False):
            geometry = mask_geometry(truth, fast=fast)
            assert validate_geometry(geometry, 320, 256)
            back = rasterize([geometry], 320, 256) > 0
            ious[fast].append((back & truth).sum() / (back | truth).sum())
    assert min(ious[True]) >= 0.85 and np.mean(ious[True]) >= np.mean(ious[False]) - 0.02
    ring = np.zeros((100, 100), np.uint8)
    cv2.circle(ring, (50, 50), 30, 1, -1)
    cv2.circle(ring, (50, 50), 12, 0, -1)
    geometry = mask_geometry(ring > 0, fast=True)
    assert geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 2


def test_fine_line_strokes_survive_the_fast_tracing():
    """One-pixel strokes (fine line) are what a 3×3 median erases: the fast path keeps them, and still smooths a
    filled shape's one-pixel spur away."""
    from backend.core.geometry import to_shape
    from backend.ml.prefill import mask_geometry

    lines = np.zeros((160, 160), np.uint8)
    cv2.ellipse(lines, (80, 70), (50, 35), 20, 0, 300, 1, 1)
    cv2.polylines(lines, [np.array([[20, 140], [70, 120], [140, 150]], np.int32)], False, 1, 1)
    truth = lines > 0
    back = rasterize([mask_geometry(truth, fast=True)], 160, 160) > 0
    assert (back & truth).sum() / (back | truth).sum() >= 0.6 and (back & truth).sum() >= 0.8 * truth.sum()
    prob = _prob_from_mask(truth)
    result = build_prefill(np.zeros((160, 160, 3), np.uint8), np.maximum(prob, truth * 0.9))
    drawn = rasterize([r["geometry"] for r in result["regions"]], 160, 160) > 0
    assert (drawn & truth).sum() >= 0.8 * truth.sum()

    blob = np.zeros((80, 80), np.uint8)
    cv2.rectangle(blob, (20, 20), (60, 60), 1, -1)
    blob[40, 61:70] = 1  # a one-pixel spur off a filled square
    geometry = mask_geometry(blob > 0, fast=True)
    assert to_shape(geometry).bounds[2] <= 62.5  # the spur reached x = 70


def test_folded_batchnorm_gives_the_same_outputs():
    import copy

    import torch

    from backend.ml.infer import fold_batchnorm
    from backend.ml.nets import build_classifier, build_segmenter

    torch.manual_seed(0)
    for model in (build_segmenter()[0], build_classifier(num_classes=3)[0]):
        for module in model.modules():  # non-trivial statistics, as after training
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        model.eval()
        folded = copy.deepcopy(model)
        assert fold_batchnorm(folded) > 10
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        x = torch.randn(2, 3, 64, 64)
        with torch.inference_mode():
            a, b = model(x), folded(x)
        assert torch.allclose(a, b, atol=1e-4 * float(a.abs().max()))


# --- the two steps the batch pre-fill runs apart -----------------------------------------------------------------

def _two_tattoo_sample():
    return next(s for s in (generate_image(seed, width=300, height=240, styles=["japanese", "tribal"])
                            for seed in range(50)) if len(s.tattoos) == 2)


def test_traced_images_are_small_and_classified_in_one_call():
    import pickle

    from backend.ml.prefill import classify_regions, finish_prefill, trace_prefill

    class CountingClassifier(FakeClassifier):
        calls = 0

        def predict(self, crops):
            self.calls += 1
            return super().predict(crops)

    samples = [_two_tattoo_sample(), generate_image(3, width=120, height=100, n_tattoos=0, styles=[])]
    settings = PrefillSettings(crop_mask_background=True)
    probs = [_prob_from_mask(s.mask > 0) for s in samples]
    traced = [trace_prefill(p, settings) for p in probs]
    assert len(pickle.dumps(trace_prefill(probs[0], PrefillSettings()))) < 8_000  # no masks without masked crops
    classifier = CountingClassifier()
    styles = classify_regions(classifier, [(s.image, t) for s, t in zip(samples, traced)], settings)
    assert classifier.calls == 1 and [len(p) for p in styles] == [2, 0]
    for sample, prob, image, style_probs in zip(samples, probs, traced, styles):
        batched = finish_prefill(image, style_probs, classifier.classes, settings, 7, 8)
        alone = build_prefill(sample.image, prob, FakeClassifier(), settings, segmenter_version=7,
                              classifier_version=8)
        for result in (batched, alone):
            for region, detail in zip(result["regions"], result["details"]):
                region.pop("id"), detail.pop("id")
        assert batched == alone
    assert classify_regions(None, [(samples[0].image, traced[0])], settings) == [None]


def test_the_tracing_code_imports_neither_torch_nor_the_app():
    """What a tracing process imports (backend.ml.prefill): no torch (seconds and ~600 MB a process), no app, no
    database."""
    import subprocess
    import sys

    code = ("import sys, backend.ml.prefill; "
            "print(sorted(m for m in ('torch', 'backend.db.extensions', 'backend.db.models') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_classifier_crop_is_the_exports():
    """The pre-fill classifies the crop the export trains on (backend.datasets.crops), and a box too thin for the
    export at margin 0 still gets a small crop around it, not the whole photo."""
    from backend.datasets.crops import crop_box as export_crop_box
    from backend.ml.crops import crop_box

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for _ in range(200):
        x0, y0 = rng.uniform(0, 150), rng.uniform(0, 110)
        bbox = [x0, y0, rng.uniform(x0, 160), rng.uniform(y0, 120)]
        margin = float(rng.choice([0.1, 0.3]))
        c0, r0, c1, r1 = export_crop_box(bbox, 160, 120, margin)
        assert np.array_equal(crop_box(rgb, bbox, margin), rgb[r0:r1, c0:c1])
    thin = crop_box(rgb, [50.2, 40.0, 50.6, 60.0], margin=0)
    assert thin.shape[:2] == (24, 5)


def test_regions_stay_on_the_body():
    """A dark shape on the background beside an arm (clothing, a bag) is not offered as a tattoo; the ink on the
    arm is. Without skin in the photo (or with on_body off) the model's map is taken as it is."""
    img = np.full((200, 300, 3), (40, 150, 60), np.uint8)  # green background
    img[50:150, :] = (224, 172, 140)  # an arm across the photo
    img[60:90, 100:140] = (20, 20, 20)  # the tattoo
    prob = np.zeros((200, 300), np.float32)
    prob[60:90, 100:140] = 0.95
    prob[5:35, 200:260] = 0.95  # something dark on the background
    kept = build_prefill(img, prob, None, PrefillSettings())
    assert len(kept["regions"]) == 1 and kept["details"][0]["bbox"][0] == pytest.approx(100, abs=2)
    assert len(build_prefill(img, prob, None, PrefillSettings(on_body=False))["regions"]) == 2
    no_skin = np.full_like(img, (40, 150, 60))
    assert len(build_prefill(no_skin, prob, None, PrefillSettings())["regions"]) == 2
