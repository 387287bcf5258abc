"""Model factories over small registries (the segmentation_models_pytorch habit): no global state, no I/O
except ImageNet encoder weights when asked for: from an installed package where one ships them
(backend/ml/packaged_weights.py: `tu-tf_efficientnet_lite0`, offline), else a download when reachable.

    model, notes = build_segmenter(arch="Unet", encoder="resnet18")          # 1 output channel: tattoo logit
    model, notes = build_classifier(backbone="resnet18", num_classes=6)      # one logit per style

`architecture` dicts (what the sidecar stores) rebuild the same network: `build_from_architecture(arch)`.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from backend.ml.defaults import CLASSIFIER_BACKBONE, SEGMENTER_ENCODER

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SEGMENTER_ARCHS = ("Unet", "UnetPlusPlus", "FPN", "Linknet", "DeepLabV3Plus", "PAN")
# Light decoder: a quarter of smp's default widths keeps a 512² Unet-resnet18 near 120 ms on two CPU cores.
DEFAULT_DECODER_CHANNELS = (128, 64, 32, 16, 16)
DEFAULT_SEGMENTER = {"kind": "segmenter", "arch": "Unet", "encoder": SEGMENTER_ENCODER,
                     "decoder_channels": list(DEFAULT_DECODER_CHANNELS)}  # what training builds by default
DEFAULT_CLASSIFIER = {"kind": "classifier", "backbone": CLASSIFIER_BACKBONE}


class PretrainedUnavailable(RuntimeWarning):
    """ImageNet weights were asked for but could not be fetched; the network starts from random weights."""


def _warn_offline(what: str, err: Exception) -> str:
    message = (f"could not load ImageNet weights for {what} ({type(err).__name__}: {str(err)[:200]}); "
               "training starts from random initialisation")
    warnings.warn(message, PretrainedUnavailable, stacklevel=3)
    log.warning(message)
    return message


def segmenter_architecture(arch: str = "Unet", encoder: str = "resnet18",
                           decoder_channels: list[int] | tuple[int, ...] | None = None) -> dict[str, Any]:
    if arch not in SEGMENTER_ARCHS:
        raise ValueError(f"unknown segmenter architecture {arch!r}; choose one of {', '.join(SEGMENTER_ARCHS)}")
    import segmentation_models_pytorch as smp

    if not encoder.startswith("tu-") and encoder not in smp.encoders.get_encoder_names():
        raise ValueError(f"unknown encoder {encoder!r}; see segmentation_models_pytorch encoders or use tu-<timm name>")
    out: dict[str, Any] = {"kind": "segmenter", "arch": arch, "encoder": encoder}
    if arch in ("Unet", "UnetPlusPlus"):
        out["decoder_channels"] = list(decoder_channels or DEFAULT_DECODER_CHANNELS)
    return out


def build_segmenter(arch: str = "Unet", encoder: str = "resnet18", encoder_weights: str | None = None,
                    decoder_channels: list[int] | tuple[int, ...] | None = None) -> tuple[torch.nn.Module, dict]:
    """A one-channel (tattoo logit) smp model. `encoder_weights="imagenet"`: packaged weights where installed, else a
    download when reachable; failing both it warns (PretrainedUnavailable) and starts from random weights.
    Returns (model, notes)."""
    import segmentation_models_pytorch as smp

    architecture = segmenter_architecture(arch, encoder, decoder_channels)
    kwargs = {k: v for k, v in architecture.items() if k == "decoder_channels"}
    notes: dict[str, Any] = {"architecture": architecture, "pretrained": False}
    weights = _smp_weights(encoder, encoder_weights)
    packaged = _packaged(encoder.removeprefix("tu-")) if weights is not None and encoder.startswith("tu-") else None
    if packaged is not None:
        model = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, classes=1, **kwargs)
        features = model.encoder.model  # smp's timm universal encoder: timm's features_only network
        torch.nn.Module.load_state_dict(features, {k: packaged[k] for k in features.state_dict()}, strict=True)
        notes.update(pretrained=True, weights_source=_PACKAGED_SOURCE)
        return model, notes
    if weights is not None:
        try:
            model = smp.create_model(arch, encoder_name=encoder, encoder_weights=weights, classes=1, **kwargs)
            notes["pretrained"] = True
            return model, notes
        except Exception as err:  # offline, blocked, missing weights: random init, never a crash
            notes["warning"] = _warn_offline(f"encoder {encoder}", err)
    model = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, classes=1, **kwargs)
    return model, notes


def _smp_weights(encoder: str, encoder_weights: str | None):
    if encoder_weights in (None, "", "none", "random"):
        return None
    if encoder_weights != "imagenet":
        raise ValueError(f"encoder weights {encoder_weights!r}: only 'imagenet' or none")
    return True if encoder.startswith("tu-") else "imagenet"


_PACKAGED_SOURCE = "ImageNet, from an installed package (backend/ml/packaged_weights.py)"


def _packaged(timm_name: str):
    from backend.ml.packaged_weights import packaged_state

    return packaged_state(timm_name, IMAGENET_MEAN, IMAGENET_STD)


def classifier_architecture(backbone: str = "resnet18", num_classes: int = 6) -> dict[str, Any]:
    import timm

    if not timm.is_model(backbone):
        raise ValueError(f"unknown timm backbone {backbone!r}")
    return {"kind": "classifier", "backbone": backbone, "num_classes": int(num_classes)}


def build_classifier(backbone: str = "resnet18", num_classes: int = 6, encoder_weights: str | None = None,
                     drop_rate: float = 0.1) -> tuple[torch.nn.Module, dict]:
    """A timm backbone with a `num_classes` head. ImageNet weights as for the segmenter (offline → random)."""
    import timm

    architecture = classifier_architecture(backbone, num_classes)
    notes: dict[str, Any] = {"architecture": architecture, "pretrained": False}
    packaged = _packaged(backbone) if _smp_weights("tu-" + backbone, encoder_weights) else None
    if packaged is not None:
        model = timm.create_model(backbone, pretrained=False, num_classes=num_classes, drop_rate=drop_rate)
        head = {k for k in model.state_dict() if k.startswith(model.default_cfg.get("classifier", "classifier"))}
        missing, _ = model.load_state_dict({k: v for k, v in packaged.items() if k not in head}, strict=False)
        if set(missing) != head:
            raise ValueError(f"packaged weights for {backbone} do not fit: missing {sorted(set(missing) - head)[:3]}")
        notes.update(pretrained=True, weights_source=_PACKAGED_SOURCE)
        return model, notes
    if _smp_weights("tu-" + backbone, encoder_weights):
        try:
            model = timm.create_model(backbone, pretrained=True, num_classes=num_classes, drop_rate=drop_rate)
            notes["pretrained"] = True
            return model, notes
        except Exception as err:
            notes["warning"] = _warn_offline(f"backbone {backbone}", err)
    return timm.create_model(backbone, pretrained=False, num_classes=num_classes, drop_rate=drop_rate), notes


MAX_CLASSES = 1000  # a sidecar asking for more is refused before any tensor is allocated (2**31 classes: a 500)


def build_from_architecture(architecture: dict[str, Any]) -> torch.nn.Module:
    """Rebuild an empty network (random weights, no download) from a sidecar's architecture dict."""
    kind = architecture.get("kind")
    if kind == "segmenter":
        channels = architecture.get("decoder_channels")
        if channels is not None and (not isinstance(channels, list) or not 1 <= len(channels) <= 8 or not all(
                isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 1024 for c in channels)):
            raise ValueError("decoder_channels must be 1 to 8 integers from 1 to 1024")
        model, _ = build_segmenter(architecture["arch"], architecture["encoder"], None, channels)
        return model
    if kind == "classifier":
        classes = architecture["num_classes"]
        if isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be an integer from 1 to {MAX_CLASSES}, not {classes!r}"[:200])
        model, _ = build_classifier(architecture["backbone"], classes, None)
        return model
    raise ValueError(f"unknown model kind {kind!r}")
