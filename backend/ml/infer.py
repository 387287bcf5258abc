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

from backend.ml.device import autocast, is_cuda, prepare_model, to_device
from backend.ml.letterbox import unletterbox
from backend.ml.transforms import letterbox, normalize
from backend.ml.weights import ModelBundle


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
        self._pinned: torch.Tensor | None = None  # CUDA: the host buffer uploads go through, grown when needed
        self._uploaded = None  # CUDA: an event recorded after the last upload from it

    def tensor(self, canvases: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 canvases → the normalised NCHW batch on the device. Call it holding self.lock (the
        runner's pinned buffer is shared)."""
        batch = self._upload(canvases) if is_cuda(self.device) else torch.from_numpy(canvases)
        return to_device(normalize(batch, self.mean, self.std), self.device)

    def _upload(self, canvases: np.ndarray) -> torch.Tensor:
        """The canvases on the GPU, copied through one pinned buffer per runner: pinning a fresh ~50 MB buffer for
        every batch cost more than the asynchronous copy it allows."""
        batch = torch.from_numpy(canvases)
        if self._uploaded is not None:
            self._uploaded.synchronize()  # the previous batch has left the buffer
        if self._pinned is None or self._pinned.dtype != batch.dtype or self._pinned.numel() < batch.numel():
            self._pinned = torch.empty(batch.numel(), dtype=batch.dtype, pin_memory=True)
        staging = self._pinned[:batch.numel()].view(batch.shape)
        staging.copy_(batch)
        on_device = staging.to(self.device, non_blocking=True)
        self._uploaded = torch.cuda.Event()
        self._uploaded.record(torch.cuda.current_stream(self.device))
        return on_device


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
        return self.start_forward(canvases, embed).result()

    def start_forward(self, canvases: np.ndarray, embed: bool = False) -> "PendingForward":
        """forward_canvases in two halves: on CUDA this returns once the work is queued on the GPU, so the caller
        can do other work until .result() copies the outputs back (on the CPU it computes them here)."""
        model = self.model
        with self.lock, torch.inference_mode(), autocast(self.device):
            x = self.tensor(canvases)
            encoder = getattr(model, "encoder", None)
            if embed and encoder is not None and hasattr(model, "decoder"):
                features = encoder(x)
                logits = model.segmentation_head(model.decoder(features))
                emb = torch.nn.functional.normalize(features[-1].float().mean(dim=(2, 3)), dim=1)
            else:
                logits, emb = model(x), None
            prob = torch.sigmoid(logits.float())[:, 0]
        return PendingForward(prob, emb)

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


class PendingForward:
    """SegmenterRunner.start_forward's outputs, still on the device."""

    def __init__(self, prob: torch.Tensor, embedding: torch.Tensor | None):
        self.prob, self.embedding = prob, embedding

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, S, S) probabilities and (N, D) embeddings (None without an encoder), waiting for the device."""
        emb = self.embedding.cpu().numpy() if self.embedding is not None else None
        return self.prob.cpu().numpy(), emb


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
            with self.lock, torch.inference_mode(), autocast(self.device):
                logits = self.model(self.tensor(canvases))
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out)
