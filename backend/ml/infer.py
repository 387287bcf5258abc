"""Batched inference with a loaded segmenter or classifier (no Flask, no database).

    seg = SegmenterRunner.from_bundle(load_bundle(path), device)
    probs, embeddings = seg.predict([rgb1, rgb2])      # tattoo probability per pixel of each image, (N, D) features
    cls = ClassifierRunner.from_bundle(bundle, device)
    cls.predict([crop1, crop2])                        # (N, K) style probabilities, columns = cls.classes
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import torch

from .device import autocast, is_cuda, prepare_model, to_device
from .transforms import letterbox, normalize, unletterbox
from .weights import ModelBundle


def fold_batchnorm(model: torch.nn.Module) -> int:
    """Fold each BatchNorm2d that directly follows a Conv2d (whose output feeds nothing else) into that conv's
    weights and replace it with Identity, in place: the same outputs (to float rounding) without the normalisation
    pass, ~10-20 % of a ResNet-Unet's CPU forward. For inference only — the model is put in eval mode and its state
    dict changes, so never save a folded model. Returns how many were folded (0 where torch.fx cannot trace the
    network: it is then left as it was)."""
    import torch.fx as fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception:  # data-dependent control flow etc.: run unfolded
        return 0
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), torch.nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1
                and isinstance(modules.get(src.target), torch.nn.Conv2d)):
            pairs.append((src.target, node.target))
    if len({conv for conv, _ in pairs}) != len(pairs) or len({bn for _, bn in pairs}) != len(pairs):
        return 0  # a module called twice: folding it would change the other call
    for conv_name, bn_name in pairs:
        fused = fuse_conv_bn_eval(modules[conv_name], modules[bn_name])
        for name, new in ((conv_name, fused), (bn_name, torch.nn.Identity())):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, new)
    return len(pairs)


class _Runner:
    def __init__(self, model: torch.nn.Module, input_size: int, mean, std, device: torch.device):
        self.device = torch.device(device)
        self.model = prepare_model(model, self.device, train=False)
        self.input_size = int(input_size)
        self.mean, self.std = tuple(mean), tuple(std)
        # One forward at a time per model: CPU threads are already used by each op, and on CUDA the batching does
        # the work; this also makes a runner safe to share between request threads.
        self.lock = threading.Lock()

    def tensor(self, canvases: np.ndarray) -> torch.Tensor:
        batch = torch.from_numpy(canvases)
        if is_cuda(self.device):
            batch = batch.pin_memory()
        x = normalize(batch.to(self.device, non_blocking=True), self.mean, self.std)
        return to_device(x, self.device)


class SegmenterRunner(_Runner):
    def __init__(self, model, input_size, mean, std, device, threshold: float = 0.5):
        super().__init__(model, input_size, mean, std, device)
        self.threshold = threshold

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, device) -> "SegmenterRunner":
        side = bundle.sidecar
        fold_batchnorm(bundle.model)  # a loaded bundle only runs inference
        return cls(bundle.model, side.input_size, side.normalization.mean, side.normalization.std, device,
                   float(side.training.get("threshold", 0.5)))

    def forward_canvases(self, canvases: np.ndarray, embed: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, S, S, 3) uint8 letterboxed canvases → (N, S, S) float32 probabilities and (N, D) embeddings."""
        x = self.tensor(canvases)
        model = self.model
        with self.lock, torch.inference_mode(), autocast(self.device):
            encoder = getattr(model, "encoder", None)
            if embed and encoder is not None and hasattr(model, "decoder"):
                features = encoder(x)
                logits = model.segmentation_head(model.decoder(features))
                emb = torch.nn.functional.normalize(features[-1].float().mean(dim=(2, 3)), dim=1)
            else:
                logits, emb = model(x), None
            prob = torch.sigmoid(logits.float())[:, 0]
        return prob.cpu().numpy(), (emb.cpu().numpy() if emb is not None else None)

    def predict(self, images: Sequence[np.ndarray], out_sizes: Sequence[tuple[int, int]] | None = None,
                embed: bool = False) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Probability maps at each image's size (or the (width, height) in out_sizes), and embeddings."""
        boxes = [letterbox(im, self.input_size) for im in images]
        canvases = np.stack([c for c, _ in boxes])
        probs, emb = self.forward_canvases(canvases, embed)
        out = []
        for i, (prob, (_, lb)) in enumerate(zip(probs, boxes)):
            w, h = out_sizes[i] if out_sizes else (lb.width, lb.height)
            out.append(unletterbox(prob, lb, w, h))
        return out, emb


class ClassifierRunner(_Runner):
    def __init__(self, model, input_size, mean, std, device, classes: list[str]):
        super().__init__(model, input_size, mean, std, device)
        self.classes = list(classes)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, device) -> "ClassifierRunner":
        side = bundle.sidecar
        fold_batchnorm(bundle.model)
        return cls(bundle.model, side.input_size, side.normalization.mean, side.normalization.std, device,
                   side.classes)

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        if not crops:
            return np.zeros((0, len(self.classes)), np.float32)
        out = []
        for i in range(0, len(crops), batch_size):
            canvases = np.stack([letterbox(c, self.input_size)[0] for c in crops[i:i + batch_size]])
            x = self.tensor(canvases)
            with self.lock, torch.inference_mode(), autocast(self.device):
                logits = self.model(x)
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out)


CROP_MARGIN = 0.1  # as backend/datasets/crops.py: a share of the box's longer side, at least 2 pixels
CROP_BACKGROUND = (124, 116, 104)  # ImageNet mean RGB, what exports paint outside a region with mask_background


def crop_box(rgb: np.ndarray, bbox: Sequence[float], margin: float = CROP_MARGIN,
             mask: np.ndarray | None = None) -> np.ndarray:
    """The bbox [x0, y0, x1, y1] grown by `margin` × its longer side (≥ 2 px), clipped to the image — the same
    crop the export writes for the classifier. With `mask` (H×W bool of the whole image) the pixels outside the
    region are painted with the ImageNet mean (exports made with crops.mask_background)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = bbox
    pad = max(margin * max(x1 - x0, y1 - y0), 2.0) if margin > 0 else 0.0
    a, b = max(int(np.floor(x0 - pad)), 0), max(int(np.floor(y0 - pad)), 0)
    c, d = min(int(np.ceil(x1 + pad)), w), min(int(np.ceil(y1 + pad)), h)
    c, d = max(c, a + 1), max(d, b + 1)
    crop = np.array(rgb[b:d, a:c], copy=True)
    if mask is not None:
        crop[~mask[b:d, a:c]] = CROP_BACKGROUND
    return crop
