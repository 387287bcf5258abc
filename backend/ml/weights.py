"""Model files: weights in safetensors plus a JSON sidecar; loading never unpickles anything.

    paths = save_bundle(model, sidecar, models_dir, "segmenter-20240101-abcd")   # → (weights, sidecar) paths
    bundle = load_bundle(models_dir / "segmenter-20240101-abcd.safetensors")     # → ModelBundle(model, sidecar)

The sidecar records what is needed to rebuild and feed the network (architecture, classes, input size,
normalisation), where it came from (export id, training options, library versions) and how good it was (metrics).
A file that is not safetensors — a pickle, a `.pt`/`.pth` zip, anything with another suffix — is refused before
any byte of it is interpreted, and the weights must match the sha256 the sidecar recorded.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.ml.nets import build_from_architecture

SIDECAR_FORMAT = "inklabel-model"
SIDECAR_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024


class UnsafeModelFile(ValueError):
    """The file is not a safetensors file with a valid sidecar (a pickle, a checkpoint zip, tampered weights…)."""


class Normalization(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: list[float] = Field(min_length=3, max_length=3)
    std: list[float] = Field(min_length=3, max_length=3)


class Sidecar(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    format: Literal["inklabel-model"] = SIDECAR_FORMAT
    format_version: Literal[1] = SIDECAR_VERSION
    kind: Literal["segmenter", "classifier"]
    name: str
    architecture: dict[str, Any]
    classes: list[str] = Field(min_length=1, max_length=1000)
    input_size: int = Field(ge=16, le=4096)
    normalization: Normalization
    export_id: Optional[str] = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)
    weights_file: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: str


@dataclass
class ModelBundle:
    model: torch.nn.Module
    sidecar: Sidecar

    @property
    def kind(self) -> str:
        return self.sidecar.kind


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors
    import segmentation_models_pytorch
    import timm

    return {"torch": torch.__version__, "segmentation_models_pytorch": segmentation_models_pytorch.__version__,
            "timm": timm.__version__, "safetensors": safetensors.__version__, "numpy": numpy.__version__}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_bundle(model: torch.nn.Module, sidecar: dict[str, Any], directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write `<name>.safetensors` and `<name>.json` atomically (temp file + rename). `sidecar` holds every Sidecar
    field except name, weights_file, weights_sha256, created_at and libraries, which are filled in here."""
    from safetensors.torch import save_file

    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"bad model file name {name!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.safetensors"
    tmp = directory / f".{name}.safetensors.tmp"
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"format": "pt", "producer": "inklabel", "kind": str(sidecar.get("kind"))})
    os.replace(tmp, weights)
    full = dict(sidecar, name=name, weights_file=weights.name, weights_sha256=file_sha256(weights),
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                libraries={**library_versions(), **sidecar.get("libraries", {})})
    meta = Sidecar.model_validate(full)  # refuse to write a sidecar we could not read back
    side = sidecar_path(weights)
    tmp_side = directory / f".{name}.json.tmp"
    tmp_side.write_text(json.dumps(meta.model_dump(mode="json"), indent=2, sort_keys=True))
    os.replace(tmp_side, side)
    return weights, side


def check_safetensors_header(path: Path) -> None:
    """Raise UnsafeModelFile unless the file starts like safetensors: u64 header length, then a JSON object."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        raise UnsafeModelFile(f"{path.name}: too short to be a safetensors file")
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise UnsafeModelFile(f"{path.name}: looks like a pickle / torch.save checkpoint; only safetensors is loaded")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len <= 1 or header_len > MAX_HEADER_BYTES or header_len + 8 > size or head[8:9] != b"{":
        raise UnsafeModelFile(f"{path.name}: not a safetensors file")


def read_sidecar(weights_path: str | Path) -> Sidecar:
    side = sidecar_path(weights_path)
    if not side.is_file():
        raise UnsafeModelFile(f"{Path(weights_path).name}: its sidecar {side.name} is missing")
    try:
        return Sidecar.model_validate(json.loads(side.read_text()))
    except (ValueError, ValidationError) as err:
        raise UnsafeModelFile(f"{side.name}: invalid sidecar: {str(err)[:300]}") from None


def load_bundle(weights_path: str | Path, root: str | Path | None = None, device: str | torch.device = "cpu") -> ModelBundle:
    """Load weights + sidecar. `root`, when given, is the folder the file must lie in (no path escapes)."""
    from safetensors.torch import load_file

    path = Path(weights_path)
    if root is not None:
        root_resolved = Path(root).resolve()
        path = (root_resolved / path).resolve() if not path.is_absolute() else path.resolve()
        if root_resolved not in path.parents:
            raise UnsafeModelFile(f"{weights_path}: outside the models folder")
    if path.suffix != ".safetensors":
        raise UnsafeModelFile(f"{path.name}: only .safetensors weights are loaded (never pickles such as .pt/.pth/.pkl)")
    if not path.is_file():
        raise FileNotFoundError(f"model weights {path} not found")
    check_safetensors_header(path)
    sidecar = read_sidecar(path)
    if sidecar.weights_file != path.name:
        raise UnsafeModelFile(f"{path.name}: the sidecar describes {sidecar.weights_file}")
    if file_sha256(path) != sidecar.weights_sha256:
        raise UnsafeModelFile(f"{path.name}: sha256 does not match the sidecar (changed after training?)")
    try:
        state = load_file(str(path), device="cpu")
    except Exception as err:  # safetensors parses without executing anything; a parse error is just a bad file
        raise UnsafeModelFile(f"{path.name}: unreadable safetensors ({err})") from None
    try:
        model = build_from_architecture(sidecar.architecture)
    except (ValueError, KeyError, TypeError) as err:  # names outside the registries, missing keys: a bad sidecar
        raise UnsafeModelFile(f"{path.name}: the sidecar's architecture cannot be built: {str(err)[:200]}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or reshaped:
        raise UnsafeModelFile(f"{path.name}: weights do not fit the architecture (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, other shapes {reshaped[:3]})")
    # torch's strict loader, not smp's lenient override (which skips mismatched tensors with a warning)
    torch.nn.Module.load_state_dict(model, state, strict=True)
    model.eval()
    if str(device) != "cpu":
        model.to(device)
    return ModelBundle(model=model, sidecar=sidecar)
