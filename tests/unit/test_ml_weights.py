"""Model files: safetensors + sidecar round trip; pickles, tampering and path escapes are refused."""
import json
import pickle
import warnings

import pytest
import torch

from backend.ml.nets import PretrainedUnavailable, build_classifier, build_segmenter
from backend.ml.weights import UnsafeModelFile, load_bundle, save_bundle

from ..support.models import timm_offline

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sidecar(kind="segmenter", architecture=None, classes=("tattoo",)):
    return {"kind": kind, "architecture": architecture, "classes": list(classes), "input_size": 64,
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "export_id": "e1", "metrics": {"val": {"iou": 0.5}}, "training": {"epochs": 1}}


def _tiny_segmenter():
    model, notes = build_segmenter("Unet", "resnet18", None, [16, 16, 16, 8, 8])
    return model.eval(), notes["architecture"]


def test_segmenter_round_trip(tmp_path):
    model, arch = _tiny_segmenter()
    weights, side = save_bundle(model, _sidecar(architecture=arch), tmp_path, "seg-1")
    assert weights.name == "seg-1.safetensors" and side.name == "seg-1.json"
    meta = json.loads(side.read_text())
    assert meta["architecture"] == arch and meta["classes"] == ["tattoo"] and meta["input_size"] == 64
    assert {"torch", "segmentation_models_pytorch", "timm", "safetensors"} <= set(meta["libraries"])
    bundle = load_bundle("seg-1.safetensors", root=tmp_path)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), bundle.model(x), atol=1e-6)
    assert bundle.sidecar.metrics == {"val": {"iou": 0.5}} and bundle.sidecar.export_id == "e1"


def test_classifier_round_trip(tmp_path):
    model, notes = build_classifier("resnet18", 3)
    model.eval()
    save_bundle(model, _sidecar("classifier", notes["architecture"], ["tribal", "japanese", "fineline"]), tmp_path, "cls")
    bundle = load_bundle(tmp_path / "cls.safetensors")
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), bundle.model(x), atol=1e-6)
    assert bundle.sidecar.classes == ["tribal", "japanese", "fineline"]


class _Boom:
    """Unpickling this would create a marker file: proof that nothing was unpickled if it never appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickles_are_refused_without_being_unpickled(tmp_path):
    model, arch = _tiny_segmenter()
    save_bundle(model, _sidecar(architecture=arch), tmp_path, "good")
    marker = tmp_path / "pwned"
    # a torch.save checkpoint (zip + pickle) and a raw pickle, under .pt and disguised as .safetensors
    torch.save({"state": model.state_dict(), "evil": _Boom(marker)}, tmp_path / "model.pt")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps(_Boom(marker)))
    (tmp_path / "disguised.safetensors").write_bytes(pickle.dumps(_Boom(marker)))
    (tmp_path / "zipped.safetensors").write_bytes((tmp_path / "model.pt").read_bytes())
    for name in ("disguised", "zipped"):
        (tmp_path / f"{name}.json").write_text((tmp_path / "good.json").read_text())
    for name in ("model.pt", "raw.pkl", "disguised.safetensors", "zipped.safetensors"):
        with pytest.raises(UnsafeModelFile):
            load_bundle(tmp_path / name)
    assert not marker.exists()


def test_tampered_weights_missing_sidecar_and_escapes(tmp_path):
    model, arch = _tiny_segmenter()
    weights, side = save_bundle(model, _sidecar(architecture=arch), tmp_path / "models", "m")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UnsafeModelFile, match="sha256"):
        load_bundle(weights)
    side.unlink()
    with pytest.raises(UnsafeModelFile, match="sidecar"):
        load_bundle(weights)
    (tmp_path / "outside.safetensors").write_bytes(b"x")
    with pytest.raises(UnsafeModelFile, match="outside"):
        load_bundle("../outside.safetensors", root=tmp_path / "models")


def test_sidecar_with_unknown_fields_or_wrong_architecture_is_refused(tmp_path):
    model, arch = _tiny_segmenter()
    weights, side = save_bundle(model, _sidecar(architecture=arch), tmp_path, "m")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps(dict(meta, surprise=1)))
    with pytest.raises(UnsafeModelFile, match="invalid sidecar"):
        load_bundle(weights)
    side.write_text(json.dumps(dict(meta, architecture=dict(arch, decoder_channels=[32, 16, 16, 8, 8]))))
    with pytest.raises(UnsafeModelFile, match="do not fit"):
        load_bundle(weights)
    # same keys, one tensor of another shape: refused too (smp's own loader would only warn)
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("segmentation_head.0.bias"))
    state[key] = torch.zeros(2)
    save_file(state, str(weights))
    from backend.ml.weights import file_sha256

    side.write_text(json.dumps(dict(meta, weights_sha256=file_sha256(weights))))
    with pytest.raises(UnsafeModelFile, match="other shapes"):
        load_bundle(weights)


def test_imagenet_weights_offline_fall_back_to_random_init(monkeypatch):
    import segmentation_models_pytorch.encoders as encoders

    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(encoders, "hf_hub_download", offline)
    with pytest.warns(PretrainedUnavailable, match="random initialisation"):
        model, notes = build_segmenter("Unet", "resnet18", "imagenet", [16, 16, 16, 8, 8])
    assert notes["pretrained"] is False and "network unreachable" in notes["warning"]
    assert isinstance(model, torch.nn.Module)

    timm_offline(monkeypatch)
    with pytest.warns(PretrainedUnavailable):
        model, notes = build_classifier("resnet18", 4, "imagenet")
    assert notes["pretrained"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedUnavailable)
        build_segmenter("Unet", "resnet18", None, [16, 16, 16, 8, 8])  # not asked: no download, no warning


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="encoder"):
        build_segmenter("Unet", "no-such-encoder")
    with pytest.raises(ValueError, match="architecture"):
        build_segmenter("NoSuchNet", "resnet18")
    with pytest.raises(ValueError, match="backbone"):
        build_classifier("no_such_backbone", 3)
